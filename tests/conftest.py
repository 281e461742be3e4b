"""Shared fixtures (a synthetic dataset; a nano checkpoint, its ONNX and small videos for
tests/export and tests/runtime). Tests run on CPU with few threads so a 2-core CI box is not oversubscribed."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_build import built_once

# `make test` runs two pytest-xdist workers (one process each) on a 2-core box: each worker gets one
# torch/OpenMP/BLAS thread, inherited by the CLIs it starts — 2 workers × 2 threads spin-wait and
# collapse. Without xdist, one thread is the default too (steadier than 2 on a shared 2-core box).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", … under xdist; None without it
if XDIST_WORKER:
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# flowdet.paths records the images root of each json it writes there: a fresh one per test run,
# never the developer's own (~/.local/state/flowdet)
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="flowdet-test-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)
# converted datasets are cached there too (flowdet.data.formats.cache_dir): never the developer's own
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="flowdet-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A small synthetic FloW-like set (COCO json + images), made once per session."""
    from flowdet.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth_small")
    generate(out, SynthConfig(num_images=8, width=640, height=360, seed=0))
    return out


# --- a model to export and run: shared by tests/export (torch side) and tests/runtime ----------------
# The checkpoint is random-init but not degenerate: BatchNorm statistics are calibrated on synthetic
# frames (so fusing changes the weights and outputs depend on the image) and the obj/cls heads are
# scaled so that scores spread over 0–1 (a few hundred anchors above 0.25: NMS has work to do).
GROGOL_VAL = SHARED_DATA / "grogol" / "val.json"
REAL_VIDEO = SHARED_DATA / "video" / "open_water_floating.mp4"
IMG = 320


def make_checkpoint(path: Path, size: str = "nano", img_size: int = IMG, seed: int = 0) -> Path:
    import torch

    from flowdet.core.letterbox import preprocess_batch
    from flowdet.detect.io import minimal_checkpoint
    from flowdet.export.parity import synthetic_images
    from flowdet.models.yolox import build_model

    torch.manual_seed(seed)
    m = build_model(size, 1)
    calib = torch.from_numpy(preprocess_batch(synthetic_images(4, (240, 320), seed=seed + 1), img_size)[0])
    with torch.no_grad():
        # Calibrate BatchNorm on real-looking frames: with default running stats a random net's
        # features do not depend on the input, and every score would be the same.
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average over the calibration batch
        m.train()
        m(calib)
        m.eval()
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                # Gain 0.95, just under the chaotic regime: at 1.0 a random net amplifies float
                # rounding ~100x (fp32 vs fp64 scores differ by 7e-4 on real frames), at 0.7
                # its output no longer depends on the input; 0.95 measures ~1e-5.
                mod.weight.mul_(0.95)
        for conv in list(m.head.obj_preds) + list(m.head.cls_preds):
            conv.weight.normal_(0, 1.0)
            conv.bias.fill_(-1.0)
        for conv in m.head.reg_preds:
            conv.weight.normal_(0, 0.02)
    torch.save(minimal_checkpoint(m, ["bottle"], (img_size, img_size), cat_ids=[1]), path)
    return path


