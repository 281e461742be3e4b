"""`flowdet efficiency --kinds …,semi,pretrained+semi`: the semi points are their scratch points plus
`train --unlabeled` (same subset, epochs, batch, seed), whose frames are the rest of the training
images — their labels hidden by construction — and the --unlabeled sources; val images refused unless
--transductive; the report and verdict; resume; bad input; one real tiny grid end to end."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from efficiency_helpers import FakeRunner, arg, run_in_process

from flowdet.experiments.efficiency import EfficiencySpec, point_name, run_efficiency, subset_json


@pytest.fixture
def val_set(tmp_path) -> tuple[Path, Path]:
    """(val.json, its images): 2 pictures that are no training image and no unlabeled frame."""
    folder = tmp_path / "val_images"
    folder.mkdir()
    rng = np.random.default_rng(7)
    images = []
    for i in range(2):
        cv2.imwrite(str(folder / f"v{i}.jpg"), rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))
        images.append({"id": i + 1, "file_name": f"v{i}.jpg", "width": 160, "height": 96})
    ann = tmp_path / "val.json"
    ann.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "bottle"}]}))
    return ann, folder


def _spec(synth_small, val_set, tmp_path, **kw) -> EfficiencySpec:
    val, val_images = val_set
    bb = tmp_path / "bb.pt"
    bb.write_bytes(b"bb")  # an existing backbone: no pretraining in these tests
    base = dict(data=str(synth_small / "annotations.json"), val=str(val), val_images=str(val_images),
                images=str(synth_small / "images"), fractions=[0.5, 1.0], seeds=[0, 1], epochs=3,
                kinds=["scratch", "semi", "pretrained+semi"], backbone=str(bb), out=str(tmp_path / "eff"))
    base.update(kw)
    return EfficiencySpec(**base)


def _trains(runner: FakeRunner) -> dict[str, list[str]]:
    return {Path(arg(c, "--out")).name: c for c in runner.calls if c[0] == "train" and "--resume" not in c}


def _listed(argv: list[str]) -> list[Path]:
    return [Path(ln) for ln in Path(arg(argv, "--unlabeled")).read_text().splitlines()]


def test_semi_points_pair_with_scratch_and_get_the_rest_of_the_training_images(synth_small, val_set,
                                                                                smooth_frames, tmp_path):
    bonus = {"scratch": 0.0, "semi": 0.04, "pretrained+semi": 0.05}
    runner = FakeRunner(lambda kind, n, seed: 0.1 + 0.01 * seed + bonus[kind])
    spec = _spec(synth_small, val_set, tmp_path, unlabeled=[str(smooth_frames)])
    r = run_efficiency(spec, runner)
    trains, out = _trains(runner), Path(spec.out)
    assert len(trains) == 12 and not [c for c in runner.calls if c[0] == "pretrain"]
    extras = sorted(p.resolve() for p in smooth_frames.glob("*.jpg"))
    train_imgs = {(synth_small / "images" / im["file_name"]).resolve()
                  for im in json.loads((synth_small / "annotations.json").read_text())["images"]}
    for frac in (0.5, 1.0):
        for seed in (0, 1):
            scratch = trains[point_name("scratch", frac, seed)]
            for kind in ("semi", "pretrained+semi"):
                semi = trains[point_name(kind, frac, seed)]
                for flag in ("--data", "--epochs", "--batch", "--seed", "--images", "--val"):  # paired, equal iterations
                    assert arg(semi, flag) == arg(scratch, flag), (kind, frac, seed, flag)
                assert "--unlabeled" not in scratch and ("--backbone" in semi) == (kind == "pretrained+semi")
                assert Path(arg(semi, "--exclude")).name == "exclude_val.txt"  # val images refused by train too
                labeled = {(synth_small / "images" / im["file_name"]).resolve()
                           for im in json.loads(Path(arg(semi, "--data")).read_text())["images"]}
                listed = _listed(semi)
                assert set(listed) == (train_imgs - labeled) | set(extras) and len(listed) == len(set(listed))
                assert not set(listed) & labeled
                p = r["points"][point_name(kind, frac, seed)]
                assert p["unlabeled"] == len(listed) == (4 if frac < 1 else 0) + 8
                assert p["labeled_iters"] == r["points"][point_name("scratch", frac, seed)]["labeled_iters"]
    assert r["points"][point_name("semi", 0.5, 0)]["labeled_iters"] == 6 * 1  # 6 epochs × ⌈4 images / batch 8⌉
    assert "The unlabeled frames (semi-supervised) paid beyond the seed spread at 50%, 100% labels." in r["verdict"]
    assert "same labeled iterations" in r["verdict"] and "Equal labeled iterations" in r["table"]
    assert "| semi-supervised | 50% | 4 | 12 | 6 |" in r["table"]
    assert (out / "verdict.md").read_text() == r["verdict"] and (out / "efficiency.png").stat().st_size > 0

    n = len(runner.calls)
    run_efficiency(spec, runner)  # everything recorded: nothing re-runs
    assert len(runner.calls) == n
    # a killed semi point resumes from its last.pt with the same unlabeled list
    name = point_name("semi", 0.5, 1)
    res = json.loads((out / "results.json").read_text())
    del res["points"][name]
    (out / "results.json").write_text(json.dumps(res))
    (out / "points" / name / "train.done").unlink()
    run_efficiency(spec, runner)
    assert [c[0] for c in runner.calls[n:]] == ["train", "eval"] and "--resume" in runner.calls[n]
    assert json.loads((out / "results.json").read_text())["points"][name]["unlabeled"] == 12


def test_labels_of_the_unlabeled_images_never_reach_a_point(synth_small, val_set, tmp_path):
    """Changing (here: deleting) the annotations of the images left out of the subset changes nothing a
    semi point receives: the labeled json is the subset's, the unlabeled side is a list of paths."""
    ann = synth_small / "annotations.json"
    d = json.loads(ann.read_text())
    sub, _ = subset_json(ann, 0.5, 0, tmp_path / "sub.json")
    keep = {im["id"] for im in json.loads(sub.read_text())["images"]}
    assert any(a["image_id"] not in keep for a in d["annotations"])
    hidden = tmp_path / "hidden.json"
    hidden.write_text(json.dumps({**d, "annotations": [a for a in d["annotations"] if a["image_id"] in keep]}))

    seen = []
    for i, data in enumerate((ann, hidden)):
        runner = FakeRunner(lambda kind, n, seed: 0.1)
        run_efficiency(_spec(synth_small, val_set, tmp_path, data=str(data), fractions=[0.5], seeds=[0],
                             kinds=["semi"], out=str(tmp_path / f"e{i}")), runner)
        (argv,) = _trains(runner).values()
        unl = arg(argv, "--unlabeled")
        assert Path(unl).suffix == ".txt" and all(Path(ln).suffix == ".jpg" for ln in Path(unl).read_text().split())
        seen.append((Path(arg(argv, "--data")).read_text(), Path(unl).read_text()))
    assert seen[0] == seen[1]
    assert len(seen[0][1].split()) == 4  # the 4 images out of the subset, by path only


