"""`flowdet data split`: one dataset → train.json + val.json, seeded, optionally grouped so that one
scene never lands on both sides (frames of one video are near-copies: a random image split would
score the model on frames it has as good as seen).

Groups (``group_by``): ``image`` (no grouping), ``folder`` (the file_name's folder), ``video``
(``clip.mp4#000123`` → ``clip.mp4``; else the file name without its trailing frame number:
``cam3_000123.jpg`` → ``cam3``), or any key of the COCO image entries (``video_id``, ``location`` …).
"""
from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from flowdet import log
from flowdet.data.coco import default_images_dir, image_entries, read_json
from flowdet.data.records import split_video_frame
from flowdet.errors import DataError, InputError

_FRAME_SUFFIX = re.compile(r"[_\-. ]*(frame)?[_\-]?\d+$", re.IGNORECASE)


def group_key(image: dict[str, Any], group_by: str) -> str:
    """The group an image entry belongs to under ``group_by`` (see module docstring)."""
    name = str(image.get("file_name", ""))
    if group_by == "image":
        return f"id:{image.get('id')}"
    if group_by == "folder":
        return str(PurePosixPath(name).parent)
    if group_by == "video":
        base, frame = split_video_frame(name)
        if frame is not None:
            return base
        p = PurePosixPath(base)
        return str(p.parent / (_FRAME_SUFFIX.sub("", p.stem) or p.stem))
    if group_by not in image:
        raise InputError(f"image {image.get('id')} has no key '{group_by}' (group by image, folder, video "
                         "or a key every image entry has)", field="--group-by")
    return str(image[group_by])


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def split_dataset(ann: str | Path, out_dir: str | Path, val: float = 0.2, group_by: str = "image",
                  seed: int = 0) -> dict[str, Any]:
    """Write ``out_dir``/train.json and val.json (a share ``val`` of the groups, at least one each side).

    Both json files record the images root (``info.images_dir``), so they work from ``out_dir``."""
    from flowdet.data.formats import resolve_with_root
    from flowdet.paths import remember_root
    from flowdet.utils import atomic_write_json

    if not 0 < val < 1:
        raise InputError(f"must be in (0, 1), got {val}", field="--val")
    src, known_root = resolve_with_root(ann)
    data = read_json(src)
    groups: dict[str, list[dict]] = defaultdict(list)
    for im in image_entries(data, src):  # an entry that is not an image object: one line, not a traceback
        groups[group_key(im, group_by)].append(im)
    keys = sorted(groups)
    if len(keys) < 2:
        raise DataError(f"only {len(keys)} group(s) by {group_by}: nothing to split", path=src)
    random.Random(seed).shuffle(keys)
    n_val = min(len(keys) - 1, max(1, round(val * len(keys))))
    val_keys = set(keys[:n_val])
    info = dict(data["info"]) if isinstance(data.get("info"), dict) else {}
    root = (known_root or default_images_dir(src, data)).resolve()
    info["images_dir"] = str(root)
    out = Path(out_dir)
    summary: dict[str, Any] = {"group_by": group_by, "groups": len(keys), "seed": seed}
    for name, chosen in (("train", [k for k in keys if k not in val_keys]), ("val", sorted(val_keys))):
        images = [im for k in chosen for im in groups[k]]
        ids = {im["id"] for im in images}
        anns = [a for a in _list(data.get("annotations")) if isinstance(a, dict) and a.get("image_id") in ids]
        part = {**data, "info": {**info, "split": f"{name} of {Path(ann).name} by {group_by}, seed {seed}"},
                "images": sorted(images, key=lambda im: im["id"]), "annotations": anns}
        atomic_write_json(out / f"{name}.json", part)
        remember_root(out / f"{name}.json", root)  # the json may point there (flowdet.paths.file_root)
        summary[name] = {"json": str(out / f"{name}.json"), "images": len(images), "boxes": len(anns),
                         "groups": len(chosen)}
    log.info(f"split {len(data['images'])} images in {len(keys)} group(s) by {group_by} (seed {seed}): "
             f"train {summary['train']['images']}, val {summary['val']['images']} → {out}")
    return summary
