"""From torch to a deployable model: ONNX export with metadata inside, the PyTorch-vs-ONNX parity
check and the TensorRT engine build.

- ``onnx_export.py``  checkpoint → ``model.onnx`` (decoded outputs), ``export(fmt="onnx" | "engine")``
- ``parity.py``       onnxruntime vs PyTorch on the same frames, judged as a user would (detections
                      at conf 0.05, boxes relative to their size), the parity report
- ``parity_data.py``  which frames: ``--parity-data``, else the checkpoint's own val / train images, else synthetic
- ``tensorrt.py``     ``model.onnx`` → ``model.engine`` (needs ``tensorrt`` and an NVIDIA GPU)

Needs torch + onnx (the ``train`` extra). What runs the exported model lives in ``flowdet.runtime``
(torch-free); this package imports from it, never the other way round.
"""
