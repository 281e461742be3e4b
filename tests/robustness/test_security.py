"""Security: a checkpoint never executes code, and coco2yolo never reads outside --images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness import hostile

torch = pytest.importorskip("torch")


@pytest.fixture(params=["torch-zip", "raw-pickle"])
def evil(request, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PAYLOAD_RAN"
    return hostile.malicious_pt(tmp_path / "evil.pt", marker, raw=request.param == "raw-pickle"), marker


def _refused(res, evil_pt: Path, marker: Path) -> None:
    line = res.fails(str(evil_pt), "refused to load")
    assert "builtins.open" in line or "io.open" in line  # names what it refused
    assert not marker.exists(), "the pickle payload ran"


def test_predict_eval_export_stream_refuse_a_malicious_checkpoint(cli, evil, tmp_path):
    pt, marker = evil
    img = hostile.image(tmp_path / "a.jpg")
    ann = hostile.coco(tmp_path / "set")
    _refused(cli("predict", img, "--model", pt, "--out", tmp_path / "p"), pt, marker)
    _refused(cli("eval", "--ckpt", pt, "--ann", ann), pt, marker)
    _refused(cli("export", "--ckpt", pt, "--out", tmp_path / "m.onnx"), pt, marker)
    _refused(cli("stream", "--model", pt, tmp_path / "set" / "images"), pt, marker)
    assert not (tmp_path / "m.onnx").exists()


def test_train_resume_and_backbone_refuse_a_malicious_checkpoint(cli, evil, tmp_path):
    pt, marker = evil
    _refused(cli("train", "--resume", pt), pt, marker)  # the config is read from the checkpoint first
    ann = hostile.coco(tmp_path / "set")
    _refused(cli("train", "--data", ann, "--images", tmp_path / "set" / "images", "--out", tmp_path / "run",
                 "--epochs", 1, "--img-size", 64, "--workers", 0, "--backbone", pt), pt, marker)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_pretrain_resume_refuses_a_malicious_checkpoint(cli, evil, tmp_path):
    from flowdet.config import load_config, save_config
    from flowdet.pretrain.config import PretrainConfig

    pt, marker = evil
    frames = tmp_path / "frames"
    for i in range(2):
        hostile.image(frames / f"{i}.jpg", seed=i)
    out = tmp_path / "run"
    out.mkdir()
    cfg = load_config(PretrainConfig, None, [f"data.frames=[{frames}]", f"train.out={out}", "train.epochs=1",
                                             "train.batch=2", "data.frame_size=64", "train.device=cpu"])
    save_config(cfg, out / "config.yaml")
    pt.rename(out / "last.pt")
    _refused(cli("pretrain", "--resume", "--out", out), out / "last.pt", marker)


def test_every_flowdet_checkpoint_loads_with_weights_only(tmp_path, ckpt64):
    """The other half of the fix: flowdet's own files pass torch's safe unpickler (detector last.pt
    with optimizer + RNG state is covered by tests/detect's resume test through load_checkpoint)."""
    from flowdet.engine.checkpoint import rng_state, save_checkpoint

    torch.load(ckpt64, weights_only=True)
    save_checkpoint({"rng": rng_state(), "config": {"a": [1.0, 2.0]}, "metrics": {"AP": 0.5}}, tmp_path / "x.pt")
    torch.load(tmp_path / "x.pt", weights_only=True)


def test_coco2yolo_never_copies_files_outside_images(cli, tmp_path):
    secret = tmp_path / "secret.jpg"  # stands in for /etc/passwd
    hostile.image(secret)
    root = tmp_path / "ds"
    ann = hostile.coco(root, n=2)
    data = json.loads(ann.read_text())
    data["images"] += [{"id": 3, "file_name": str(secret), "width": 96, "height": 64},
                       {"id": 4, "file_name": "../../secret.jpg", "width": 96, "height": 64}]
    ann.write_text(json.dumps(data))
    res = cli("convert", "coco2yolo", ann, "--images", root / "images", "--out", tmp_path / "yolo", "--copy").ok()
    assert res.err.count("outside the images folder") == 2
    copied = sorted(p.name for p in (tmp_path / "yolo" / "images" / "train").iterdir())
    assert copied == ["im0.jpg", "im1.jpg"]
    assert "2 of 4 images" in res.out
    cli("convert", "coco2yolo", ann, "--images", root / "images", "--out", tmp_path / "y2", "--strict").fails(
        "outside the images folder")
