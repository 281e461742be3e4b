"""Offline pseudo-labelling (``flowdet pseudo-label``): a teacher over unlabeled frames, its detections
filtered by flowdet's own tracker, written as a COCO json that any later training reads.

- ``sources.py``       what to label: videos, image folders, mined-frame manifests, a COCO json's images;
                       which of them have a time order (only those are tracked)
- ``track_filter.py``  detections of one ordered source → boxes confirmed tracks carry, gap fills,
                       ignore regions (numpy + flowdet.runtime's tracker)
- ``score.py``         precision / recall of pseudo-labels against labels the user holds back
- ``label.py``         the stage: teacher (+ flip / tiles) → frames → filter → pseudo.json, summary.json

Torch-free: a ``.pt`` teacher imports torch through :func:`flowdet.runtime.predict.predictor.load_predictor`
only; an ``.onnx`` teacher runs on onnxruntime.
"""
