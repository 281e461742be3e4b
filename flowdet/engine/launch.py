"""``--device 0,1`` in one process → the same command again under torchrun, one process per GPU.

What ultralytics users expect: ``flowdet train --device 0,1`` trains on both GPUs without writing
the torchrun line themselves. The command checks the GPUs are there (one line, exit 2, if not),
then runs ``python -m torch.distributed.run --nproc_per_node N --master_port <free> -m flowdet
<the same arguments>`` with ``CUDA_VISIBLE_DEVICES`` set to the list, forwards Ctrl-C / SIGTERM to
it and exits with its exit code. Inside torchrun (``LOCAL_RANK``/``WORLD_SIZE`` set) nothing is
relaunched. Torch is imported only to count the GPUs.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from flowdet.devices import DDP_DEVICES_ENV, parse_device
from flowdet.errors import InputError

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def inside_torchrun(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return "LOCAL_RANK" in env or "WORLD_SIZE" in env


def ddp_devices(device: str | int | None, env: Mapping[str, str] | None = None) -> list[int] | None:
    """The GPUs one process should fan out over (``0,1`` → [0, 1]), or None when one process is right:
    a single device, cpu/auto, or already a torchrun worker."""
    if inside_torchrun(env):
        return None
    kind, ids = parse_device(device)
    if kind != "cuda" or len(ids) < 2:
        return None
    if len(set(ids)) != len(ids):
        raise InputError(f"'{device}' names a GPU twice; one process per GPU needs distinct ones",
                         field="--device")
    return ids


def check_gpus(ids: Sequence[int], device: str, have: int | None = None) -> None:
    """One line when the machine lacks the GPUs asked for (``have``: visible CUDA devices)."""
    have, build = _cuda_count() if have is None else (have, "")
    if have == 0:
        raise InputError(f"'{device}' asks for {len(ids)} GPUs but torch sees none{build}; use --device cpu",
                         field="--device")
    missing = [i for i in ids if i >= have]
    if missing:
        raise InputError(f"'{device}' asks for GPU {', '.join(map(str, missing))} but torch sees {have} "
                         f"(0..{have - 1})", field="--device")


def torchrun_command(argv: Sequence[str], nproc: int, port: int, python: str | None = None) -> list[str]:
    """The relaunch: ``python -m torch.distributed.run … -m flowdet <argv>`` on this one machine."""
    return [python or sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "flowdet", *argv]


def child_env(ids: Sequence[int], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment with CUDA_VISIBLE_DEVICES = the list (workers see them as 0..N-1, and
    flowdet.devices maps ``--device 2,3`` onto that renumbering through DDP_DEVICES_ENV).

    An existing CUDA_VISIBLE_DEVICES already renumbered the GPUs this process sees, so the list is
    taken through it (``CUDA_VISIBLE_DEVICES=4,5,6,7 … --device 0,1`` → 4,5), as torch would."""
    env = dict(os.environ if env is None else env)
    ids_text = ",".join(map(str, ids))
    outer = [e.strip() for e in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if e.strip()]
    visible = ",".join(outer[i] for i in ids) if outer and max(ids) < len(outer) else ids_text
    return {**env, "CUDA_VISIBLE_DEVICES": visible, DDP_DEVICES_ENV: ids_text}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_child(cmd: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``cmd`` and return its exit code (128 + N when a signal N ended it).

    The child gets its own session, so a terminal's Ctrl-C reaches it once, forwarded from here
    (torchrun then stops its workers; a worker saves nothing half-written), not twice."""
    proc = subprocess.Popen(list(cmd), env=dict(env), start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():  # handlers can only be set there
        previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        while True:  # wait with a timeout: a plain wait() blocks in waitpid, and a signal that lands on
            try:     # another thread would only be handled (forwarded) once the child ended by itself
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if proc.poll() is None:  # an exception here (not a signal): do not leave workers behind
            proc.kill()
            proc.wait()
    return 128 - code if code < 0 else code


def relaunch(argv: Sequence[str], ids: Sequence[int], device: str, have: int | None = None) -> int:
    """Check the GPUs, say so in one line, run the same command under torchrun; its exit code."""
    from flowdet import log

    check_gpus(ids, device, have)
    cmd, env = torchrun_command(argv, len(ids), free_port()), child_env(ids)
    log.info(f"--device {device}: {len(ids)} GPUs, relaunching as one process per GPU: "
             f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} python {shlex.join(cmd[1:])}")
    return run_child(cmd, env)


def _cuda_count() -> tuple[int, str]:
    """(visible CUDA devices, " (torch X, CUDA build: Y)" to name why there are none)."""
    try:
        import torch
    except ImportError:
        return 0, " (torch is not installed)"
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return have, f" (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})"
