"""`flowdet train` without --size / --img-size: the model and a rectangular input chosen from the data."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from flowdet.detect.auto_input import AUTO_MODEL_SIZE, choose, rect_input


def _records(w: int, h: int, n: int = 5, side: float = 19.0):
    box = np.array([[10, 10, 10 + side, 10 + side]], np.float32)
    return [SimpleNamespace(width=w, height=h, boxes=box) for _ in range(n)]


@pytest.mark.parametrize("frame_hw, want", [
    ((540, 960), (480, 832)),    # 16:9 at any resolution: the measured nano-d input
    ((1080, 1920), (480, 832)),
    ((720, 1280), (480, 832)),
    ((1920, 1080), (832, 480)),  # portrait
    ((480, 640), (480, 640)),    # 4:3 smaller than the budget: its own size
    ((1000, 1000), (640, 640)),  # square frames keep a square input
    ((360, 640), (384, 640)),    # never larger than the frame rounded up to the stride
])
def test_rect_input_keeps_the_frames_aspect_at_the_budget(frame_hw, want):
    hw = rect_input(frame_hw, (480, 832))
    assert hw == want and hw[0] % 32 == 0 and hw[1] % 32 == 0


def test_auto_picks_nano_d_at_the_frames_aspect_and_says_why():
    c = choose(_records(960, 540))
    assert (c.size, c.img_size) == (AUTO_MODEL_SIZE, "832x480") == ("nano-d", "832x480")
    assert "960x540" in c.reason and "median object 16 px" in c.reason and not c.notes


def test_explicit_values_win_and_a_square_input_on_wide_frames_gets_a_note():
    c = choose(_records(1280, 720), size="nano", img_size="640")
    assert (c.size, c.hw) == ("nano", (640, 640))
    assert len(c.notes) == 1 and "padding" in c.notes[0] and "832x480" not in c.notes[0]  # nano's own budget
    assert "960x544" in c.notes[0]
    assert not choose(_records(1280, 720), size="nano-d", img_size="832x480").notes


def test_nano_gets_its_own_budget_and_a_backbone_size_wins():
    assert choose(_records(1920, 1080), size="nano").img_size == "960x544"
    assert choose(_records(1920, 1080), backbone_size="tiny").size == "tiny"


def test_tiny_objects_get_a_note():
    c = choose(_records(1920, 1080, side=12.0))  # 12 px at 1920 → 5.2 px at 832
    assert any("--p2" in n for n in c.notes)


@pytest.mark.slow
def test_train_without_size_flags_states_and_records_the_choice(capsys, tmp_path):
    pytest.importorskip("torch")
    import yaml

    from flowdet.cli import main
    from flowdet.data.synth import SynthConfig, generate

    data = tmp_path / "set"
    generate(data, SynthConfig(num_images=4, width=192, height=108, seed=1, min_size=8, max_size=20,
                               objects_per_image=(1, 2), video_seconds=0))
    capsys.readouterr()
    main(["train", "--data", str(data / "annotations.json"), "--out", str(tmp_path / "run"), "--epochs", "1",
          "--workers", "0", "--batch", "2", "--set", "train.progress=false"])
    err = capsys.readouterr().err
    assert "auto: model nano-d; input 192x128" in err
    assert "training nano-d at 192x128" in err
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["size"] == "nano-d" and saved["train"]["img_size"] == "192x128"
