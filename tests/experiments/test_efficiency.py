"""`flowdet efficiency`: the grid (equal iterations, paired subsets), per-point resume, the report and
verdict computed from the points, bad input as one line, and one real tiny grid end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from efficiency_helpers import FakeRunner, run_in_process
from efficiency_helpers import arg as _arg

from flowdet.errors import FlowdetError
from flowdet.experiments.efficiency import (
    EfficiencySpec,
    parse_fractions,
    point_name,
    run_efficiency,
    scaled_schedule,
    subset_json,
)
from flowdet.experiments.efficiency_report import compare, verdict


def _spec(synth_small, frames, tmp_path, **kw) -> EfficiencySpec:
    ann = str(synth_small / "annotations.json")  # val = train here: only the unlabeled frames are pretrained on
    base = dict(data=ann, val=ann, images=str(synth_small / "images"), frames=[str(frames)], fractions=[0.5, 1.0],
                seeds=[0, 1], epochs=3, out=str(tmp_path / "eff"), backbone="", train_images_as_frames=False)
    base.update(kw)
    return EfficiencySpec(**base)


def test_scaled_schedule_gives_equal_iterations():
    assert scaled_schedule(30, 1.0) == {"epochs": 30, "no_aug_epochs": 5, "warmup_epochs": 2.0}
    assert scaled_schedule(30, 0.1) == {"epochs": 300, "no_aug_epochs": 50, "warmup_epochs": 20.0}
    assert scaled_schedule(30, 0.25, no_aug_epochs=2, warmup_epochs=1)["no_aug_epochs"] == 8
    with pytest.raises(FlowdetError):
        scaled_schedule(30, 0)


def test_parse_fractions_refuses_outside_0_1():
    assert parse_fractions("1,0.1,0.25") == [0.1, 0.25, 1.0]
    for bad in ("0", "1.5", "-0.1", "x", ""):
        with pytest.raises(FlowdetError):
            parse_fractions(bad)


def test_subsets_are_seeded_and_keep_their_annotations(synth_small, tmp_path):
    ann = synth_small / "annotations.json"
    a, n = subset_json(ann, 0.5, 0, tmp_path / "a.json")
    b, _ = subset_json(ann, 0.5, 0, tmp_path / "b.json")
    c, _ = subset_json(ann, 0.5, 1, tmp_path / "c.json")
    da, dc = json.loads(a.read_text()), json.loads(c.read_text())
    assert n == 4 and a.read_text() == b.read_text() and da["images"] != dc["images"]
    ids = {im["id"] for im in da["images"]}
    assert da["annotations"] and all(x["image_id"] in ids for x in da["annotations"])


def test_grid_runs_every_point_once_and_resumes(synth_small, smooth_frames, tmp_path):
    bonus = {0: 0.0, 1: 0.01}
    runner = FakeRunner(lambda kind, n, seed: 0.1 + 0.01 * n + bonus[seed] + (0.05 if kind == "pretrained" else 0))
    spec = _spec(synth_small, smooth_frames, tmp_path)
    r = run_efficiency(spec, runner)
    trains = [c for c in runner.calls if c[0] == "train"]
    assert len([c for c in runner.calls if c[0] == "pretrain"]) == 1 and len(trains) == 8
    excluded = Path(_arg(runner.calls[0], "--exclude")).read_text().splitlines()  # the val images, by default
    assert len(excluded) == 8 and all(Path(p).is_file() for p in excluded)
    epochs = {(_arg(c, "--data").endswith(".json") and "subsets" in _arg(c, "--data"), _arg(c, "--epochs")) for c in trains}
    assert epochs == {(True, "6"), (False, "3")}  # 3 full-data epochs of iterations: 6 epochs on half the labels
    assert all("--backbone" in c for c in trains if "pretrained" in _arg(c, "--out"))
    assert len(r["points"]) == 8 and r["pretrain"]["self-emd"]["seconds"] == 25.0
    out = Path(spec.out)
    assert {p.name for p in out.iterdir()} >= {"results.json", "table.md", "verdict.md", "efficiency.png"}
    assert "helped beyond the seed spread at 50%, 100%" in r["verdict"]
    n_calls = len(runner.calls)
    run_efficiency(spec, runner)  # everything recorded: nothing re-runs
    assert len(runner.calls) == n_calls

    # an interrupted point: its last.pt resumes; if that fails, the point restarts in an emptied folder
    res = json.loads((out / "results.json").read_text())
    name = point_name("scratch", 0.5, 1)
    del res["points"][name]
    (out / "results.json").write_text(json.dumps(res))
    (out / "points" / name / "train.done").unlink()
    (out / "points" / name / "junk").write_text("partial")
    runner.fail_resume = True
    run_efficiency(spec, runner)
    new = runner.calls[n_calls:]
    assert [c[0] for c in new] == ["train", "train", "eval"] and "--resume" in new[0] and "--resume" not in new[1]
    assert name in json.loads((out / "results.json").read_text())["points"]


def test_verdict_is_computed_from_the_points():
    def pts(rows):
        return {"points": {point_name(k, f, s): {"kind": k, "fraction": f, "seed": s, "AP": ap, "AP50": ap}
                           for k, f, s, ap in rows}, "pretrain": {"m": {"seconds": 100}}}

    within = pts([("scratch", 0.1, 0, 0.10), ("scratch", 0.1, 1, 0.14), ("pretrained", 0.1, 0, 0.13),
                  ("pretrained", 0.1, 1, 0.15)])
    assert compare(within)[0]["verdict"] == "within the seed spread"  # +0.03/+0.01 < spread 0.04
    text = verdict(within, "m")
    assert text.startswith("Pretraining did not help beyond the seed spread") and "took 100 s" in text
    assert "+0.030, +0.010" in text and "at 10 % with every seed agreeing" in text and "not met" in text
    helped = pts([("scratch", 0.25, 0, 0.10), ("scratch", 0.25, 1, 0.11), ("pretrained", 0.25, 0, 0.20),
                  ("pretrained", 0.25, 1, 0.21), ("scratch", 1.0, 0, 0.15)])
    text = verdict(helped, "m")
    assert text.startswith("Pretraining helped beyond the seed spread at 25%")
    assert "25 % of the labels ≥ scratch + 100 % (0.205 vs 0.150 AP: met)" in text
    one = pts([("scratch", 0.1, 0, 0.1), ("pretrained", 0.1, 0, 0.3)])
    assert "seed spread is unknown" in verdict(one, "m")


def test_bad_input_is_one_line_exit_2(synth_small, tmp_path, capsys):
    from cli_helpers import run_cli

    ann = str(synth_small / "annotations.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["efficiency", "--data", ann, "--val", ann, "--out", str(tmp_path / "e")]
    cases = [
        ("no frames found", [*base, "--frames", str(empty)]),
        ("1.5 is outside (0, 1]", [*base, "--frames", str(synth_small / "images"), "--fractions", "0.1,1.5"]),
        ("0 is outside (0, 1]", [*base, "--fractions", "0"]),
        # val = the training set here: every frame (the training images) is a val image
        ("all 8 pretraining frames are images of the excluded set", base),
    ]
    for want, argv in cases:
        code, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and want in lines[0], (argv, err)
    assert not (tmp_path / "e" / "results.json").exists()


@pytest.mark.slow
def test_a_real_tiny_grid_end_to_end(tmp_path, smooth_frames):
    """The real pretrain/train/eval CLI at toy size: 1 pretrain step, one pretrained point of 2 epochs
    at 64 px (the scratch side is the same train/eval path without --backbone)."""
    import torch

    from flowdet.data.synth import SynthConfig, generate

    torch.set_num_threads(1)
    data = tmp_path / "synth"
    generate(data, SynthConfig(num_images=4, width=192, height=160, seed=1, min_size=10, max_size=40,
                               objects_per_image=(1, 3), distractors_per_image=(0, 1), empty_fraction=0.0))
    val = tmp_path / "val.json"
    d = json.loads((data / "annotations.json").read_text())
    val.write_text(json.dumps({**d, "images": d["images"][:2],
                               "annotations": [a for a in d["annotations"] if a["image_id"] in
                                               {im["id"] for im in d["images"][:2]}]}))
    spec = EfficiencySpec(data=str(data / "annotations.json"), val=str(val), images=str(data / "images"),
                          val_images=str(data / "images"), frames=[str(smooth_frames)], fractions=[0.5],
                          kinds=["pretrained"],
                          method="byol", epochs=1, pretrain_epochs=1, train_images_as_frames=False, img_size="64",
                          batch=2, out=str(tmp_path / "eff"), train_sets=["train.progress=false"],
                          pretrain_sets=["train.max_steps=1", "train.batch=2", "method.crop=32", "data.frame_size=320",
                                         "method.small_views=0", "train.threads=1"])
    r = run_efficiency(spec, run_in_process)
    assert set(r["points"]) == {"pretrained-0.5-s0"}
    assert all(p["epochs"] == 2 and p["images"] == 2 and 0 <= p["AP"] <= 1 for p in r["points"].values())
    assert (Path(spec.out) / "efficiency.png").stat().st_size > 0 and "no verdict" in r["verdict"]
    from flowdet.engine.checkpoint import load_checkpoint

    ck = load_checkpoint(Path(spec.out) / "points" / "pretrained-0.5-s0" / "last.pt")
    assert ck["config"]["model"]["backbone"] == r["pretrain"]["byol"]["backbone"]  # the pretrained backbone was used
