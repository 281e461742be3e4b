"""Rectangular input end to end: --img-size WxH in train → checkpoint → eval/predict → ONNX → runtime."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flowdet.cli import main  # noqa: E402
from flowdet.core.size import InputSize  # noqa: E402
from flowdet.errors import InputError  # noqa: E402


@pytest.mark.parametrize("value, hw", [(640, (640, 640)), ("640", (640, 640)), ("960x544", (544, 960)),
                                       ("960X544", (544, 960)), ([544, 960], (544, 960))])
def test_parse_img_size_accepts_square_and_w_by_h(value, hw):
    assert InputSize.parse(value) == hw
    assert InputSize.parse(InputSize(*hw).to_flag()) == hw


@pytest.mark.parametrize("bad", ["960x", "x544", "0x544", "960x0", "300", "-64", "nan", "inf", "64.5", "a",
                                 True, None, [1, 2, 3], "96x5440000"])
def test_parse_img_size_refuses_malformed_sizes_naming_the_field(bad):
    with pytest.raises(InputError) as e:
        InputSize.parse(bad, "train.img_size")
    assert "train.img_size" in str(e.value)


@pytest.mark.parametrize("bad", ["960x", "0x544", "200x160", "nan"])
def test_cli_malformed_img_size_is_one_line_exit_2(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(tmp_path / "none.json"), "--img-size", bad, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "img_size" in err, err
    assert f"'{bad}'" in err, err  # the text as typed: YAML would read 0x544 as hex 1348


def test_set_keeps_the_typed_text_for_a_str_field_and_reads_numbers_for_numeric_ones():
    from flowdet.config import apply_overrides
    from flowdet.detect.config import DetectConfig

    cfg = apply_overrides(DetectConfig(), ["train.img_size=0x544", "train.epochs=12", "train.lr=1e-3"])
    assert cfg.train.img_size == "0x544" and cfg.train.epochs == 12 and cfg.train.lr == 0.001


@pytest.fixture(scope="module")
def wide_set(tmp_path_factory) -> Path:
    from flowdet.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("wide_synth")
    generate(out, SynthConfig(num_images=4, width=320, height=180, seed=2, min_size=10, max_size=30,
                              objects_per_image=(1, 3), distractors_per_image=(0, 1), empty_fraction=0.0))
    return out


@pytest.mark.slow
def test_rectangular_run_trains_exports_and_runs_at_its_own_size(wide_set, tmp_path, capsys):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    main_ok = ["train", "--data", f"{wide_set}/annotations.json", "--images", f"{wide_set}/images",
               "--val", f"{wide_set}/annotations.json", "--out", str(run), "--epochs", "1", "--batch", "2",
               "--img-size", "192x128", "--workers", "0", "--set", "train.progress=false",
               "--set", "augment.multiscale=[160, 224]", "--set", "augment.multiscale_every=1"]
    try:
        main(main_ok)
    except SystemExit as e:
        assert e.code in (0, None)
    from flowdet.engine.checkpoint import load_checkpoint

    ck = load_checkpoint(run / "last.pt")
    assert list(ck["img_size"]) == [128, 192]  # [H, W]

    from flowdet.detect.torch_predictor import TorchPredictor

    assert TorchPredictor(run / "last.pt").img_size == (128, 192)
    assert TorchPredictor(run / "last.pt", img_size="256x160").img_size == (160, 256)

    onnx_path = tmp_path / "m.onnx"
    main_export = ["export", "--ckpt", str(run / "last.pt"), "--out", str(onnx_path)]
    try:
        main(main_export)
    except SystemExit as e:
        assert e.code in (0, None)
    assert "192x128" in capsys.readouterr().out
    from flowdet.runtime.predict.predictor import load_predictor

    p = load_predictor(str(onnx_path))
    assert tuple(p.img_size) == (128, 192)
    img = np.full((180, 320, 3), 90, np.uint8)
    dets = p.predict([img], conf=0.0)
    assert len(dets) == 1 and (dets[0].boxes[:, 2] <= 320 + 1e-3).all() and (dets[0].boxes[:, 3] <= 180 + 1e-3).all()
    # an exported model's size is fixed: another --img-size is refused, not ignored
    with pytest.raises(InputError):
        load_predictor(str(onnx_path), img_size=640)


def test_multiscale_keeps_the_aspect_ratio():
    from flowdet.data.dataset import multiscale_hw

    sizes = {multiscale_hw(0, it, 1, (544, 960), [768, 1152]) for it in range(40)}
    assert len(sizes) > 2
    for h, w in sizes:
        assert h % 32 == 0 and w % 32 == 0 and 768 <= w <= 1152 and abs(h / w - 544 / 960) < 32 / w
    assert multiscale_hw(0, 5, 1, (640, 640), [512, 768])[0] == multiscale_hw(0, 5, 1, (640, 640), [512, 768])[1]


def test_dataset_yields_rectangular_samples(wide_set):
    from flowdet.data.coco import load_coco
    from flowdet.data.dataset import DetectionDataset
    from flowdet.data.transforms import AugmentConfig
    from flowdet.detect.recipes import recipe_for  # noqa: F401  (the recipe module imports cleanly)

    ds = load_coco(f"{wide_set}/annotations.json", f"{wide_set}/images", check_images=False)
    d = DetectionDataset(ds.records, (128, 192), AugmentConfig(mixup_prob=0.0), epochs=3)
    img, target, _, _ = d[(0, 0, 128, 192)]
    assert img.shape == (128, 192, 3)
    plain, target2, _, _ = d[0]
    assert plain.shape == (128, 192, 3)
    if len(target2):
        assert (target2[:, 3] <= 192).all() and (target2[:, 4] <= 128).all()
    json.dumps(target.tolist())
