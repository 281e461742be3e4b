"""TensorRT: build an engine from the exported ONNX (``flowdet export --format engine``).

UNVERIFIED, like the runtime side (``flowdet.runtime.predict.tensorrt``, which also holds the TensorRT /
cuda-python imports and ``EngineUnavailable``): written against the documented TensorRT 10 Python
API and never run here. What is tested: the clear exit (code 2, one line) when TensorRT or a GPU is
missing.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flowdet import log as _log
from flowdet.errors import FlowdetError, ModelFileError
from flowdet.runtime.predict.tensorrt import EngineUnavailable, cudart_module, tensorrt_module


def _gpu_count() -> int:
    try:
        cudart = cudart_module()
    except EngineUnavailable:
        try:
            import torch
        except ImportError:
            return 0
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    err, n = cudart.cudaGetDeviceCount()
    return int(n) if int(err) == 0 else 0


def check_engine_support() -> None:
    """Raise a one-line exit-2 error when an engine cannot be built here."""
    trt = tensorrt_module()
    if _gpu_count() < 1:
        raise EngineUnavailable(f"--format engine needs an NVIDIA GPU; TensorRT {trt.__version__} imports but no CUDA device was found")


def build_engine(onnx_path: str | Path, out: str | Path, half: bool = False, workspace_gb: float = 2.0,
                 max_batch: int = 8, log: Callable[[str], None] = _log.info) -> Path:
    """Parse the ONNX and serialize an engine to ``out`` (fp16 kernels allowed with ``half``).

    A dynamic-batch ONNX gets one optimization profile: batch 1 (min) … ``max_batch`` (max),
    optimized for 1 (the streaming case)."""
    check_engine_support()
    trt = tensorrt_module()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"{onnx_path}: TensorRT cannot parse the ONNX ({errors[:300]})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if half:
        if not getattr(builder, "platform_has_fast_fp16", True):  # deprecated in TensorRT 10
            log("--half: this GPU has no fast fp16; building fp32")
        else:
            config.set_flag(trt.BuilderFlag.FP16)
    inp = network.get_input(0)
    if inp.shape[0] == -1:
        _, c, h, w = inp.shape
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, (1, c, h, w), (1, c, h, w), (max_batch, c, h, w))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise FlowdetError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(serialized))
    log(f"engine: {out} ({'fp16' if half else 'fp32'}, TensorRT {trt.__version__})")
    return out
