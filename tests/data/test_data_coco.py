"""COCO reader/validator: clean records, and each kind of bad input reported, skipped or clipped."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.data.coco import load_coco, load_image
from flowdet.errors import DataError

W, H = 64, 48


@pytest.fixture()
def tiny(tmp_path: Path) -> tuple[Path, dict]:
    """3 small PNGs and a valid COCO dict (2 categories, ids deliberately not 1..C)."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(images / f"im{i}.png"), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    data = {
        "images": [{"id": 10 + i, "file_name": f"im{i}.png", "width": W, "height": H} for i in range(3)],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2.0, 10.0, 5.0], "area": 50.0, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [20, 20, 8, 8], "area": 64, "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "bottle"}, {"id": 3, "name": "can"}],
    }
    return tmp_path, data


def _load(root: Path, data: dict, **kw):
    path = root / "ann.json"
    path.write_text(json.dumps(data))
    return load_coco(path, root / "images", **kw)


def test_clean_records(tiny):
    root, data = tiny
    ds = _load(root, data)
    assert ds.report.ok and ds.cat_ids == [3, 7] and ds.names == ["can", "bottle"]
    r = {rec.image_id: rec for rec in ds.records}
    assert len(ds.records) == 3 and r[12].boxes.shape == (0, 4)
    assert r[10].boxes.dtype == np.float32 and r[10].classes.dtype == np.int64
    np.testing.assert_allclose(r[10].boxes, [[1.5, 2, 11.5, 7], [20, 20, 28, 28]])
    assert r[10].classes.tolist() == [1, 0] and r[11].ignore.tolist() == [True]
    assert load_image(r[10]).shape == (H, W, 3)
    clean = ds.to_coco_dict()
    assert [a["iscrowd"] for a in clean["annotations"]] == [0, 0, 1]
    assert len(ds.coco().getAnnIds()) == 3


def _problems(ds) -> str:
    return "\n".join(str(p) for p in ds.report.problems)


def test_missing_image(tiny):
    root, data = tiny
    (root / "images" / "im1.png").unlink()
    ds = _load(root, data, check_images=False)  # existence is checked even without decoding
    assert ds.report.images_skipped == 1 and ds.report.boxes_in_skipped_images == 1
    assert "im1.png" in _problems(ds) and "not found" in _problems(ds)
    assert sorted(r.image_id for r in ds.records) == [10, 12]


def test_corrupt_image(tiny):
    root, data = tiny
    (root / "images" / "im2.png").write_bytes(b"\x89PNG not really")
    ds = _load(root, data)
    assert ds.report.images_skipped == 1 and "does not decode" in _problems(ds)
    # without decoding too: a header imread does not recognise is decoded to check it
    assert "does not decode" in _problems(_load(root, data, check_images=False))


def test_size_mismatch_and_missing_size(tiny):
    root, data = tiny
    data["images"][0]["width"] = 2 * W
    del data["images"][1]["height"]
    ds = _load(root, data)
    text = _problems(ds)
    assert f"json says {2 * W}x{H}" in text and "using the file's" in text
    assert [r.image_id for r in ds.records] == [11, 12] and ds.records[0].height == H
    # without decoding a missing size cannot be recovered → skipped
    assert _load(root, data, check_images=False).report.images_skipped == 1


@pytest.mark.parametrize("bbox, reason", [
    ([float("nan"), 1, 2, 2], "not finite"), ([1, 1, float("inf"), 2], "not finite"),
    ([1, 1, 0, 5], "width/height must be > 0"), ([1, 1, 5, -2], "width/height must be > 0"),
    ([1, 2, 3], "not 4 numbers"), ("1,2,3,4", "not 4 numbers"), ([100, 100, 5, 5], "entirely outside"),
])
def test_bad_boxes_dropped(tiny, bbox, reason):
    root, data = tiny
    data["annotations"][0]["bbox"] = bbox
    ds = _load(root, data)
    assert ds.report.boxes_dropped == 1 and reason in _problems(ds)
    assert ds.report.boxes_kept == 2
    assert all(np.isfinite(r.boxes).all() for r in ds.records)


def test_nan_json_literal(tiny):
    """json.dumps writes NaN as a bare literal that Python parses; it must still be dropped."""
    root, data = tiny
    data["annotations"][1]["bbox"] = [float("nan")] * 4
    assert "NaN" in json.dumps(data)
    assert _load(root, data).report.boxes_dropped == 1


def test_box_sticking_out_is_clipped(tiny):
    root, data = tiny
    data["annotations"][0]["bbox"] = [-3.0, 40.0, 10.0, 20.0]
    ds = _load(root, data)
    assert ds.report.boxes_clipped == 1 and "clipped" in _problems(ds)
    box = next(r for r in ds.records if r.image_id == 10).boxes[0]
    np.testing.assert_allclose(box, [0, 40, 7, H])


def test_unknown_category_and_image_and_duplicates(tiny):
    root, data = tiny
    data["annotations"][0]["category_id"] = 99
    data["annotations"][1]["image_id"] = 999
    dup = copy.deepcopy(data["annotations"][2])
    data["annotations"].append(dup)
    data["images"].append(dict(data["images"][0]))  # duplicate image id
    ds = _load(root, data)
    text = _problems(ds)
    assert "unknown category id 99" in text and "unknown image id 999" in text
    assert "duplicate annotation id" in text and "duplicate image id" in text
    assert ds.report.boxes_dropped == 3 and ds.report.boxes_kept == 1


def test_malformed_json_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(DataError) as e:
        load_coco(bad, tmp_path)
    msg = str(e.value)
    assert str(bad) in msg and "line 2" in msg and "\n" not in msg


@pytest.mark.parametrize("data, field", [
    ([], "top level"), ({"images": []}, "categories"), ({"images": {}, "categories": [{"id": 1, "name": "a"}]}, "images"),
])
def test_structural_errors(tmp_path, data, field):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataError, match=field):
        load_coco(p, tmp_path)


def test_strict_raises_on_problem(tiny):
    root, data = tiny
    data["annotations"][0]["bbox"] = [1, 1, 0, 0]
    with pytest.raises(DataError, match="strict"):
        _load(root, data, strict=True)


def test_video_frame_records(tmp_path):
    from flowdet.data.synth import SynthConfig
    from flowdet.data.synth_video import render_video

    out = tmp_path / "v"
    s = render_video(out, SynthConfig(num_images=0, width=320, height=192, seed=3, video_seconds=0.6, fps=5,
                                      min_size=6, max_size=20))
    ds = load_coco(s["video_annotations"])  # default images dir: next to the json (the video is there)
    assert ds.report.ok and len(ds.records) == s["video_frames"] == 3
    rec = ds.records[2]
    assert rec.frame_index == 2 and rec.file.name == "video.mp4"
    assert load_image(rec).shape == (192, 320, 3)
    bad = json.loads(Path(s["video_annotations"]).read_text())
    bad["images"][0]["file_name"] = "video.mp4#000099"
    (out / "bad.json").write_text(json.dumps(bad))
    assert "past the end" in _problems(load_coco(out / "bad.json"))


def test_shared_grogol_val_is_clean():
    try:  # pytest registers the root conftest as "tests.conftest" (rootdir-relative) or "conftest"
        from tests.conftest import shared_path
    except ImportError:
        from conftest import shared_path

    ann = shared_path("grogol", "val.json")
    ds = load_coco(ann)  # decodes every image: the full `data check` path (~1 s)
    assert ds.report.ok, ds.report.summary()
    assert ds.names == ["plastic"] and len(ds.records) == 130 and ds.report.boxes_kept == 2698
