"""torchrun DDP helpers: NCCL on GPU, gloo on CPU; only rank 0 writes."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: str = "auto") -> torch.device:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1); pick the device."""
    from flowdet.devices import torch_device

    dev = torch_device(device)  # checked first: a missing GPU is one line, not an NCCL traceback
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
