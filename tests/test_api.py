"""The Python API (flowdet.api): `from flowdet import Detector, train` reads like the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(best.pt with a stored best-F1 threshold, its ONNX export, a folder of two images)."""
    from flowdet.cli import main
    from flowdet.detect.io import minimal_checkpoint
    from flowdet.engine.checkpoint import save_checkpoint
    from flowdet.models.yolox import build_model

    d = tmp_path_factory.mktemp("api")
    torch.manual_seed(0)
    m = build_model("nano", 1)
    with torch.no_grad():  # some boxes above 0.25 (a fresh head scores ~1e-4 everywhere)
        for conv in list(m.head.obj_preds) + list(m.head.cls_preds):
            conv.bias.fill_(3.0)
    ck = {**minimal_checkpoint(m, ["bottle"], (128, 128), cat_ids=[7]), "metrics": {"best_f1_conf": 0.3, "best_f1": 0.5}}
    save_checkpoint(ck, d / "best.pt")
    main(["export", "--ckpt", str(d / "best.pt"), "--out", str(d / "m.onnx"), "--no-parity"])
    rng = np.random.default_rng(0)
    (d / "imgs").mkdir()
    for i in (1, 2):
        cv2.imwrite(str(d / "imgs" / f"{i}.jpg"), rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))
    return d / "best.pt", d / "m.onnx", d / "imgs"


@pytest.mark.parametrize("kind", ["pt", "onnx"])
def test_detector_load_predict_and_results(model_files, tmp_path, kind):
    from flowdet import Detector

    pt, onnx, imgs = model_files
    model = Detector.load(pt if kind == "pt" else onnx)
    assert model.names == ["bottle"] and model.conf == pytest.approx(0.3)  # the stored best-F1 threshold
    results = model.predict(imgs)
    assert [r.path.name for r in results] == ["1.jpg", "2.jpg"]
    r = results[0]
    assert len(r) > 0 and r.boxes.shape == (len(r), 4) and (r.scores >= 0.3).all() and r.labels[0] == "bottle"
    assert r.boxes[:, [0, 2]].max() <= 160 and r.boxes[:, [1, 3]].max() <= 96  # the image's own pixels
    drawn = r.plot()
    assert drawn.shape == r.image.shape and not np.array_equal(drawn, r.image)
    assert r.save(tmp_path / "out" / "a.jpg").is_file()
    coco = r.to_coco()
    assert len(coco) == len(r) and coco[0]["image_id"] == 1 and coco[0]["category_id"] == 7
    assert set(coco[0]) == {"image_id", "category_id", "bbox", "score"}
    arrays = model.predict([r.image, r.image], conf=0.9)  # BGR arrays, an explicit threshold
    assert len(arrays) == 2 and all((a.scores >= 0.9).all() and a.path is None for a in arrays)


def test_bad_inputs_are_flowdet_errors(model_files, tmp_path):
    from flowdet import Detector
    from flowdet.errors import DataError, ModelFileError

    with pytest.raises(ModelFileError, match="not found"):
        Detector.load(tmp_path / "nope.onnx")
    model = Detector.load(model_files[1])
    with pytest.raises(DataError, match="H×W×3 uint8"):
        model.predict(np.zeros((4, 4), np.float32))
    with pytest.raises(DataError, match="no such file"):
        model.predict(tmp_path / "missing")


def test_import_flowdet_stays_torch_free_until_a_pt_is_loaded():
    code = "import sys, flowdet; from flowdet import Detector, Results, train; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
