"""The edge runtime: what a deployed box runs, with numpy, cv2 and onnxruntime only — never torch.

Three subpackages; the arrows go only ``stream → predict`` and ``stream → track`` (tests/test_layout.py):

- ``predict/``  a model in, :class:`~flowdet.core.detections.Detections` out: the :class:`Predictor`
                protocol and :func:`load_predictor`, the ONNX Runtime / OpenVINO / TensorRT backends,
                graph layouts, the model metadata, sliced (tiled) inference and test-time augmentation
- ``track/``    detections in, tracks and counts out: ByteTrack-style tracker, Kalman filter,
                assignment, camera-motion compensation, line/zone counting, a tracking simulation
- ``stream/``   frames in, files out: frame sources, reader threads, the streaming loops
                (``flowdet stream``), graceful Ctrl-C, one tracker + counter per source

``tests/runtime/test_torch_free.py`` imports every module here with torch made unimportable. The only
way in to torch is ``load_predictor("x.pt")``, which imports ``flowdet.detect.torch_predictor`` when
asked for a PyTorch checkpoint (the ``train`` extra).

    >>> from flowdet.runtime import load_predictor
    >>> dets = load_predictor("model.onnx").predict([bgr_image])[0]
"""
from flowdet.runtime.predict.predictor import Predictor, load_predictor

__all__ = ["Predictor", "load_predictor"]
