"""YOLO (ultralytics) ↔ COCO json.

Ultralytics layout: a data yaml with ``path`` (dataset root; relative paths are resolved against the
yaml's folder), ``train``/``val``/``test`` (relative to ``path``: an images folder, a .txt list of
image paths whose relative entries are relative to the list's folder, or a list of those) and
``names`` (a list, or a {index: name} mapping). The labels of ``.../images/.../x.jpg`` are in
``.../labels/.../x.txt`` (the last ``images`` path component swapped for ``labels``), one object per
line: ``class cx cy w h``, normalised to [0, 1] by the image size.
A line with more than 5 values is a segment polygon; its bounding box is used.

Conversions:
- :func:`yolo_to_coco`: class index k → category id k + 1; COCO ``file_name`` is relative to the
  dataset root (``path``), which is therefore the ``--images`` folder for the json. Image sizes come
  from decoding each image (needed to de-normalise).
- :func:`coco_to_yolo`: writes ``out/images/<split>/…`` (hard links by default — a copy where
  linking is not possible — or copies),
  ``out/labels/<split>/….txt`` and ``out/data.yaml`` (merged with an existing one, so running it
  for train then val builds one dataset; ``val`` defaults to the first split written). Classes are
  the contiguous indices of :class:`flowdet.data.coco.CocoDataset`; ``ignore`` (crowd/difficult)
  boxes are left out. Numbers are written with 10 decimals so COCO → YOLO → COCO is exact to
  ~1e-7 px.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flowdet import safe_yaml
from flowdet.core.imread import try_read_image
from flowdet.core.media import IMAGE_EXTS
from flowdet.data.coco import default_images_dir, read_json
from flowdet.data.coco_validate import validate_coco_dict
from flowdet.data.validation import ValidationReport, class_name_problem
from flowdet.errors import DataError
from flowdet.files import read_text
from flowdet.paths import OUTSIDE, file_root, is_inside, plain_name, real, within
from flowdet.utils import link_or_copy


def _load_data_yaml(path: Path) -> dict[str, Any]:
    data = safe_yaml.read(path, DataError, "data yaml")
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level must be a mapping")
    return data


def _names(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataError(f"{path}: 'names' keys must be class indices") from None
        if keys != list(range(len(keys))):
            raise DataError(f"{path}: 'names' indices must be 0..N-1")
        values = [names[k] if k in names else names[str(k)] for k in keys]
    elif isinstance(names, list) and names:
        values = names
    else:
        raise DataError(f"{path}: 'names' missing (a list or an index → name mapping)")
    for i, n in enumerate(values):
        if (why := class_name_problem(n)) is not None:
            raise DataError(f"class {i}: {why}", path=path, field="names")
    return [str(n) for n in values]


def dataset_root(path: Path, data: dict) -> Path:
    """The data.yaml's dataset root: its ``path`` (relative to the yaml's folder), which must stay
    inside that folder (:func:`flowdet.paths.file_root`). A ``path`` leading out is not followed:
    when the yaml's own folder holds every split it names (a dataset that was moved or copied, its
    yaml still naming the old place), that folder is the root, said in one line; else one error line."""
    value = data.get("path")
    if value is not None and not isinstance(value, (str, int, float)):
        raise DataError("must be a folder name", path=path, field="path")
    root, why = file_root(path, str(value) if value not in (None, "") else None,
                          hint="put the data.yaml in the dataset folder")
    if why is None:
        return root
    splits = [v for k in ("train", "val", "test") for v in ([data[k]] if isinstance(data.get(k), str) else [])]
    if splits and all(within(root, s) is not None and (root / s).exists() for s in splits):
        from flowdet import log

        log.info(f"{path}: path {str(value)!r} leads out of its folder (not followed); the folder holds "
                 f"{', '.join(splits)}: using {root}")
        return root
    raise DataError(why, path=path, field="path")


def _split_images(root: Path, spec: Any, path: Path, split: str,
                  report: ValidationReport) -> list[Path]:
    """Image files of one split entry (folders, .txt lists); every file, list and folder must stay
    inside ``root`` — a list line or a linked file that leads out is a counted skip, never read."""
    specs = spec if isinstance(spec, list) else [spec]
    files: list[Path] = []
    for s in specs:
        p = within(root, str(s)) if isinstance(s, (str, int, float)) else None
        if p is None:
            raise DataError(f"{s!r} is outside the dataset root {root}", path=path, field=split)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.suffix == ".txt" and p.exists():  # not is_file(): a FIFO list is refused by name, not "missing"
            found = []
            for n, line in enumerate(read_text(p).splitlines(), start=1):
                if not line.strip():
                    continue
                f = p.parent / line.strip()  # as ultralytics: ./x is next to the list (an absolute line stays)
                if is_inside(root, f):
                    found.append(f)
                else:
                    report.add(p, f"line {n}", f"{line.strip()!r} is " + OUTSIDE.format(what="dataset root", root=root))
                    report.images_total += 1
                    report.images_skipped += 1
        else:
            raise DataError(f"{path}: '{split}' → {p} is neither an images folder nor a .txt list")
        files += found
    return files


def label_path_for(image: Path) -> Path:
    """.../images/a/b.jpg → .../labels/a/b.txt (the last 'images' component)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def yolo_to_coco(data_yaml: str | Path, split: str = "train",
                 progress: bool = False) -> tuple[dict[str, Any], Path, ValidationReport]:
    """→ (COCO dict, images root its ``file_name``s are relative to, report)."""
    path = Path(data_yaml)
    data = _load_data_yaml(path)
    names = _names(data, path)
    root = Path(real(dataset_root(path, data)))
    if split not in data or data[split] in (None, ""):
        raise DataError(f"{path}: no '{split}' split")
    report = ValidationReport(str(path))
    files = _split_images(root, data[split], path, split, report)
    if not files:
        raise DataError(f"{path}: '{split}' has no images" + (f" inside {root}" if report.problems else ""))
    coco, report = _files_to_coco(files, names, root, path, progress, report)
    coco["info"] = {"description": f"converted from YOLO {path.name} split {split}", "images_dir": str(root)}
    return coco, root, report


