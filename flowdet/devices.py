"""``--device`` as ultralytics users write it: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``0``, ``0,1``.

Torch-free: parsing is shared by the PyTorch side (:func:`torch_device`) and the ONNX runtime
(:func:`onnx_providers`), so a device that is not there is one line on either side, never a torch
traceback and never a silent fall-back to the CPU.
"""
from __future__ import annotations

import os

from flowdet.errors import InputError

DEVICE_HELP = "auto (GPU when there is one) | cpu | cuda | cuda:N | N | N,M (train/pretrain: one process per GPU)"
# Set by flowdet.engine.launch for the torchrun it starts: CUDA_VISIBLE_DEVICES holds exactly these
# GPUs, so a worker's --device 2,3 means visible device LOCAL_RANK (0, 1), not 2 and 3.
DDP_DEVICES_ENV = "FLOWDET_DDP_DEVICES"


def parse_device(device: str | int | None) -> tuple[str, list[int]]:
    """→ (kind, GPU indices): ("auto", []), ("cpu", []), ("cuda", [] = the current one, or [N, …])."""
    s = "auto" if device is None else str(device).strip().lower().replace(" ", "")
    if s in ("", "auto"):
        return "auto", []
    if s == "cpu":
        return "cpu", []
    if s in ("cuda", "gpu"):
        return "cuda", []
    body = s[5:] if s.startswith("cuda:") else s
    try:
        ids = [int(v) for v in body.split(",") if v != ""]
    except ValueError:
        ids = []
    if not ids or any(i < 0 for i in ids):
        raise InputError(f"'{device}' is not a device: {DEVICE_HELP}", field="--device")
    return "cuda", ids


def torch_device(device: str | int | None):  # -> torch.device (torch imported here, on request)
    """The torch device for this process; one-line InputError when it is not on this machine.

    With several indices (``0,1``) each torchrun process takes the one at its LOCAL_RANK; a single
    process (the Python API: the CLI relaunches itself, see flowdet.engine.launch) uses the first and
    says how to use them all."""
    import torch

    kind, ids = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu")
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "auto":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if have else torch.device("cpu")
    if not have:
        raise InputError(f"'{device}' asks for a GPU but torch sees none (torch {torch.__version__}, "
                         f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu", field="--device")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not ids:
        idx = local
    elif len(ids) > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from flowdet import log

        log.warn(f"--device {device}: one process uses one GPU ({ids[0]}); for all of them: "
                 f"torchrun --nproc_per_node {len(ids)} -m flowdet ... --device {device}")
        idx = ids[0]
    elif os.environ.get(DDP_DEVICES_ENV) == ",".join(map(str, ids)):
        idx = local % len(ids)  # our own relaunch: CUDA_VISIBLE_DEVICES already holds exactly these
    else:
        idx = ids[local % len(ids)]
    if idx >= have:
        raise InputError(f"'{device}': no CUDA device {idx} (this machine has {have}: 0..{have - 1})",
                         field="--device")
    return torch.device("cuda", idx)


def onnx_providers(device: str | int | None) -> str | list[str]:
    """ONNX Runtime providers for ``--device``: auto → CUDA when this build has it; cuda → CUDA or a
    one-line error saying why not (never a silent CPU run)."""
    kind, ids = parse_device(device)
    if kind == "auto":
        return "auto"
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise InputError(f"'{device}': this onnxruntime build has no CUDA provider (available: "
                         f"{', '.join(ort.get_available_providers())}); pip install onnxruntime-gpu, "
                         "or use --device cpu", field="--device")
    if ids:
        return [("CUDAExecutionProvider", {"device_id": ids[0]}), "CPUExecutionProvider"]  # type: ignore[list-item]
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]