def test_val_images_as_unlabeled_are_refused_unless_transductive(synth_small, val_set, tmp_path, capsys):
    from flowdet.errors import DataError

    val, val_images = val_set
    spec = _spec(synth_small, val_set, tmp_path, unlabeled=[str(val_images)], fractions=[0.5], seeds=[0])
    runner = FakeRunner(lambda kind, n, seed: 0.1)
    with pytest.raises(DataError, match="2 of 10 unlabeled frames are images of the excluded set"):
        run_efficiency(spec, runner)
    assert not runner.calls  # refused before any training
    capsys.readouterr()
    spec.transductive = True
    run_efficiency(spec, runner)
    semi = _trains(runner)[point_name("semi", 0.5, 0)]
    assert "--exclude" not in semi and {p.name for p in _listed(semi)} >= {"v0.jpg", "v1.jpg"}
    said = [ln for ln in capsys.readouterr().err.splitlines() if "transductive" in ln]
    assert len(said) == 1 and "2 of 10 unlabeled frames are --val images" in said[0]  # said once, before training


def test_semi_at_all_labels_without_unlabeled_sources_is_a_counted_skip(synth_small, val_set, tmp_path):
    runner = FakeRunner(lambda kind, n, seed: 0.1)
    r = run_efficiency(_spec(synth_small, val_set, tmp_path, kinds=["scratch", "semi"], seeds=[0]), runner)
    assert r["skipped"] == [point_name("semi", 1.0, 0)] and point_name("semi", 0.5, 0) in r["points"]


