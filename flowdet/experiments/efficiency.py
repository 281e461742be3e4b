"""Label efficiency: do pretraining or unlabeled frames make up for labels? ``run_efficiency(spec) -> results``.

Pretrains once (``spec.method`` on ``spec.frames`` + the training images without their labels,
refusing any frame that is a val image), then trains and evaluates, for every fraction of the
training labels and every seed, a detector of each kind in ``spec.kinds``: ``scratch``, ``pretrained``
(the pretrained backbone), ``semi`` (scratch + teacher–student training on unlabeled frames: the rest
of the training images, labels hidden, + ``spec.unlabeled``; flowdet/experiments/efficiency_semi.py)
and ``pretrained+semi``.

- Equal iterations: a point at fraction f trains ``epochs / f`` epochs (warm-up and no-aug epochs
  scaled the same way), so every point sees the same number of optimizer steps — the curve measures
  labels, not compute. A semi point keeps its scratch point's labeled iterations (same subset, epochs,
  batch); its steps also carry unlabeled frames (``semi.ratio`` per labeled image), not extra steps.
- Subsets: ``round(f · N)`` training images drawn by ``random.Random(seed)`` from the sorted image
  ids; every kind at one (fraction, seed) shares the subset (a paired comparison), and the
  seed moves both the subset and the training seed (the spread a user meets).
- Every point is the real CLI (``flowdet train`` then ``flowdet eval``), run by ``runner``: a
  subprocess by default (memory stays bounded; an interrupted grid loses at most one epoch).
- Resumable per point: a point recorded in ``results.json`` is never re-run; an interrupted one
  resumes from its ``last.pt`` (``train --resume``) or, when that cannot resume, restarts cleanly
  in an emptied folder. Pretraining resumes the same way.

Layout under ``spec.out``: ``results.json``, ``table.md``, ``verdict.md``, ``efficiency.png``,
``subsets/`` (labeled subsets; the semi points' ``unlabeled_<f>_s<seed>.txt``), ``unlabeled_frames/``
(frames mined from ``spec.unlabeled`` videos), ``pretrain-<method>/``, ``points/<kind>-<fraction>-s<seed>/``
(+ ``*.log``). Report: ``efficiency_report.py``; results file and runner: ``efficiency_io.py``.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flowdet import log
from flowdet.errors import DataError, FlowdetError, InputError
from flowdet.experiments.efficiency_io import (
    Runner,
    csv_seconds,
    image_count,
    load_results,
    subprocess_runner,
    write_path_list,
)
from flowdet.experiments.efficiency_semi import (
    KINDS,
    PRETRAINED_KINDS,
    SEMI_KINDS,
    check_frames,
    extra_frames,
    skipped_note,
    train_images,
    warn_unused,
    write_unlabeled_list,
)
from flowdet.utils import atomic_write_json

STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "AR100", "AR1000")


@dataclass
class EfficiencySpec:
    data: str  # labelled training set (COCO json)
    val: str  # validation set (COCO json): scored, and excluded from pretraining
    images: str = ""  # training images folder ("" = next to the json)
    val_images: str = ""  # "" = ``images``
    frames: list[str] = field(default_factory=list)  # pretraining frames (folders, manifest.jsonl, lists)
    unlabeled: list[str] = field(default_factory=list)  # semi kinds: more unlabeled sources (train --unlabeled)
    transductive: bool = False  # semi kinds: allow val images among the unlabeled frames (else refused)
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 1.0])
    method: str = "self-emd"
    seeds: list[int] = field(default_factory=lambda: [0])
    kinds: list[str] = field(default_factory=lambda: ["scratch", "pretrained"])  # which curves to run now
    epochs: int = 30  # full-data epochs of iterations per point
    no_aug_epochs: int = -1  # -1: flowdet's auto value for ``epochs``
    warmup_epochs: float = -1  # -1: flowdet's auto value for ``epochs``
    pretrain_epochs: int = 10
    backbone: str = ""  # an existing backbone.pt: skip pretraining
    train_images_as_frames: bool = True  # pretrain on the training images too (their labels unused)
    exclude: list[str] | None = None  # None = [val]; no pretraining or unlabeled frame may be one of these
    size: str = "nano-d"  # train's auto size (flowdet.detect.auto_input)
    img_size: str = "auto"  # train's auto input; eval then uses the checkpoint's own
    batch: int = 8
    workers: int = 0
    device: str = "auto"
    train_sets: list[str] = field(default_factory=list)  # extra --set for every detector run
    pretrain_sets: list[str] = field(default_factory=list)  # extra --set for pretraining
    out: str = "runs/eff"


def parse_fractions(text: str) -> list[float]:
    """"0.1,0.25,1" → [0.1, 0.25, 1.0]; every fraction must lie in (0, 1]."""
    out = []
    for raw in (t.strip() for t in str(text).split(",")):
        if not raw:
            continue
        try:
            f = float(raw)
        except ValueError:
            raise InputError(f"--fractions: {raw!r} is not a number (e.g. 0.1,0.25,1.0)") from None
        if not 0 < f <= 1:
            raise InputError(f"--fractions: {raw} is outside (0, 1] (a fraction of the training labels)")
        out.append(f)
    if not out:
        raise InputError("--fractions: no fraction given (e.g. 0.1,0.25,1.0)")
    return sorted(set(out))


def scaled_schedule(epochs: int, frac: float, no_aug_epochs: float = -1, warmup_epochs: float = -1) -> dict:
    """Epoch counts of a point at fraction ``frac`` with the iterations of ``epochs`` full-data epochs:
    {"epochs", "no_aug_epochs", "warmup_epochs"} — each divided by ``frac`` (auto values, -1, are
    resolved for ``epochs`` first, as flowdet's trainer would: no-aug min(15, round(e/6)), warm-up min(5, e/15))."""
    if not 0 < frac <= 1:
        raise InputError(f"fraction {frac} is outside (0, 1]")
    no_aug = min(15, round(epochs / 6)) if no_aug_epochs < 0 else no_aug_epochs
    warm = min(5.0, epochs / 15) if warmup_epochs < 0 else float(warmup_epochs)
    return {"epochs": max(1, round(epochs / frac)), "no_aug_epochs": round(no_aug / frac),
            "warmup_epochs": round(warm / frac, 3)}


def subset_json(train_json: str | Path, frac: float, seed: int, out: str | Path) -> tuple[Path, int]:
    """A COCO json holding ``round(frac · N)`` (≥ 1) of the images of ``train_json`` and their
    annotations, drawn by ``random.Random(seed)`` from the sorted ids; (path, image count)."""
    from flowdet.data.coco import image_entries, read_json

    d = read_json(Path(train_json))
    if not image_entries(d, train_json):
        raise DataError(f"{train_json}: no 'images' to draw a label fraction from")
    ids = sorted(im["id"] for im in d["images"])
    keep = set(random.Random(seed).sample(ids, max(1, round(len(ids) * frac))))
    d = {**d, "images": [im for im in d["images"] if im["id"] in keep],
         "annotations": [a for a in (d.get("annotations") if isinstance(d.get("annotations"), list) else [])
                         if isinstance(a, dict) and a.get("image_id") in keep]}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, d)
    return out, len(keep)