def yolo_folder_to_coco(folder: str | Path, progress: bool = False) -> tuple[dict[str, Any], Path, ValidationReport]:
    """A LabelImg / CVAT "YOLO 1.1" export → (COCO dict, images root, report).

    The folder holds ``classes.txt`` (LabelImg) or ``obj.names`` (CVAT), one class per line, and
    images anywhere below it with their ``.txt`` beside them (or under a sibling ``labels/``)."""
    root = Path(folder).resolve()
    names_file = next((root / n for n in ("classes.txt", "obj.names") if (root / n).is_file()), None)
    if names_file is None:
        raise DataError(f"{root}: no classes.txt or obj.names (a YOLO folder export names its classes there)")
    if not is_inside(root, names_file):
        raise DataError("is a link out of the folder (not read)", path=names_file)
    names = [ln.strip() for ln in read_text(names_file).splitlines() if ln.strip()]
    if not names:
        raise DataError(f"{names_file}: no class names")
    for i, n in enumerate(names):
        if (why := class_name_problem(n)) is not None:
            raise DataError(f"line {i + 1}: {why}", path=names_file)
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DataError(f"{root}: no images below this folder")
    coco, report = _files_to_coco(files, names, root, names_file, progress)
    coco["info"] = {"description": f"converted from YOLO folder {root.name}", "images_dir": str(root)}
    return coco, root, report


def _files_to_coco(files: list[Path], names: list[str], root: Path, path: Path, progress: bool,
                   report: ValidationReport | None = None) -> tuple[dict[str, Any], ValidationReport]:
    report = report if report is not None else ValidationReport(str(path))
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    iterator: Any = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="yolo → coco", unit="img", leave=False, disable=None)
    for f in iterator:
        report.images_total += 1
        lbl = label_path_for(f)
        if not lbl.exists():  # LabelImg / CVAT: the .txt beside the image
            lbl = f.with_suffix(".txt")
        outside = next((q for q in (f, lbl) if not is_inside(root, q)), None)
        if outside is not None:  # a symlinked image or label file that points out of the dataset
            report.add(outside, "image" if outside == f else "labels", OUTSIDE.format(what="dataset root", root=root))
            report.images_skipped += 1
            continue
        img, why = try_read_image(f)
        if img is None:
            report.add(f, "image", f"{why} (skipped)")
            report.images_skipped += 1
            continue
        h, w = img.shape[:2]
        try:  # not is_file(): a FIFO or a folder named x.txt is refused by name, not taken for "no boxes"
            lines = read_text(lbl).splitlines() if lbl.exists() else []
        except DataError as e:
            report.add(lbl, "labels", f"{e.message} (image skipped)")
            report.images_skipped += 1
            continue
        image_id = len(images) + 1
        # Not resolve(): a symlink inside the dataset should keep the dataset's own name in the json.
        absolute = Path(os.path.abspath(f))
        try:
            rel = absolute.relative_to(root).as_posix()
        except ValueError:
            rel = str(absolute)  # outside the root: keep absolute
        images.append({"id": image_id, "file_name": rel, "width": w, "height": h})
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            report.boxes_total += 1
            box = _parse_label_line(line, len(names), w, h, lbl, n, report)
            if box is not None:
                cls, xywh = box
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cls + 1,
                             "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0})
                report.boxes_kept += 1
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    return {"images": images, "annotations": anns, "categories": cats}, report


