"""TensorRT: build an engine from the exported ONNX, and a predictor that runs it.

UNVERIFIED: TensorRT cannot be installed where flowdet is developed (no GPU, no wheel), so this
file is written against the documented TensorRT 10 Python API (named I/O tensors,
``set_tensor_address`` / ``set_input_shape`` / ``execute_async_v3``) and cuda-python's ``cudart``
and has never run. What is tested here: the clear exit (code 2, one line) when TensorRT or a GPU
is missing. Check it on the target (Jetson: TensorRT 10 from JetPack 6) before relying on it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from flowdet import log as _log
from flowdet.errors import FlowdetError, MissingDependency, ModelFileError
from flowdet.runtime.backend import BatchedPredictor
from flowdet.runtime.metadata import read_sidecar


class EngineUnavailable(MissingDependency):
    """TensorRT, cuda-python or a CUDA device is missing here (exit 2, one line)."""


def _trt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineUnavailable("--format engine needs TensorRT, which is not installed "
                                "(pip install 'flowdet[trt]' on a machine with an NVIDIA GPU)") from None
    return trt


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise EngineUnavailable("TensorRT inference needs cuda-python (pip install cuda-python)") from None
    return cudart


def _gpu_count() -> int:
    try:
        cudart = _cudart()
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
    trt = _trt()
    if _gpu_count() < 1:
        raise EngineUnavailable(f"--format engine needs an NVIDIA GPU; TensorRT {trt.__version__} imports but no CUDA device was found")


def build_engine(onnx_path: str | Path, out: str | Path, half: bool = False, workspace_gb: float = 2.0,
                 max_batch: int = 8, log: Callable[[str], None] = _log.info) -> Path:
    """Parse the ONNX and serialize an engine to ``out`` (fp16 kernels allowed with ``half``).

    A dynamic-batch ONNX gets one optimization profile: batch 1 (min) … ``max_batch`` (max),
    optimized for 1 (the streaming case)."""
    check_engine_support()
    trt = _trt()
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


class TensorRTPredictor(BatchedPredictor):
    """:class:`flowdet.runtime.predictor.Predictor` on a TensorRT engine (metadata from ``<engine>.json``).

    UNVERIFIED (see the module docstring): written for the TensorRT 10 API, never run here.
    Buffers: device memory via cuda-python ``cudart``; host ↔ device copies on one CUDA stream.
    """

    def __init__(self, path: str | Path, max_batch: int = 8):
        trt, self.cudart = _trt(), _cudart()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: engine not found")
        self.meta = read_sidecar(self.path)
        self.names, self.cat_ids, self.img_size = self.meta.names, self.meta.cat_ids, self.meta.img_size
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ModelFileError(f"{self.path}: TensorRT could not deserialize the engine (built for another TensorRT/GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        self.fixed_batch: int | None = shape[0] if shape[0] > 0 else None
        self.max_batch = self.fixed_batch or max_batch
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        err, self.stream = self.cudart.cudaStreamCreate()
        self._check(err, "cudaStreamCreate")
        self._buffers: dict[str, tuple[int, int]] = {}  # name → (device pointer, bytes)

    def _check(self, err: Any, what: str) -> None:
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err} in {what}")

    def _device(self, name: str, nbytes: int) -> int:
        """A device buffer for ``name`` of at least ``nbytes`` (grown, never shrunk)."""
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self.cudart.cudaFree(ptr)
            err, ptr = self.cudart.cudaMalloc(nbytes)
            self._check(err, "cudaMalloc")
            self._buffers[name] = (ptr, nbytes)
        return self._buffers[name][0]

    def _run(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cudart = self.cudart
        x = np.ascontiguousarray(chunk.astype(self.dtypes[self.input_name], copy=False))
        self.context.set_input_shape(self.input_name, x.shape)
        d_in = self._device(self.input_name, x.nbytes)
        self._check(cudart.cudaMemcpyAsync(d_in, x.ctypes.data, x.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                           self.stream)[0], "cudaMemcpyAsync H2D")
        self.context.set_tensor_address(self.input_name, d_in)
        outs = {}
        for name in ("boxes", "scores"):
            arr = np.empty(tuple(self.context.get_tensor_shape(name)), self.dtypes[name])
            self.context.set_tensor_address(name, self._device(name, arr.nbytes))
            outs[name] = arr
        if not self.context.execute_async_v3(int(self.stream)):  # TensorRT takes the raw handle
            raise RuntimeError("TensorRT execute_async_v3 failed")
        for name, arr in outs.items():
            self._check(cudart.cudaMemcpyAsync(arr.ctypes.data, self._buffers[name][0], arr.nbytes,
                                               cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream)[0],
                        "cudaMemcpyAsync D2H")
        self._check(cudart.cudaStreamSynchronize(self.stream)[0], "cudaStreamSynchronize")
        return outs["boxes"].astype(np.float32), outs["scores"].astype(np.float32)

    def __del__(self) -> None:
        cudart = getattr(self, "cudart", None)
        if cudart is None:
            return
        for ptr, _ in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
