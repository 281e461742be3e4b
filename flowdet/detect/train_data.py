"""A training run's datasets, loaded once at start: the training set (checked for existence only;
``flowdet data check`` decodes), the auto input size chosen from it, and the validation set — the
``--val`` json or a YOLO data.yaml's own val split — with the checks that would otherwise surface as
an AP of -1 at the end (other categories, nothing to score); ``--pseudo`` images appended last
(flowdet.detect.train_pseudo)."""
from __future__ import annotations

import dataclasses

from flowdet import log
from flowdet.data.records import CocoDataset
from flowdet.detect.config import DetectConfig
from flowdet.engine import dist
from flowdet.errors import DataError


def echo(msg: str) -> None:
    if dist.is_main():
        log.info(msg)


def load_sets(cfg: DetectConfig) -> tuple[DetectConfig, CocoDataset, CocoDataset | None]:
    """(cfg with its auto values, val split and pseudo jsons settled, training set (with the ``--pseudo``
    images appended; what they added in its ``info["pseudo"]``), validation set or None)."""
    train_set = load_split(cfg.data.train, cfg.data.images, "train")
    cfg = concrete_size(cfg, train_set)  # from the labeled images: --pseudo does not move the input size
    # A YOLO data.yaml carries its own val split: `--data data.yaml` alone validates on it (ultralytics).
    val = cfg.data.val_source()
    if val and not cfg.data.val:  # config.yaml records the split used (a data.yaml's own val), not ''
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, val=val[0]))
    val_set = load_val(cfg, train_set, val) if val else None
    if cfg.data.pseudo:
        cfg, train_set = with_pseudo(cfg, train_set, val_set)
    return cfg, train_set, val_set


def with_pseudo(cfg: DetectConfig, train_set: CocoDataset,
                val_set: CocoDataset | None) -> tuple[DetectConfig, CocoDataset]:
    """``data.pseudo`` appended to the training set (flowdet.detect.train_pseudo), checked against ``--val`` /
    ``--exclude`` on rank 0; cfg records the json paths."""
    from flowdet.detect import train_pseudo

    n = len(train_set.records)
    train_set, paths, added = train_pseudo.add_pseudo(cfg.data.pseudo, train_set)
    if dist.is_main():
        files = [r.file for r in train_set.records[n:]]
        train_pseudo.check_val_overlap(files, cfg.semi.exclude, val_set, cfg.data.val or "VAL.json")
        for line in train_pseudo.describe(added):
            log.info(line)
    train_set.info = {**train_set.info, "pseudo": added}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, pseudo=paths)), train_set


def load_val(cfg: DetectConfig, train_set: CocoDataset, val: tuple[str, str]) -> CocoDataset:
    """The validation split, with the checks that would otherwise surface as an AP of -1 at the end."""
    val_set = load_split(val[0], val[1], "val")
    if val_set.cat_ids != train_set.cat_ids:
        raise DataError(
            f"{cfg.data.val}: categories {val_set.cat_ids} differ from the training set's {train_set.cat_ids}")
    if not any(len(r.boxes) and not r.ignore.all() for r in val_set.records):
        # COCOeval has nothing to score: AP would stay -1 and no epoch would ever be "best"
        log.warn(f"{val}: no (non-ignore) boxes in its {len(val_set.records)} images, so no AP can be "
                 "computed; best.pt will be the last epoch (as without a validation set)")
    return val_set


def concrete_size(cfg: DetectConfig, train_set: CocoDataset) -> DetectConfig:
    """model.size / train.img_size 'auto' → chosen from the training records, said in one line with
    the reason (recorded in config.yaml and the checkpoints); explicit values pass through."""
    from flowdet.detect import auto_input

    auto = auto_input.is_auto(cfg)
    cfg, choice = auto_input.resolve(cfg, train_set.records)
    if auto:
        echo(f"auto: {choice.reason} (--size / --img-size to choose)")
    for note in choice.notes:
        echo(f"note: {note}")
    return cfg


def load_split(ann: str, images: str, split: str) -> CocoDataset:
    """One split through :func:`flowdet.data.formats.load_dataset`; problems said in one line, no usable
    image → :class:`DataError`, a training set without boxes → a warning."""
    from flowdet.data.formats import load_dataset

    # Existence-only check at startup: `flowdet data check` decodes; a bad file fails when read.
    ds = load_dataset(ann, images or None, split, check_images=False)
    if ds.report.problems:
        log.warn(f"{ds.report.summary()} (`flowdet data check` lists them)")
    if not ds.records:
        raise DataError(f"{ann}: no usable images")
    if split == "train" and not any(len(r.boxes) for r in ds.records):
        log.warn(f"{ann}: no annotations in {len(ds.records)} usable images; the model can only learn "
                 "to detect nothing (every anchor is background)")
    return ds
