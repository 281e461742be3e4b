"""Synthetic FloW-like scenes: layout, determinism, small-object share, visible objects, video."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.data.coco import load_coco
from flowdet.data.synth import SynthConfig, generate
from flowdet.errors import InputError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_validator(synth_small):
    assert len(list((synth_small / "images").glob("*.jpg"))) == 8
    ds = load_coco(synth_small / "annotations.json")
    assert ds.report.ok, ds.report.summary()
    assert ds.names == ["bottle"] and ds.cat_ids == [1]
    assert sum(len(r.boxes) for r in ds.records) > 8


def test_same_seed_is_byte_identical(tmp_path):
    cfg = SynthConfig(num_images=3, width=320, height=192, seed=7, video_seconds=0.4, fps=5, min_size=6, max_size=20)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) == {"annotations.json", "video.mp4", "video_annotations.json",
                      "images/000001.jpg", "images/000002.jpg", "images/000003.jpg"}
    assert a == b
    # one random stream per image: image 2 does not depend on how many images are made
    generate(tmp_path / "c", SynthConfig(**{**cfg.__dict__, "num_images": 2, "video_seconds": 0}))
    assert _files(tmp_path / "c")["images/000002.jpg"] == a["images/000002.jpg"]
    generate(tmp_path / "d", SynthConfig(**{**cfg.__dict__, "seed": 8, "video_seconds": 0}))
    assert _files(tmp_path / "d")["images/000001.jpg"] != a["images/000001.jpg"]


def test_small_objects_at_1280x720(tmp_path):
    s = generate(tmp_path, SynthConfig(num_images=10, width=1280, height=720, seed=0))
    assert s["boxes"] >= 40
    assert s["small_share"] >= 0.6, s
    ds = load_coco(s["annotations"], check_images=False)
    assert ds.report.ok
    b = np.concatenate([r.boxes for r in ds.records])
    longest = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    assert 0.6 <= np.mean((longest >= 5) & (longest <= 34)) and longest.max() <= 70


def test_objects_stand_out_from_water(synth_small):
    """Learnability proxy: the inside of a box differs in colour from a ring of water around it."""
    ds = load_coco(synth_small / "annotations.json", check_images=False)
    contrasts = []
    for r in ds.records:
        img = cv2.imread(str(r.file)).astype(np.float32)
        for x1, y1, x2, y2 in r.boxes.astype(int):
            inner = img[y1:y2, x1:x2].reshape(-1, 3)
            ring = np.concatenate([img[max(y1 - 4, 0):y1, x1:x2].reshape(-1, 3), img[y2:y2 + 4, x1:x2].reshape(-1, 3)])
            if len(ring):
                contrasts.append(np.abs(inner - ring.mean(0)).max(axis=1).mean())
    assert np.median(contrasts) > 15, np.median(contrasts)


def test_video_ground_truth_format(tmp_path):
    s = generate(tmp_path, SynthConfig(num_images=0, width=320, height=192, seed=1, video_seconds=1.0, fps=4,
                                       min_size=6, max_size=20))
    cap = cv2.VideoCapture(s["video"])
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    gt = json.loads(Path(s["video_annotations"]).read_text())
    assert [im["file_name"] for im in gt["images"]] == [f"video.mp4#{k:06d}" for k in range(4)]
    assert [im["frame_index"] for im in gt["images"]] == list(range(4))
    tracks = {a["track_id"] for a in gt["annotations"]}
    assert gt["annotations"] and len(tracks) < len(gt["annotations"])  # objects persist across frames


@pytest.mark.parametrize("field, value", [("min_size", 0.5), ("max_size", 500.0), ("num_images", -1),
                                          ("objects_per_image", (5, 2)), ("fps", 0.0)])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(InputError, match=field):
        SynthConfig(**{field: value}).validate()
