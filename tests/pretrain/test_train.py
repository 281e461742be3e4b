"""The pretraining loop: artifacts, backbone hand-off, exact resume, center-loss split, CLI, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowdet.pretrain.train import pretrain

from .conftest import tiny_cfg

REPO = Path(__file__).resolve().parents[2]


def _frames_cfg(method: str, frames: Path, out: Path, **kw):
    base = {"method.name": method, "data.frames": f"[{frames}]", "train.out": str(out), "train.batch": 2,
            "train.max_steps": 2, "method.small_views": 1, "method.hidden_dim": 64, "method.proj_dim": 32}
    base.update(kw)
    return tiny_cfg(**base)


@pytest.mark.parametrize("method", ["patch-contrast", "self-emd"])
def test_artifacts_and_backbone_handoff(synth_frames, tmp_path, method):
    s = pretrain(_frames_cfg(method, synth_frames, tmp_path, **{"method.crop": 32}))
    for name in ("backbone.pt", "last.pt", "metrics.csv", "loss.png", "config.yaml", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert s["backbone"] == str(tmp_path / "backbone.pt") and s["final_loss"] == pytest.approx(s["final_loss"])
    art = torch.load(tmp_path / "backbone.pt", weights_only=True)
    assert set(art) == {"model_size", "state_dict", "method", "config", "flowdet_version"}
    assert art["method"] == method and art["model_size"] == "nano"
    from flowdet.models.yolox import build_backbone, build_model

    assert list(art["state_dict"]) == list(build_backbone("nano").state_dict())
    model = build_model("nano", 1)
    model.backbone.load_state_dict(art["state_dict"], strict=True)
    try:
        from flowdet.detect.backbone import load_backbone
    except ImportError:  # the detector side not present in this checkout
        return
    fresh = build_model("nano", 1)
    report = load_backbone(fresh, tmp_path / "backbone.pt")
    assert report["missing"] == [] and report["unexpected"] == [] and report["shape_mismatch"] == []
    assert torch.equal(fresh.backbone.dark5[0].dconv.conv.weight, art["state_dict"]["dark5.0.dconv.conv.weight"])


def test_exact_resume_after_interrupt(synth_frames, tmp_path):
    """Ctrl-C after epoch 0, then --resume: the same weights as an uninterrupted run (self-emd: it
    also draws SPC windows from the torch RNG, so the RNG restore is exercised)."""
    kw = {"train.epochs": 2, "method.crop": 32}
    pretrain(_frames_cfg("self-emd", synth_frames, tmp_path / "a", **kw))

    def stop(epoch, row):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(_frames_cfg("self-emd", synth_frames, tmp_path / "b", **kw), on_epoch_end=stop)
    s = pretrain(_frames_cfg("self-emd", synth_frames, tmp_path / "b", **kw, **{"train.resume": True}))
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and s["epochs"] == 2


def test_center_loss_splits_by_image_and_reports_accuracy(synth_small, tmp_path):
    cfg = tiny_cfg(**{"method.name": "center-loss", "data.ann": str(synth_small / "annotations.json"),
                      "train.out": str(tmp_path), "method.crop": 32, "method.patch": 32, "train.batch": 2,
                      "method.val_fraction": 0.25})
    s = pretrain(cfg)
    assert s["images_val"] == 2 and s["images_train"] == 6
    assert 0.0 <= s["val_acc"] <= 1.0 and s["val_patches"] > 0
    val_ids = set(json.loads((tmp_path / "split.json").read_text())["val_image_ids"])
    assert len(val_ids) == 2
    from flowdet.pretrain.train import build_datasets

    train_ds, val_ds, _ = build_datasets(cfg)
    train_files = {r.file_name for r in train_ds.store.items}
    val_files = {r.file_name for r in val_ds.store.items}
    assert not train_files & val_files and len(train_files) == 6


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    from flowdet.cli import main

    cases = [
        ["pretrain", "--method", "self-emd", "--out", str(tmp_path)],  # no frames
        ["pretrain", "--method", "center-loss", "--frames", str(tmp_path)],  # no --ann
        ["pretrain", "--frames", str(tmp_path), "--set", "method.loss=l2"],
        ["pretrain", "--frames", str(tmp_path), "--set", "method.nope=1"],
        ["pretrain", "--frames", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        ["pretrain", "--resume", "--out", str(tmp_path / "never")],
    ]
    for argv in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and "Traceback" not in "\n".join(err), argv


def test_cli_run_and_resume(synth_frames, tmp_path, capsys):
    from flowdet.cli import main

    out = tmp_path / "run"
    main(["pretrain", "--method", "byol", "--frames", str(synth_frames), "--size", "nano", "--out", str(out),
          "--epochs", "1", "--batch", "2", "--crop", "32", "--set", "train.max_steps=1", "--set", "train.threads=1",
          "--set", "data.frame_size=320", "--set", "method.small_views=0"])
    cap = capsys.readouterr()
    assert "backbone:" in cap.out
    assert "byol epoch 1/1: loss" in cap.err and "\r" not in cap.err  # one clean line per epoch, no bar
    main(["pretrain", "--resume", "--out", str(out), "--epochs", "2"])  # config.yaml of the run is the base
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
    assert "byol epoch 2/2" in capsys.readouterr().err
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2"]


@pytest.mark.slow
def test_torchrun_ddp_gloo(synth_frames, tmp_path):
    """Two CPU processes (gloo): one epoch, rank 0 writes the artifacts."""
    import socket

    out = tmp_path / "ddp"
    with socket.socket() as sock:  # a free port: parallel test runs must not collide
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "flowdet", "pretrain", "--method", "patch-contrast", "--frames", str(synth_frames), "--out", str(out),
           "--epochs", "1", "--batch", "2", "--crop", "32", "--device", "cpu", "--set", "train.max_steps=2",
           "--set", "data.frame_size=320", "--set", "train.threads=1"]
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2
    assert (out / "backbone.pt").is_file()


def test_pretrain_into_a_used_folder_goes_to_a_new_one(tmp_path, capsys):
    from cli_helpers import run_cli

    (tmp_path / "ssl").mkdir()
    (tmp_path / "ssl" / "backbone.pt").write_bytes(b"earlier run")
    code, err = run_cli(capsys, "pretrain", "--method", "byol", "--frames", str(tmp_path / "missing"),
                        "--out", str(tmp_path / "ssl"))
    assert code == 2 and f"this run goes to {tmp_path / 'ssl2'}" in err
