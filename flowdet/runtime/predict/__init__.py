"""Prediction: a model file in, one :class:`~flowdet.core.detections.Detections` per image out.
Imports only :mod:`flowdet.core` (and, for a ``.pt`` checkpoint only, ``flowdet.detect.torch_predictor``).

- ``predictor.py``     the :class:`Predictor` protocol and :func:`load_predictor` (picks the backend by suffix)
- ``backend.py``       what every deployed backend shares: batch chunking, letterbox in, NMS/rescale out
- ``onnx_runtime.py``  :class:`OnnxPredictor` on ONNX Runtime (CPU / CUDA / TensorRT execution providers)
- ``openvino_runtime.py``  :class:`OpenVinoPredictor` on OpenVINO (CPU, fp32 / bf16; .onnx or IR .xml; optional extra)
- ``tensorrt.py``      :class:`TensorRTPredictor` on a serialized engine (needs ``tensorrt`` + ``cuda-python``)
- ``metadata.py``      the model contract stored inside ``model.onnx`` (names, input size, letterbox)
- ``layouts.py``       which graph it is (flowdet's own, or an ultralytics raw / end-to-end export) and its
                       preprocessing and decoding, for every backend that reads an ONNX graph
- ``tiles.py``         sliced inference for tiny objects (tiles + full frame, NMS / WBF merge)
- ``tta.py``           test-time augmentation (a frame and its mirror, merged like tiles)
"""
