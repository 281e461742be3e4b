"""TensorRT backend: run a serialized engine behind the Predictor interface (torch-free).

UNVERIFIED: TensorRT cannot be installed where flowdet is developed (no GPU, no wheel), so this
file is written against the documented TensorRT 10 Python API (named I/O tensors,
``set_tensor_address`` / ``set_input_shape`` / ``execute_async_v3``) and cuda-python's ``cudart``
and has never run. What is tested here: the clear exit (code 2, one line) when TensorRT or a GPU
is missing. Check it on the target (Jetson: TensorRT 10 from JetPack 6) before relying on it.
Building the engine from the ONNX is export work: ``flowdet.export.tensorrt``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.errors import MissingDependency, ModelFileError
from flowdet.runtime.predict.backend import BatchedPredictor
from flowdet.runtime.predict.metadata import read_sidecar


class EngineUnavailable(MissingDependency):
    """TensorRT, cuda-python or a CUDA device is missing here (exit 2, one line)."""


def tensorrt_module() -> Any:
    """``import tensorrt``, or a one-line EngineUnavailable naming the extra."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineUnavailable("--format engine needs TensorRT, which is not installed "
                                "(pip install 'flowdet[trt]' on a machine with an NVIDIA GPU)") from None
    return trt


def cudart_module() -> Any:
    """cuda-python's ``cudart`` (new and old import paths), or a one-line EngineUnavailable."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise EngineUnavailable("TensorRT inference needs cuda-python (pip install cuda-python)") from None
    return cudart


class TensorRTPredictor(BatchedPredictor):
    """:class:`flowdet.runtime.predict.predictor.Predictor` on a TensorRT engine (metadata from ``<engine>.json``).

    UNVERIFIED (see the module docstring): written for the TensorRT 10 API, never run here.
    Buffers: device memory via cuda-python ``cudart``; host ↔ device copies on one CUDA stream.
    """

    def __init__(self, path: str | Path, max_batch: int = 8):
        trt, self.cudart = tensorrt_module(), cudart_module()
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