def write_video(path: Path, frames: int = 40, size: tuple[int, int] = (320, 240), fps: float = 25.0) -> Path:
    """A moving-blob video (mp4v) so every frame differs."""
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    rng = np.random.default_rng(0)
    base = rng.integers(40, 120, (h, w, 3), dtype=np.uint8)
    for i in range(frames):
        img = base.copy()
        cv2.circle(img, (10 + (i * 7) % (w - 20), h // 2), 6, (255, 255, 255), -1)
        vw.write(img)
    vw.release()
    return path


@pytest.fixture(scope="session")
def nano_ckpt(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "ckpt", lambda d: make_checkpoint(d / "nano.pt")) / "nano.pt"


@pytest.fixture(scope="session")
def nano_onnx(nano_ckpt, tmp_path_factory) -> Path:
    """Dynamic-batch fp32 export (parity checked on synthetic frames)."""
    from flowdet.export.onnx_export import export_onnx

    def build(d: Path) -> None:
        export_onnx(nano_ckpt, d / "nano.onnx", dynamic_batch=True, log=lambda m: None)

    return built_once(tmp_path_factory, "onnx", build) / "nano.onnx"


# --- a trained model ----------------------------------------------------------------------------------
OVERFIT_SCENES = dict(num_images=8, width=320, height=320, seed=0, min_size=28, max_size=64, near_fraction=0.0,
                      objects_per_image=(1, 3), distractors_per_image=(0, 1), empty_fraction=0.0)
NO_AUGMENTATION = ["augment.mosaic_prob=0", "augment.mixup_prob=0", "augment.hsv_prob=0", "augment.flip_prob=0",
                   "augment.degrees=0", "augment.translate=0", "augment.shear=0", "augment.scale=[1, 1]",
                   "augment.no_aug_epochs=0"]


@pytest.fixture(scope="session")
def overfit_run(tmp_path_factory) -> dict:
    """nano trained to overfit 8 synthetic 320×320 images, validated on the same images: train()'s
    summary (``run_dir``, ``best``, ``metrics``…; data in ``data/`` beside ``run/``).

    ~50 s of CPU with 1 thread, so one training per test run (built_once) for every test that needs
    "a trained model": tests/detect/test_train.py checks the training itself. The recipe: plain
    training (no augmentation), 120 one-batch epochs at input 192; batch 8 (BatchNorm statistics of
    2–4 images are too noisy), BN momentum 0.2 (YOLOX's 0.03 makes eval-mode statistics lag the
    weights for hundreds of iterations), a high lr floor, and no L1 phase."""
    import json

    def build(root: Path) -> None:
        from flowdet.config import load_config
        from flowdet.data.synth import SynthConfig, generate
        from flowdet.detect.config import DetectConfig
        from flowdet.detect.train import train

        data, out = root / "data", root / "run"
        generate(data, SynthConfig(**OVERFIT_SCENES))
        cfg = load_config(DetectConfig, None, [
            f"data.train={data}/annotations.json", f"data.images={data}/images", f"data.val={data}/annotations.json",
            f"out={out}", "model.size=nano", "train.workers=0", "train.progress=false", *NO_AUGMENTATION,
            "train.img_size=192", "train.batch=8", "train.epochs=120", "train.lr=0.02", "train.warmup_epochs=1",
            "train.min_lr_ratio=0.5", "train.bn_momentum=0.2", "train.eval_interval=1000", "data.cache=true",
            "train.seed=0"])
        (root / "summary.json").write_text(json.dumps(train(cfg)))

    return json.loads((built_once(tmp_path_factory, "overfit8", build) / "summary.json").read_text())


@pytest.fixture(scope="session")
def grogol_val() -> Path | None:
    """The real validation json when ../shared/data is present (parity then uses real frames)."""
    return GROGOL_VAL if GROGOL_VAL.is_file() else None


@pytest.fixture(scope="session")
def real_video() -> Path:
    if not REAL_VIDEO.is_file():
        pytest.skip(f"real data not present: {REAL_VIDEO}")
    return REAL_VIDEO


@pytest.fixture(scope="session")
def video_factory():
    return write_video


@pytest.fixture(scope="session")
def small_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "synthetic.mp4")


@pytest.fixture(scope="session")
def smooth_frames(tmp_path_factory) -> Path:
    """8 frames of smooth random colour fields plus noise: neighbouring patches look alike, distant
    patches and other frames do not — the structure patch contrast is meant to learn."""
    out = tmp_path_factory.mktemp("smooth_frames")
    rng = np.random.default_rng(0)
    for i in range(8):
        field = rng.integers(0, 255, (3, 5, 3)).astype(np.uint8)
        img = cv2.resize(field, (320, 192), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"{i:02d}.jpg"), img)
    return out


def pytest_collection_modifyitems(config, items):
    """Under xdist, the files that hold tests marked ``slow`` run first (most slow test functions
    first, a parametrized one counted once; the order is otherwise kept): ``make test`` hands out
    whole files in collection order (``--dist loadfile --no-loadscope-reorder``), and a long file
    picked up last would leave one worker running alone. Without xdist the order is pytest's own."""
    if not XDIST_WORKER:
        return
    slow: dict[Path, set[str]] = {item.path: set() for item in items}
    for item in items:
        if item.get_closest_marker("slow") is not None:
            slow[item.path].add(getattr(item, "originalname", item.name))
    first_seen = {path: i for i, path in enumerate(slow)}  # dicts keep insertion (collection) order
    items.sort(key=lambda item: (-len(slow[item.path]), first_seen[item.path]))