def test_bad_input_is_one_line_exit_2(synth_small, val_set, tmp_path, capsys):
    from cli_helpers import run_cli

    val, val_images = val_set
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames here")
    yaml = tmp_path / "data.yaml"
    yaml.write_text("path: .\ntrain: images\nval: images\nnames: [bottle]\n")
    base = ["efficiency", "--data", str(synth_small / "annotations.json"), "--images", str(synth_small / "images"),
            "--val", str(val), "--val-images", str(val_images), "--out", str(tmp_path / "e")]
    cases = [
        ("no images or videos in this folder", [*base, "--kinds", "scratch,semi", "--unlabeled", str(empty)]),
        ("choose from scratch, pretrained, semi, pretrained+semi", [*base, "--kinds", "scratch,semy"]),
        ("not a YOLO data.yaml", [*base[:2], str(yaml), *base[3:], "--kinds", "scratch,semi"]),
        ("unlabeled frames are images of the excluded set",
         [*base, "--kinds", "semi", "--unlabeled", str(val_images)]),
    ]
    for want, argv in cases:
        code, err = run_cli(capsys, *argv)
        lines = [ln for ln in err.strip().splitlines() if ln.startswith("Error")]
        assert code == 2 and len(lines) == 1 and want in lines[0], (argv, err)
    assert not (tmp_path / "e" / "results.json").exists() and not (tmp_path / "e" / "points").exists()


@pytest.mark.slow
def test_a_real_tiny_semi_grid_end_to_end(tmp_path):
    """The real train/eval CLI at toy size: scratch and semi at half of 4 labels (2 epochs of 1 step at
    64 px, the teacher from the first step), one seed; the verdict is written. ~45 s on a loaded 2-core
    box, most of it the two `train` runs' fixed costs (plots, checkpoints): hence slow, as its sibling."""
    import torch

    from flowdet.data.synth import SynthConfig, generate

    torch.set_num_threads(1)
    kw = dict(width=192, height=160, min_size=10, max_size=40, objects_per_image=(1, 3),
              distractors_per_image=(0, 1), empty_fraction=0.0)
    generate(tmp_path / "train", SynthConfig(num_images=4, seed=1, **kw))
    generate(tmp_path / "val", SynthConfig(num_images=2, seed=2, **kw))
    spec = EfficiencySpec(data=str(tmp_path / "train" / "annotations.json"), val=str(tmp_path / "val" / "annotations.json"),
                          images=str(tmp_path / "train" / "images"), val_images=str(tmp_path / "val" / "images"),
                          fractions=[0.5], kinds=["scratch", "semi"], epochs=1, img_size="64", size="nano", batch=2,
                          out=str(tmp_path / "eff"),
                          train_sets=["train.progress=false", "semi.burn_in_epochs=0", "train.warmup_epochs=0"])
    r = run_efficiency(spec, run_in_process)
    assert set(r["points"]) == {"scratch-0.5-s0", "semi-0.5-s0"}
    assert r["points"]["semi-0.5-s0"]["unlabeled"] == 2 and r["points"]["semi-0.5-s0"]["epochs"] == 2
    assert all(0 <= p["AP"] <= 1 for p in r["points"].values())
    rows = (Path(spec.out) / "points" / "semi-0.5-s0" / "metrics.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert all(float(row.split(",")[head.index("unl")]) > 0 for row in rows[1:])  # the unlabeled loss ran
    text = (Path(spec.out) / "verdict.md").read_text()
    assert "semi-supervised gives AP" in text and "seed spread is unknown" in text
