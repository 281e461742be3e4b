"""Teacher–student training on unlabeled frames: the loss, the views, the sampler, the run, resume, bad input."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cli_helpers import exit_code  # noqa: E402

from flowdet.config import load_config  # noqa: E402
from flowdet.detect.config import DetectConfig, SemiSection, resolve_semi  # noqa: E402
from flowdet.detect.semi_data import UnlabeledBatchSampler, UnlabeledDataset  # noqa: E402
from flowdet.detect.semi_loss import DenseTeacherLoss  # noqa: E402
from flowdet.engine.checkpoint import load_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    """(a labeled synthetic set, another set whose images serve as unlabeled frames)."""
    from flowdet.data.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("semi_synth")
    kw = dict(width=192, height=160, min_size=10, max_size=40, objects_per_image=(1, 3),
              distractors_per_image=(0, 1), empty_fraction=0.0)
    generate(root / "lab", SynthConfig(num_images=4, seed=1, **kw))
    generate(root / "unl", SynthConfig(num_images=6, seed=2, **kw))
    return root / "lab", root / "unl"


def _levels(batch: int = 2, classes: int = 1, seed: int = 0, grad: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(batch, 5 + classes, s, s, generator=g) for s in (8, 4, 2)]
    return [x.requires_grad_(grad) for x in out]


def test_loss_is_zero_when_student_equals_teacher_and_only_the_student_gets_gradients():
    loss_fn = DenseTeacherLoss(2, (8, 16, 32), topk=0.05)
    same = loss_fn(_levels(classes=2), _levels(classes=2))
    for k in ("total", "obj", "cls", "box"):
        assert abs(float(same[k])) < 1e-5, (k, float(same[k]))
    student, teacher = _levels(classes=2, seed=1, grad=True), _levels(classes=2, seed=2, grad=True)
    out = loss_fn(student, teacher)
    for k in ("obj", "cls", "box"):
        assert float(out[k]) > 1e-3, k
    assert out["num_topk"] == 2 * math.ceil(0.05 * (64 + 16 + 4))
    out["total"].backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)  # the teacher is a target, never trained through the loss
    # The objectness gradient is BCE's (p − y) per anchor: the KL form only removes the target's entropy.
    s_obj, t_obj = student[0][:, 4], teacher[0][:, 4]
    want = (s_obj.sigmoid() - t_obj.sigmoid()) / out["num_topk"]
    torch.testing.assert_close(student[0].grad[:, 4], want.detach(), rtol=1e-4, atol=1e-6)


def test_obj_ignore_band_drops_the_objectness_term_of_uncertain_anchors_only():
    from flowdet.detect.semi import obj_ignore_band

    assert obj_ignore_band(SemiSection()) is None  # off by default
    assert obj_ignore_band(SemiSection(obj_ignore_low=0.1, pseudo_conf=0.5)) == (0.1, 0.5)
    teacher = _levels(seed=2)
    teacher[0][:, 5] = 30.0  # σ(cls) ≈ 1 on level 0, so q ≈ σ(t_obj) there
    teacher[0][0, 4, 0, 0] = math.log(0.3 / 0.7)  # q = 0.3: in the band [0.1, 0.5)
    teacher[0][0, 4, 0, 1] = math.log(0.05 / 0.95)  # q = 0.05: below it, still taught as background
    teacher[0][0, 4, 0, 2] = math.log(0.8 / 0.2)  # q = 0.8: above it
    student = _levels(seed=1, grad=True)
    out = DenseTeacherLoss(1, (8, 16, 32), topk=0.05, obj_ignore=(0.1, 0.5))(student, teacher)
    out["total"].backward()
    g = student[0].grad[0, 4, 0]
    assert g[0] == 0 and g[1].abs() > 1e-6 and g[2].abs() > 1e-6
    with torch.no_grad():
        q = teacher[0][:, 4].sigmoid() * teacher[0][:, 5].sigmoid()
        want = (student[0][:, 4].sigmoid() - teacher[0][:, 4].sigmoid()) / out["num_topk"]
    torch.testing.assert_close(student[0].grad[:, 4], torch.where((q >= 0.1) & (q < 0.5), 0.0, want),
                               rtol=1e-4, atol=1e-6)
    assert out["obj_ignored"] >= 1
    # Off, or a band no anchor falls in: exactly today's loss, every term.
    s2 = [x.detach() for x in student]
    today = DenseTeacherLoss(1, (8, 16, 32), topk=0.05)(s2, teacher)
    assert today["obj_ignored"] == 0
    for band in (None, (0.999999, 1.0)):
        other = DenseTeacherLoss(1, (8, 16, 32), topk=0.05, obj_ignore=band)(s2, teacher)
        assert other["obj_ignored"] == 0
        for k in ("total", "obj", "cls", "box"):
            assert torch.equal(other[k], today[k]), (band, k)
    assert float(out["obj"]) < float(today["obj"])  # the band's KL terms are gone


def test_views_share_geometry_and_are_a_function_of_the_key(sets):
    _, unl = sets
    frames = sorted((unl / "images").glob("*.jpg"))
    ds = UnlabeledDataset(frames, (128, 160), SemiSection(noise_std=8.0, cutout=2), [5, 30, 30], 1.0, seed=0)
    weak, strong = ds[(0, 0, 128, 160)]
    assert weak.shape == strong.shape == (128, 160, 3) and weak.dtype == np.uint8
    # flip_prob 1: the weak view is the mirrored letterbox; the strong one differs in colour only
    from flowdet.core.imread import read_image
    from flowdet.core.letterbox import letterbox

    plain, _ = letterbox(read_image(frames[0]), (128, 160))
    np.testing.assert_array_equal(weak, plain[:, ::-1])
    assert 0 < np.abs(weak.astype(int) - strong.astype(int)).mean() < 60
    again = ds[(0, 0, 128, 160)]
    np.testing.assert_array_equal(again[1], strong)
    assert not np.array_equal(ds[(0, 1, 128, 160)][1], strong)  # another epoch: other draws


def test_cached_views_equal_uncached_ones_and_the_cache_stays_in_its_budget(sets):
    """data.cache keeps letterboxed frames: the (weak, strong) pair of a key is the uncached one, byte for
    byte (flipped or not, any epoch), the cached frame is never drawn on, and the budget bounds it."""
    _, unl = sets
    frames = sorted((unl / "images").glob("*.jpg"))
    semi = SemiSection(noise_std=8.0, cutout=2)
    plain = UnlabeledDataset(frames, (128, 160), semi, [5, 30, 30], 0.5, seed=3)
    cached = UnlabeledDataset(frames, (128, 160), semi, [5, 30, 30], 0.5, seed=3, cache_bytes=1 << 30)
    keys = [(i, e, 128, 160) for e in range(3) for i in range(len(frames))] + [(0, 0, 96, 128)]
    for key in keys + keys:  # the second pass reads the cache
        for a, b in zip(plain[key], cached[key]):
            np.testing.assert_array_equal(a, b)
    assert len(cached._canvas) == len(frames) + 1 and plain.cached_bytes == 0
    assert all(not c.flags.writeable for c in cached._canvas.values())
    small = UnlabeledDataset(frames, (128, 160), semi, [5, 30, 30], 0.5, seed=3, cache_bytes=2 * 128 * 160 * 3)
    for key in keys:
        small[key]
    assert len(small._canvas) == 2 and small.cached_bytes <= small.cache_bytes


def test_unlabeled_sampler_shards_by_rank_and_uses_every_frame_before_repeating():
    def epoch_keys(rank: int, world: int, epoch: int) -> list[list[tuple]]:
        s = UnlabeledBatchSampler(10, 2, 3, seed=5, img_size=(64, 96), rank=rank, world=world)
        s.set_epoch(epoch)
        return list(s)

    one = [k for e in (0, 1) for batch in epoch_keys(0, 1, e) for k in batch]  # 12 draws of 10 frames
    assert sorted(k[0] for k in one[:10]) == list(range(10))
    assert all(k[2:] == (64, 96) for k in one)
    r0, r1 = epoch_keys(0, 2, 0), epoch_keys(1, 2, 0)
    assert [len(b) for b in r0] == [len(b) for b in r1] == [2, 2, 2]
    # each global batch of 4 is split between the ranks; within the first pass over the frames, none twice
    first_pass = [k[0] for b0, b1 in zip(r0[:2], r1[:2]) for k in b0 + b1]
    assert len(set(first_pass)) == 8
    # the two ranks together draw what one process with their total batch draws
    alone = UnlabeledBatchSampler(10, 4, 3, seed=5, img_size=(64, 96))
    for b, b0, b1 in zip(alone, r0, r1):
        assert [k[0] for k in b] == [k[0] for pair in zip(b0, b1) for k in pair]


def test_auto_burn_in_and_teacher_decay():
    cfg = load_config(DetectConfig, None, ["data.train=x.json", "train.epochs=30", "train.warmup_epochs=2"])
    assert resolve_semi(cfg, 36) == (5, 0.99)  # 25 epochs × 36 it = 900 steps: 1 − 20/900 < 0.99
    cfg = load_config(DetectConfig, None, ["data.train=x.json", "train.epochs=300", "train.warmup_epochs=5"])
    burn, decay = resolve_semi(cfg, 100)
    assert burn == 50 and decay == pytest.approx(1 - 20 / 25000)


def test_teacher_gate_extends_the_burn_in_until_the_teacher_finds_pseudo_boxes(sets, caplog):
    """A would-be teacher that finds nothing keeps the run supervised (one epoch more, said in one line);
    one that finds boxes starts; the extension stops at half the epochs whatever the probe says."""
    from flowdet.detect.semi import SemiTeacher
    from flowdet.models.yolox import build_model

    _, unl = sets
    frames = sorted((unl / "images").glob("*"))
    cfg = load_config(DetectConfig, None, ["data.train=x.json", "train.epochs=6", "semi.burn_in_epochs=1",
                                           "train.workers=0", "semi.teacher_gate=0.1"])
    semi = SemiTeacher(cfg, frames, (96, 96), 1, (8, 16, 32), 2, 1, torch.device("cpu"), False, False,
                       labeled_per_img=2.0)
    assert semi.gate_boxes == pytest.approx(0.2) and semi.last_burn_in == 3
    quiet = build_model("nano")  # YOLOX's prior: objectness ≈ 0.01 everywhere, so no box ≥ 0.5
    assert semi.probe(quiet) == 0
    assert not semi.ready(0, quiet)  # inside the configured burn-in: no probe
    assert not semi.ready(1, quiet) and semi.burn_in == 2  # probed: extended by one epoch
    assert not semi.ready(2, quiet) and semi.burn_in == 3
    assert semi.ready(3, quiet)  # half the epochs: starts anyway (with a warning)

    sure = build_model("nano")
    with torch.no_grad():
        for conv in list(sure.head.obj_preds) + list(sure.head.cls_preds):
            conv.bias.fill_(10.0)  # every anchor an object of the class: NMS leaves many boxes
    semi = SemiTeacher(cfg, frames, (96, 96), 1, (8, 16, 32), 2, 1, torch.device("cpu"), False, False,
                       labeled_per_img=2.0)
    assert semi.probe(sure) >= 1 and semi.ready(1, sure) and semi.burn_in == 1
    semi.batches(1, sure)  # the teacher starts as a copy of the model probed (the training EMA)
    for k, v in sure.state_dict().items():
        torch.testing.assert_close(semi.teacher.ema.state_dict()[k], v)
    off = load_config(DetectConfig, None, ["data.train=x.json", "train.epochs=6", "semi.burn_in_epochs=1"])
    semi = SemiTeacher(off, frames, (96, 96), 1, (8, 16, 32), 2, 1, torch.device("cpu"), False, False,
                       labeled_per_img=2.0)
    assert semi.ready(1, quiet) and semi.burn_in == 1  # the default: no gate, the burn-in as configured


def _train_args(lab: Path, unl: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", f"{lab}/annotations.json", "--val", f"{lab}/annotations.json", "--unlabeled",
            f"{unl}/images", "--out", str(out), "--size", "nano", "--img-size", "160", "--batch", "2",
            "--workers", "0", "--seed", "3", "--set", "train.progress=false", *extra]


@pytest.mark.slow
def test_train_unlabeled_logs_the_unlabeled_loss_and_resumes_exactly(sets, tmp_path, capsys):
    from flowdet.detect.train import train

    lab, unl = sets

    def cfg(out: str) -> DetectConfig:
        return load_config(DetectConfig, None, [
            f"data.train={lab}/annotations.json", f"data.val={lab}/annotations.json", f"semi.unlabeled=[{unl}/images]",
            f"out={tmp_path / out}", "model.size=nano", "train.img_size=160", "train.batch=2", "train.workers=0",
            "train.seed=3", "train.progress=false", "train.epochs=3", "semi.burn_in_epochs=1",
            "train.warmup_epochs=1", "augment.no_aug_epochs=1"])

    train(cfg("a"))
    err = capsys.readouterr().err
    assert "unlabeled: 6 frames, 2 per batch" in err and "burn-in 1 epoch(s)" in err
    assert "epoch 1/3:" in err and "unlabeled: burn-in 1/1" in err
    assert "pseudo-boxes/img" in err.split("epoch 2/3:")[1].splitlines()[0]

    rows = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["unl"] == "nan"  # burn-in: supervised only
    for r in rows[1:]:
        assert float(r["unl"]) > 0 and float(r["pseudo_per_img"]) >= 0 and 0 <= float(r["topk_score"]) <= 1
        assert float(r["unl"]) == pytest.approx(float(r["unl_obj"]) + float(r["unl_cls"]) + 5 * float(r["unl_box"]),
                                                rel=1e-3)

    # Interrupted after epoch 2 (the teacher exists), resumed from last.pt: the same weights bit for bit.
    def stop_after_second(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg("b"), on_epoch_end=stop_after_second)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["teacher"] is not None
    assert exit_code(["train", "--resume", str(tmp_path / "b" / "last.pt")]) == 0
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for part in ("model", "ema", "teacher"):
        sa, sb = (a[part], b[part]) if part == "model" else (a[part]["ema"], b[part]["ema"])
        for k in sa:
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=f"{part}.{k} differs")
    assert a["teacher"]["updates"] == b["teacher"]["updates"] == 2 * 2  # 2 semi epochs × 2 iterations

    # best.pt was chosen by the teacher's AP, so inference loads the teacher.
    from flowdet.detect.io import model_from_checkpoint

    model, _ = model_from_checkpoint(tmp_path / "a" / "best.pt")
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, best["teacher"]["ema"][k], rtol=0, atol=0)


def test_unlabeled_folder_without_images_is_one_line_exit_2(sets, tmp_path, capsys):
    lab, _ = sets
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    argv = _train_args(lab, tmp_path, tmp_path / "run", "--epochs", "1")
    argv[argv.index("--unlabeled") + 1] = str(tmp_path / "empty")
    code = exit_code(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no images or videos in this folder" in err[0], err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_video_that_does_not_decode_is_one_line_exit_2(sets, tmp_path, capsys):
    lab, _ = sets
    bad = tmp_path / "river.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    argv = _train_args(lab, tmp_path, tmp_path / "run", "--epochs", "1")
    argv[argv.index("--unlabeled") + 1] = str(bad)
    code = exit_code(argv)
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("Error")]
    assert code == 2 and len(err) == 1 and "river.mp4" in err[0] and "could not be decoded" in err[0], err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_val_images_as_unlabeled_warn_transductive_and_exclude_refuses(sets, tmp_path, capsys):
    lab, unl = sets
    # --exclude val.json: refused before training, one line naming the set
    argv = _train_args(lab, unl, tmp_path / "r1", "--epochs", "1", "--unlabeled", f"{lab}/images",
                       "--exclude", f"{lab}/annotations.json")
    assert exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4 of 10 unlabeled frames are images of the excluded set" in err[0], err
    assert not (tmp_path / "r1" / "last.pt").exists()
    # without --exclude: allowed (the new-camera protocol), said in one line
    argv = _train_args(lab, unl, tmp_path / "r2", "--epochs", "1", "--unlabeled", f"{lab}/images",
                       "--set", "semi.burn_in_epochs=1")
    assert exit_code(argv) == 0
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if "transductive" in ln]
    assert len(warn) == 1 and "4 of 10 unlabeled frames are --val images" in warn[0]


def test_videos_are_mined_once_into_the_run_folder(tmp_path):
    import cv2

    from flowdet.mine.unlabeled import MINED_DIR, resolve_unlabeled

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (96, 64))
    for i in range(12):  # 3 s at 4 fps; each frame different enough to survive the de-duplication
        w.write(np.full((64, 96, 3), 20 * i, np.uint8))
    w.release()
    frames = resolve_unlabeled([str(video)], tmp_path / "run", video_fps=2.0)
    assert len(frames) == 6 and all(MINED_DIR in str(f) and f.is_file() for f in frames)
    again = resolve_unlabeled([str(video)], tmp_path / "run", video_fps=2.0, mine_videos=False)
    assert again == frames


def test_semi_config_errors_name_the_key(sets, tmp_path, capsys):
    lab, unl = sets
    for bad, key in (("semi.ratio=0", "semi.ratio"), ("semi.topk=0", "semi.topk"),
                     ("semi.teacher_decay=1.5", "semi.teacher_decay"),
                     ("semi.obj_ignore_low=0.5", "semi.obj_ignore_low")):  # must stay under semi.pseudo_conf
        assert exit_code(_train_args(lab, unl, tmp_path / "r", "--set", bad)) == 2
        assert key in capsys.readouterr().err


def test_zero_unlabeled_loss_and_an_empty_teacher_are_warned():
    from flowdet.detect.semi import zero_loss_warning

    assert "the unlabeled loss is zero" in zero_loss_warning(4, {"unl": 0.0, "pseudo_per_img": 0.0}, 0.5)
    assert "no detection ≥ 0.5" in zero_loss_warning(4, {"unl": 0.3, "pseudo_per_img": 0.0}, 0.5)
    assert zero_loss_warning(4, {"unl": 0.3, "pseudo_per_img": 2.5}, 0.5) is None
    assert zero_loss_warning(0, {"unl": float("nan"), "pseudo_per_img": float("nan")}, 0.5) is None  # burn-in


@pytest.mark.slow
def test_ddp_two_gloo_processes_train_with_unlabeled_frames(sets, tmp_path):
    import os
    import subprocess
    import sys

    lab, unl = sets
    repo = Path(__file__).resolve().parents[2]
    argv = _train_args(lab, unl, tmp_path / "ddp", "--epochs", "2", "--set", "semi.burn_in_epochs=1",
                       "--device", "cpu")[1:]
    argv[argv.index("--batch") + 1] = "4"
    launcher = (f"import sys; from flowdet.engine.launch import relaunch; "
                f"sys.exit(relaunch({['train', *argv]!r}, [0, 1], '0,1', have=2))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    r = subprocess.run([sys.executable, "-c", launcher], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("unlabeled: 6 frames, 2 per batch and process") == 1  # rank 0 speaks
    rows = list(csv.DictReader((tmp_path / "ddp" / "metrics.csv").open()))
    assert rows[0]["unl"] == "nan" and float(rows[1]["unl"]) > 0
    ck = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ck["teacher"]["updates"] == 1  # 4 images / (2 ranks × 2) = 1 iteration in the one semi epoch
