"""`--device 0,1` in one process relaunches the same command under torchrun (flowdet.engine.launch).

No GPU needed: the command, the environment, the exit code and Ctrl-C forwarding are checked with
stand-in children; the real torchrun relaunch runs in tests/detect/test_train.py (gloo, CPU)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
from cli_helpers import run_cli

from flowdet.devices import DDP_DEVICES_ENV
from flowdet.engine import launch
from flowdet.errors import InputError


def test_only_a_device_list_outside_torchrun_fans_out():
    assert launch.ddp_devices("0,1", env={}) == [0, 1]
    assert launch.ddp_devices("cuda:2,3", env={}) == [2, 3]
    for one in ("0", "cuda", "cpu", "auto", None, "cuda:1"):
        assert launch.ddp_devices(one, env={}) is None
    assert launch.ddp_devices("0,1", env={"LOCAL_RANK": "0"}) is None  # already a torchrun worker
    assert launch.ddp_devices("0,1", env={"WORLD_SIZE": "2"}) is None
    with pytest.raises(InputError, match="twice"):
        launch.ddp_devices("0,0", env={})


def test_torchrun_command_and_environment():
    cmd = launch.torchrun_command(["train", "--data", "a b.json", "--device", "2,3"], 2, 41234, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                   "--master_addr", "127.0.0.1", "--master_port", "41234", "-m", "flowdet",
                   "train", "--data", "a b.json", "--device", "2,3"]
    env = launch.child_env([2, 3], env={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "2,3", DDP_DEVICES_ENV: "2,3"}
    # an outer CUDA_VISIBLE_DEVICES already renumbered the GPUs: 0,1 of 4,5,6,7 are 4,5
    assert launch.child_env([0, 1], env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"})["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert 0 < launch.free_port() < 65536


def test_missing_gpus_are_one_line():
    with pytest.raises(InputError, match="torch sees none"):
        launch.check_gpus([0, 1], "0,1", have=0)
    with pytest.raises(InputError, match=r"GPU 1 but torch sees 1 \(0\.\.0\)"):
        launch.check_gpus([0, 1], "0,1", have=1)
    launch.check_gpus([0, 1], "0,1", have=2)


def test_child_exit_code_and_environment_come_back():
    code = launch.run_child([sys.executable, "-c", "import os, sys; sys.exit(int(os.environ['X']) + 3)"],
                            {"X": "4", "PATH": ""})
    assert code == 7


def test_ctrl_c_is_forwarded_to_the_child(tmp_path):
    ready = tmp_path / "ready"
    child = (f"import signal, sys, time, pathlib\n"
             f"signal.signal(signal.SIGINT, lambda *a: sys.exit(42))\n"
             f"pathlib.Path({str(ready)!r}).touch()\n"
             f"time.sleep(60)\nsys.exit(1)\n")

    def press_ctrl_c() -> None:
        for _ in range(2000):  # until the child has its handler (not a timing assert: it only waits)
            if ready.exists():
                break
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)  # a process-directed Ctrl-C, as a terminal sends it

    # The handler before the call: Python's default one, or SIG_IGN when the suite runs as a background job.
    before = signal.getsignal(signal.SIGINT)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    assert launch.run_child([sys.executable, "-c", child], {"PATH": ""}) == 42
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_train_on_two_devices_relaunches_the_same_command(synth_small, tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_relaunch(argv, ids, device, have=None):
        seen.update(argv=list(argv), ids=list(ids), device=device)
        return 5  # the child's exit code is the command's

    monkeypatch.setattr(launch, "relaunch", fake_relaunch)
    for var in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    args = ["train", "--data", str(synth_small / "annotations.json"), "--epochs", "1", "--out", str(tmp_path / "r"),
            "--device", "0,1"]
    code, _ = run_cli(capsys, *args)
    assert code == 5 and seen == {"argv": args, "ids": [0, 1], "device": "0,1"}
    assert not (tmp_path / "r").exists()  # the workers decide and create the run folder, not the launcher
    seen.clear()  # a bad config is one line from the launcher, not one per worker
    code, err = run_cli(capsys, "train", "--data", str(synth_small / "annotations.json"), "--epochs", "0",
                        "--device", "0,1")
    assert code == 2 and "--epochs" in err and seen == {}


def test_two_devices_without_gpus_exit_2_in_one_line(synth_small, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(launch, "_cuda_count", lambda: (0, " (stand-in)"))
    for var in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    for verb in (["train", "--data", str(synth_small / "annotations.json")],
                 ["pretrain", "--frames", str(synth_small / "images"), "--method", "byol"]):
        code, err = run_cli(capsys, *verb, "--out", str(tmp_path / verb[0]), "--device", "0,1")
        assert code == 2 and "asks for 2 GPUs but torch sees none" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / verb[0]).exists()


def test_a_relaunched_worker_takes_its_visible_gpu(monkeypatch):
    # CUDA_VISIBLE_DEVICES=2,3 renumbers them 0,1: the worker of LOCAL_RANK 1 with --device 2,3 is cuda:1
    import torch

    from flowdet.devices import torch_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(DDP_DEVICES_ENV, "2,3")
    assert torch_device("2,3") == torch.device("cuda", 1)
    monkeypatch.delenv(DDP_DEVICES_ENV)  # a hand-written torchrun keeps physical numbering: GPU 3, not there
    with pytest.raises(InputError, match="no CUDA device 3"):
        torch_device("2,3")