def _parse_label_line(line: str, num_classes: int, w: int, h: int, lbl: Path, n: int,
                      report: ValidationReport) -> tuple[int, list[float]] | None:
    def drop(msg: str) -> None:
        report.add(lbl, f"line {n}", f"{msg} (dropped)")
        report.boxes_dropped += 1

    parts = line.split()
    try:
        cls_f, *vals = [float(v) for v in parts]
    except ValueError:
        drop(f"not numbers: {line.strip()!r}")
        return None
    if len(vals) < 4 or (len(vals) > 4 and len(vals) % 2):
        drop(f"expected 'class cx cy w h' or a polygon, got {len(parts)} values")
        return None
    if not all(math.isfinite(v) for v in [cls_f, *vals]):
        drop("not finite")
        return None
    if cls_f != int(cls_f) or not 0 <= cls_f < num_classes:
        drop(f"class {cls_f:g} outside 0..{num_classes - 1}")
        return None
    if len(vals) == 4:
        cx, cy, bw, bh = vals
        x1, y1, x2, y2 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
    else:  # polygon x1 y1 x2 y2 ... (normalised) → its bounding box
        xs, ys = np.array(vals[0::2]) * w, np.array(vals[1::2]) * h
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        drop("empty box")
        return None
    cx1, cy1, cx2, cy2 = min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)
    if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
        drop("entirely outside the image")
        return None
    if max(abs(cx1 - x1), abs(cy1 - y1), abs(cx2 - x2), abs(cy2 - y2)) > 0.01:
        report.add(lbl, f"line {n}", "sticks out of the image (clipped)")
        report.boxes_clipped += 1
    return int(cls_f), [cx1, cy1, cx2 - cx1, cy2 - cy1]


def coco_to_yolo(ann_path: str | Path, images_dir: str | Path | None, out_dir: str | Path, split: str = "train",
                 copy: bool = False, progress: bool = False) -> tuple[Path, ValidationReport]:
    """COCO json → ultralytics dataset under ``out_dir``; returns (data.yaml path, report).

    ``split`` is a plain name (no separators or ``..``): every file written lands under ``out_dir``."""
    split = plain_name(split, "--split")
    ann_path, out = Path(ann_path), Path(out_dir)
    coco = read_json(ann_path)
    root = Path(images_dir) if images_dir is not None else default_images_dir(ann_path, coco)
    # Decoded, not just headers: the labels are normalised by the image size, so it must be the real one.
    # file_names leaving the images folder ("/etc/passwd", "../../x", a symlink out) are skipped unread
    records, _, names, report = validate_coco_dict(coco, str(ann_path), root, check_images=True)
    img_out, lbl_out = out / "images" / split, out / "labels" / split
    from flowdet.core import validate

    validate.writable_dir(out)
    root_real = real(root)
    written: dict[str, int] = {}  # output path (case-folded) → image id that took it
    iterator: Any = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="coco → yolo", unit="img", leave=False, disable=None)
    kept = 0
    for r in iterator:
        where = f"images (id={r.image_id})"
        if r.frame_index is not None:
            report.add(ann_path, where, "video frames cannot be linked as images (skipped)")
            continue
        src = real(r.file)  # inside root_real (validate_coco_dict refused the rest): rel has no '..'
        rel = Path(os.path.relpath(src, root_real))
        key = rel.as_posix().lower()
        if key in written:
            report.add(ann_path, f"{where}.file_name", f"{r.file_name!r} maps to {rel.as_posix()}, already written for "
                                                       f"image id {written[key]} (skipped)")
            continue
        dst, lbl = img_out / rel, (lbl_out / rel).with_suffix(".txt")
        dst.parent.mkdir(parents=True, exist_ok=True)
        lbl.parent.mkdir(parents=True, exist_ok=True)
        if not (is_inside(out, dst.parent) and is_inside(out, lbl.parent)):  # a symlinked folder in an existing --out
            report.add(dst, where, f"leads out of {out} through a linked folder (not written; skipped)")
            continue
        written[key] = r.image_id
        link_or_copy(src, dst, copy)
        keep = ~r.ignore
        b = r.boxes[keep].astype(np.float64)
        cxcywh = np.stack([(b[:, 0] + b[:, 2]) / 2 / r.width, (b[:, 1] + b[:, 3]) / 2 / r.height,
                           (b[:, 2] - b[:, 0]) / r.width, (b[:, 3] - b[:, 1]) / r.height], axis=1)
        lines = [f"{c} " + " ".join(f"{v:.10f}" for v in row) for c, row in zip(r.classes[keep], cxcywh)]
        if lbl.is_symlink():
            lbl.unlink()
        lbl.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
        kept += 1
    report.images_written = kept

    yaml_path = out / "data.yaml"
    data: dict[str, Any] = {}
    if yaml_path.is_file() or yaml_path.is_symlink():
        if not is_inside(out, yaml_path):
            raise DataError(f"is a link out of {out} (not read or written)", path=yaml_path)
        data = safe_yaml.read(yaml_path, DataError, "data yaml") or {}
        if not isinstance(data, dict):
            raise DataError("top level must be a mapping", path=yaml_path)
        old = _names(data, yaml_path) if data.get("names") else names
        if old != names:
            raise DataError(f"{yaml_path}: existing names {old} differ from {ann_path}'s {names}")
    data.update({"path": str(out.resolve()), split: f"images/{split}", "names": dict(enumerate(names))})
    data.setdefault("train", f"images/{split}")
    data.setdefault("val", f"images/{split}")  # ultralytics requires 'val'; overwritten by a val split
    from flowdet.utils import atomic_write_text

    atomic_write_text(yaml_path, yaml.safe_dump(data, sort_keys=False))
    return yaml_path, report
