"""The edge runtime: what a deployed box runs, with numpy, cv2 and onnxruntime only — never torch.

- ``predictor.py``     the :class:`Predictor` protocol and :func:`load_predictor` (picks the backend by suffix)
- ``backend.py``       what every deployed backend shares: batch chunking, letterbox in, NMS/rescale out
- ``onnx_runtime.py``  :class:`OnnxPredictor` on ONNX Runtime (CPU / CUDA / TensorRT execution providers)
- ``openvino_runtime.py``  :class:`OpenVinoPredictor` on OpenVINO (CPU, fp32 / bf16; .onnx or IR .xml; optional extra)
- ``tensorrt.py``      :class:`TensorRTPredictor` on a serialized engine (needs ``tensorrt`` + ``cuda-python``)
- ``metadata.py``      the model contract stored inside ``model.onnx`` (names, input size, letterbox)
- ``layouts.py``       which graph it is (flowdet's own, or an ultralytics raw / end-to-end export) and its
                       preprocessing and decoding, for every backend that reads an ONNX graph
- ``sources.py``       frame sources: video file, image folder, camera index, RTSP/HTTP URL
- ``stream.py``        the streaming loop (reader thread, latest-frame policy, reconnects, Ctrl-C)
- ``tiles.py``         sliced inference for tiny objects (tiles + full frame, NMS / WBF merge)

``tests/runtime/test_torch_free.py`` imports every module here with torch made unimportable. The only
way in to torch is ``load_predictor("x.pt")``, which imports ``flowdet.detect.torch_predictor`` when
asked for a PyTorch checkpoint (the ``train`` extra).

    >>> from flowdet.runtime import load_predictor
    >>> dets = load_predictor("model.onnx").predict([bgr_image])[0]
"""
from flowdet.runtime.predictor import Predictor, load_predictor

__all__ = ["Predictor", "load_predictor"]
