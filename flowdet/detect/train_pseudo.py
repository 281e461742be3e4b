"""``flowdet train --pseudo``: the images of ``flowdet pseudo-label``'s json(s) join the training set with
their boxes and ignore regions (``iscrowd: 1``: neither learned nor called background, flowdet.detect.loss).

Checked before training (one line, exit 2, naming the file and the field): a missing json or folder
(``data.pseudo``), images it names that are not there (``images``), categories the training set does not
have (``categories``). Pseudo-labelled images that are images of ``--exclude`` (content hash and
near-duplicates, flowdet.mine.leakage) → refused; images that are ``--val`` images → one line saying
the val score is transductive (the new-camera protocol does it on purpose) — as ``--unlabeled``.
The boxes' ``score`` is not used (every kept pseudo-box is a label). What each json added is said at start
and written at the end of ``config.yaml``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from flowdet.data.records import CocoDataset, ImageRecord
from flowdet.errors import DataError

PSEUDO_JSON = "pseudo.json"  # what `flowdet pseudo-label --out DIR` writes in DIR
FIELD = "data.pseudo"


def pseudo_json(source: str | Path) -> Path:
    """A ``--pseudo`` value → its json: the file itself, or ``DIR/pseudo.json`` of a pseudo-label folder."""
    p = Path(source)
    if p.is_dir():
        p = p / PSEUDO_JSON
    if not p.is_file():
        raise DataError(f"not found (a {PSEUDO_JSON} or the folder `flowdet pseudo-label --out` wrote)",
                        path=p, field=FIELD)
    return p


def load_pseudo(path: Path, train_set: CocoDataset) -> list[ImageRecord]:
    """The json's records with their classes in the training set's order; a missing image or a category the
    training set lacks → :class:`DataError`."""
    from flowdet.data.coco import load_coco

    ds = load_coco(path, check_images=False)  # existence and headers, as the training set
    if ds.report.images_skipped:
        first = next((p for p in ds.report.problems if p.field.startswith("images")), ds.report.problems[0])
        raise DataError(f"{ds.report.images_skipped} of {ds.report.images_total} images not usable under "
                        f"{ds.images_dir}, e.g. {first.field}: {first.message}", path=path, field="images")
    if not ds.records:
        raise DataError("no images", path=path, field="images")
    index = {c: i for i, c in enumerate(train_set.cat_ids)}
    for c, name in zip(ds.cat_ids, ds.names):
        if index.get(c) is None or train_set.names[index[c]] != name:
            raise DataError(f"category {c} '{name}' is not one of the training set's "
                            f"{dict(zip(train_set.cat_ids, train_set.names))}: pseudo-label with a teacher "
                            "trained on these classes", path=path, field="categories")
    to_train = np.array([index[c] for c in ds.cat_ids], np.int64)
    return [dataclasses.replace(r, classes=to_train[r.classes]) for r in ds.records]


def add_pseudo(sources: list[str], train_set: CocoDataset) -> tuple[CocoDataset, list[str], list[dict]]:
    """(the training set with the pseudo-labelled images appended — image ids renumbered after its
    own —, the json paths, what each added: {"json", "images", "boxes", "ignores"})."""
    records, paths, added = list(train_set.records), [], []
    next_id = max((r.image_id for r in records), default=0) + 1
    for src in sources:
        path = pseudo_json(src)
        recs = load_pseudo(path, train_set)
        for r in recs:
            records.append(dataclasses.replace(r, image_id=next_id))
            next_id += 1
        ignores = sum(int(r.ignore.sum()) for r in recs)
        added.append({"json": str(path), "images": len(recs),
                      "boxes": sum(len(r.boxes) for r in recs) - ignores, "ignores": ignores})
        paths.append(str(path))
    return dataclasses.replace(train_set, records=records), paths, added


def check_val_overlap(pseudo_files: list[Path], exclude: list[str], val_set: CocoDataset | None,
                      val_name: str) -> None:
    """``--exclude`` images among the pseudo-labelled ones → refused; ``--val`` images → the transductive warning
    (flowdet.mine.unlabeled.check_leaks, the ``--unlabeled`` rule and words)."""
    from flowdet.mine.unlabeled import check_leaks

    val_images = [r.file for r in val_set.records if r.frame_index is None] if val_set else []
    check_leaks(pseudo_files, exclude, val_images, val_name, what="pseudo-labelled images", flag="--pseudo")


def describe(added: list[dict]) -> list[str]:
    """One line per json: what it added to the training set."""
    return [f"--pseudo {a['json']}: +{a['images']} images, {a['boxes']} boxes, {a['ignores']} ignore regions"
            for a in added]