def point_name(kind: str, frac: float, seed: int) -> str:
    return f"{kind}-{frac:g}-s{seed}"


class _Grid:
    def __init__(self, spec: EfficiencySpec, runner: Runner):
        self.spec, self.run = spec, runner
        self.out = Path(spec.out).resolve()
        self.res_path = self.out / "results.json"
        self.images = spec.images or str(Path(spec.data).resolve().parent / "images")
        # the unlabeled side of the semi kinds (prepare_unlabeled): training images by id (paths only),
        # the frames of spec.unlabeled, what every semi train excludes, and the points left out
        self.by_id: dict = {}
        self.extras: list[Path] = []
        self.semi_exclude: list[str] = []
        self.skipped: list[str] = []

    # -- results.json: merged with the disk copy on every save (two lanes may share one --out) --
    def load(self) -> dict:
        return load_results(self.res_path)

    def save_point(self, key: str, name: str, value: dict) -> None:
        res = self.load()
        res.setdefault(key, {})[name] = value
        atomic_write_json(self.res_path, res, indent=1)

    def pretrained(self) -> tuple[str, float | None]:
        """(backbone path, pretraining seconds) — pretraining once, resumably."""
        s = self.spec
        if s.backbone:
            return str(Path(s.backbone).resolve()), None
        done = self.load().get("pretrain", {}).get(s.method)
        run_dir = self.out / f"pretrain-{s.method}"
        if done and Path(done["backbone"]).is_file():
            return done["backbone"], done.get("seconds")
        exclude = exclusion(s, self.out)
        if s.method == "center-loss":
            src = ["--ann", s.data] + (["--images", s.images] if s.images else [])
        else:
            frames = list(s.frames) + ([s.data] if s.train_images_as_frames else [])
            src = sum((["--frames", f] for f in frames), [])
        fresh = ["pretrain", "--method", s.method, *src, *sum((["--exclude", e] for e in exclude), []),
                 "--size", s.size, "--out", str(run_dir), "--exist-ok", "--epochs", str(s.pretrain_epochs),
                 "--device", s.device, *sum((["--set", x] for x in s.pretrain_sets), [])]
        resume = ["pretrain", "--resume", "--out", str(run_dir)] if (run_dir / "last.pt").is_file() else None
        self._resumable(fresh, resume, run_dir, self.out / f"pretrain-{s.method}.log")
        seconds = csv_seconds(run_dir / "metrics.csv")
        self.save_point("pretrain", s.method, {"backbone": str(run_dir / "backbone.pt"), "seconds": seconds,
                                                "epochs": s.pretrain_epochs})
        return str(run_dir / "backbone.pt"), seconds

    def prepare_unlabeled(self) -> None:
        """Semi kinds: resolve (and mine, once) ``spec.unlabeled`` and check every frame a semi point may
        get — val images refused unless ``spec.transductive`` — before any training."""
        s = self.spec
        if not any(k in SEMI_KINDS for k in s.kinds):
            return
        self.extras = extra_frames(s.unlabeled, self.out, s.train_sets)
        self.by_id = train_images(s.data, self.images)
        allow_val = s.transductive and s.exclude is None
        self.semi_exclude = [] if allow_val else exclusion(s, self.out)
        check_frames(list(self.by_id.values()) + self.extras, self.semi_exclude,
                     val_list(s, self.out) if allow_val else None, s.val)

    def _resumable(self, fresh: list[str], resume: list[str] | None, run_dir: Path, log_path: Path) -> None:
        if resume is not None:
            try:
                log.info(f"resuming {run_dir.name} from its last.pt")
                self.run(resume, log_path.with_suffix(".resume.log"))
                return
            except FlowdetError as e:
                log.warn(f"{run_dir.name}: could not resume ({e}); restarting it from scratch")
        if run_dir.exists():  # a partial run that cannot resume: an empty folder, not a mix of two runs
            shutil.rmtree(run_dir)
        self.run(fresh, log_path)

    def point(self, kind: str, frac: float, seed: int, backbone: str | None) -> None:
        s, name = self.spec, point_name(kind, frac, seed)
        if name in self.load().get("points", {}):
            return
        run_dir, images = self.out / "points" / name, self.images
        if frac < 1:
            train_json, n_img = subset_json(s.data, frac, seed, self.out / "subsets" / f"train_{frac:g}_s{seed}.json")
        else:
            train_json, n_img = Path(s.data), None
        n_unl, unlabeled = self._unlabeled_args(frac, seed, train_json) if kind in SEMI_KINDS else (0, [])
        if kind in SEMI_KINDS and not n_unl:
            self.skipped.append(name)
            return
        sched = scaled_schedule(s.epochs, frac, s.no_aug_epochs, s.warmup_epochs)
        fresh = ["train", "--data", str(train_json), "--images", images, "--val", s.val,
                 *(["--val-images", s.val_images] if s.val_images else []), "--size", s.size,
                 "--epochs", str(sched["epochs"]), "--img-size", str(s.img_size), "--batch", str(s.batch),
                 "--out", str(run_dir), "--exist-ok", "--workers", str(s.workers),
                 "--eval-interval", str(sched["epochs"]), "--device", s.device, "--seed", str(seed),
                 *(["--backbone", backbone] if backbone else []), *sum((["--set", x] for x in s.train_sets), []),
                 "--set", f"augment.no_aug_epochs={sched['no_aug_epochs']}",
                 "--set", f"train.warmup_epochs={sched['warmup_epochs']}", *unlabeled]
        t0 = time.time()
        if not (run_dir / "train.done").is_file():
            last = run_dir / "last.pt"
            resume = ["train", "--resume", str(last)] if last.is_file() else None
            log.info(f"point {name}: {sched['epochs']} epochs" + (f" on {n_img} images" if n_img else ""))
            self._resumable(fresh, resume, run_dir, self.out / f"{name}.train.log")
            (run_dir / "train.done").write_text("ok\n")
        self.run(["eval", "--ckpt", str(run_dir / "last.pt"), "--ann", s.val, "--images", s.val_images or images,
                  *([] if str(s.img_size) == "auto" else ["--img-size", str(s.img_size)]),
                  "--out", str(run_dir / "eval"), "--exist-ok"], self.out / f"{name}.eval.log")
        stats = json.loads((run_dir / "eval" / "metrics.json").read_text())
        stats = stats.get("metrics", stats)
        n_img = n_img or image_count(train_json)
        self.save_point("points", name, {"kind": kind, "fraction": frac, "seed": seed, "images": n_img,
                                         "epochs": sched["epochs"], "train_s": round(csv_seconds(run_dir / "metrics.csv")
                                                                                       or time.time() - t0, 1),
                                         # single process: steps = epochs × batches of the labeled subset
                                         "labeled_iters": sched["epochs"] * -(-n_img // s.batch),
                                         **({"unlabeled": n_unl} if n_unl else {}),
                                         **{k: float(stats[k]) for k in STAT_KEYS if k in stats}})

    def _unlabeled_args(self, frac: float, seed: int, train_json: Path) -> tuple[int, list[str]]:
        """(unlabeled frame count, ``--unlabeled LIST --exclude …``) of a semi point; (0, []) when it has none."""
        from flowdet.data.coco import image_entries, read_json

        labeled = {im["id"] for im in image_entries(read_json(train_json), train_json)}  # the point's own subset
        path = self.out / "subsets" / f"unlabeled_{frac:g}_s{seed}.txt"
        n = write_unlabeled_list(self.by_id, labeled, self.extras, path)
        return n, (["--unlabeled", str(path), *sum((["--exclude", e] for e in self.semi_exclude), [])] if n else [])


def check_inputs(spec: EfficiencySpec) -> None:
    """Everything that can be wrong before hours are spent: each a :class:`FlowdetError`, one line."""
    for key, p in (("--data", spec.data), ("--val", spec.val)):
        if not p or not Path(p).is_file():
            raise DataError(f"{p or '(none)'}: {key} needs a COCO json file")
        if Path(p).suffix.lower() in (".yaml", ".yml"):  # the grid cuts json subsets; say how to get one
            raise DataError(f"{p}: {key} needs a COCO json file, not a YOLO data.yaml — convert each split first "
                            f"(flowdet convert yolo {Path(p).name} --split train|val --out train.json) and pass "
                            "the image root it prints as --images")
    for frac in spec.fractions:
        if not 0 < frac <= 1:
            raise InputError(f"--fractions: {frac:g} is outside (0, 1] (a fraction of the training labels)")
    _check_fraction_budget(spec)
    if not spec.seeds:
        raise InputError("--seeds: at least one seed")
    from flowdet.core.validate import seed

    for s in spec.seeds:  # before hours of pretraining, not at the first `train --seed -1`
        seed(s, "--seeds")
    bad = [k for k in spec.kinds if k not in KINDS]
    if bad or not spec.kinds:
        raise InputError(f"--kinds: {', '.join(bad) or '(none)'}: choose from {', '.join(KINDS)}")
    warn_unused(spec.unlabeled, spec.kinds)
    if spec.epochs < 1 or spec.pretrain_epochs < 1:
        raise InputError("--epochs and --pretrain-epochs must be ≥ 1")
    from flowdet.pretrain.registry import method_names

    if spec.method not in method_names():
        raise InputError(f"--method: unknown {spec.method!r} (choose from {', '.join(method_names())})")
    if not set(PRETRAINED_KINDS) & set(spec.kinds) or spec.backbone or spec.method == "center-loss":
        return
    if not spec.frames and not spec.train_images_as_frames:
        raise InputError("--frames: no unlabeled frames to pretrain on")
    from flowdet.mine.frames import resolve_frames

    frames = []
    for src in spec.frames:  # each source on its own: an empty folder is named, not hidden by the others
        frames += resolve_frames([src])
    if spec.train_images_as_frames:
        frames += resolve_frames([spec.data])
    if spec.method in load_results(Path(spec.out) / "results.json").get("pretrain", {}):
        return  # pretrained (and checked) by an earlier run: no need to decode the frames again
    from flowdet.mine.leakage import guard_frames

    guard_frames(sorted(set(frames)), exclusion(spec, Path(spec.out)))


def _check_fraction_budget(spec: EfficiencySpec) -> None:
    """A fraction trains ``epochs / f`` epochs (equal iterations): one whose epochs pass train's limit
    is refused now, not after hours of pretraining (``--fractions 1e-9`` asked for 3·10¹⁰ epochs)."""
    from flowdet.core.validate import MAX_EPOCHS

    for frac in spec.fractions:
        epochs = scaled_schedule(spec.epochs, frac, spec.no_aug_epochs, spec.warmup_epochs)["epochs"]
        if epochs > MAX_EPOCHS:
            raise InputError(f"--fractions: {frac:g} needs --epochs {spec.epochs} / {frac:g} = {epochs} epochs (equal "
                             f"iterations), over train's limit of {MAX_EPOCHS}: a larger fraction or fewer --epochs")


def exclusion(spec: EfficiencySpec, out: Path) -> list[str]:
    """What pretraining and the semi kinds' unlabeled frames must not be: ``spec.exclude``, or by default
    the val images (:func:`val_list`)."""
    return list(spec.exclude) if spec.exclude is not None else [val_list(spec, out)]


def val_list(spec: EfficiencySpec, out: Path) -> str:
    """The val images as a list file (``out/exclude_val.txt``, absolute paths): they may live away from val.json."""
    from flowdet.data.coco import default_images_dir, read_json

    data = read_json(Path(spec.val))
    root = Path(spec.val_images or spec.images) if (spec.val_images or spec.images) else default_images_dir(spec.val, data)
    names = [im["file_name"] for im in data.get("images", []) if isinstance(im, dict) and "file_name" in im]
    path = out / "exclude_val.txt"
    write_path_list(path, [(root / n).resolve() for n in names], root)  # its lines may name files there
    return str(path)


def run_efficiency(spec: EfficiencySpec, runner: Runner | None = None) -> dict:
    """Run (or resume) the grid of ``spec``; returns the results with the table and the verdict."""
    from flowdet.experiments.efficiency_report import write_report

    check_inputs(spec)
    grid = _Grid(spec, runner or subprocess_runner)
    grid.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(grid.out / "spec.json", asdict(spec), indent=1)
    grid.prepare_unlabeled()  # before pretraining: an empty source or a val image among them stops it now
    backbone = grid.pretrained()[0] if set(PRETRAINED_KINDS) & set(spec.kinds) else None
    for frac in spec.fractions:
        for seed in spec.seeds:
            for kind in spec.kinds:
                grid.point(kind, frac, seed, backbone if kind in PRETRAINED_KINDS else None)
    if grid.skipped:
        log.warn(skipped_note(grid.skipped))
    results = grid.load()
    return {**results, **write_report(results, spec.method, grid.out, spec.epochs, spec.img_size, spec.batch),
            "skipped": grid.skipped}
