"""Export and edge runtime: ONNX/TensorRT export, the torch-free ONNX Runtime predictor, sliced
(tiled) inference and the streaming loop.

Import boundaries (the edge box installs only the core dependencies):
- torch-free: ``metadata``, ``runtime``, ``tiles``, ``sources``, ``stream``,
  ``tensorrt`` (needs ``tensorrt`` + ``cuda-python`` only when used);
- need torch + onnx (the ``train`` extra): ``onnx_export``, ``parity``.
Nothing is imported here, so ``import flowdet.export.runtime`` never pulls torch in.
"""
