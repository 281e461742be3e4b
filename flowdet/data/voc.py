"""Pascal VOC xml → COCO json (FloW-Img ships VOC: one class ``bottle``).

Conventions (documented choices):
- VOC pixel coordinates are **1-based and inclusive**: a box covering pixel columns 0..9 is written
  ``xmin=1, xmax=10``. COCO boxes are continuous with the origin at the top-left corner of pixel 0,
  so ``x = xmin - 1``, ``w = xmax - xmin + 1`` (same for y/h). The inverse, used when writing VOC,
  is ``xmin = x + 1``, ``xmax = x + w``.
- ``<difficult>1</difficult>`` objects are kept with ``"iscrowd": 0`` and ``"difficult": 1`` (the
  json stays a faithful copy; ``iscrowd`` means "a crowd of objects", which they are not).
  :func:`flowdet.data.coco.load_coco` marks them ``ignore=True``: training neither learns them nor calls them background. flowdet's
  eval scores them as pycocotools scores the json, as ordinary boxes; ``eval --dont-care training``
  (``CocoDataset.coco("training")``) scores them as don't-care, as VOC's own metric does. Converting to YOLO
  drops them (ultralytics has no ignore flag; its own VOC script drops difficult objects too).
- A missing or zero ``<size>`` is read from the image file; a ``<size>`` that differs from the file
  skips the image (its boxes are in another image's pixels). A missing ``<filename>`` (or one that
  does not exist) falls back to the xml's stem with a common image extension. A ``<filename>``
  that leads out of the images folder (absolute, ``../``, a symlink pointing out) is never read:
  the fallback is looked for inside, else the image is skipped (:mod:`flowdet.paths`).
- Category ids are 1..C in the order of ``labels.txt`` (one name per line) when given, else in
  sorted order of the names found. An object whose name is not in ``labels.txt`` is dropped.
- Boxes are validated like COCO ones: non-finite or empty → dropped, outside the image → clipped.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from flowdet.core.media import IMAGE_EXTS
from flowdet.data.validation import ValidationReport, class_name_problem
from flowdet.errors import DataError, FlowdetError
from flowdet.files import read_bytes, read_text
from flowdet.paths import OUTSIDE, is_inside, real, within

# A VOC xml names its image, or shares its stem: the candidates tried, in both cases (a case-sensitive disk).
CANDIDATE_EXTS = IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS)


def read_labels(path: str | Path) -> list[str]:
    """labels.txt: one class name per line (blank lines and '#' comments ignored)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: labels file not found")
    names = [ln.strip() for ln in read_text(p).splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise DataError(f"{p}: no class names")
    if len(set(names)) != len(names):
        raise DataError(f"{p}: duplicate class names")
    return names


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text is not None else None


def _number(node: ET.Element | None, tag: str) -> float | None:
    s = _text(node, tag)
    try:
        return float(s) if s is not None else None
    except ValueError:
        return None


def _find_image(images_dir: Path, xml_path: Path, filename: str | None) -> Path | None:
    """The image of an xml inside ``images_dir`` (:func:`flowdet.paths.within`: ``<filename>`` may
    not lead out of it, through ``../``, an absolute path or a symlink), else None."""
    named = within(images_dir, filename) if filename else None
    if named is not None and named.exists() and not named.is_dir():
        return named  # a FIFO/device is returned, for the reader to refuse by name
    stems = [Path(filename).stem] if filename else []
    for stem in stems + [xml_path.stem]:
        for ext in CANDIDATE_EXTS:
            found = within(images_dir, f"{stem}{ext}")
            if found is not None and found.is_file():
                return found
    return None


def parse_voc_xml(xml_path: Path) -> ET.Element:
    """The ``<annotation>`` root of a VOC xml; any other xml (an svg, a CVAT dump) is a DataError,
    not an image with no boxes."""
    try:
        root = ET.fromstring(read_bytes(xml_path))  # a FIFO named x.xml is refused, not read forever
    except ET.ParseError as e:
        line, col = e.position
        raise DataError(f"{xml_path}: invalid XML at line {line} column {col + 1}") from None
    except (RecursionError, OSError, ValueError) as e:  # nested too deep, unreadable, bad encoding
        what = "XML nested too deeply" if isinstance(e, RecursionError) else f"unreadable XML ({str(e)[:100]})"
        raise DataError(what, path=xml_path) from None
    if root.tag != "annotation":
        raise DataError(f"{xml_path}: root element is <{str(root.tag)[:60]}>, not <annotation>: not a Pascal VOC file")
    return root


def voc_to_coco(ann_dir: str | Path, images_dir: str | Path, labels: list[str] | None = None,
                progress: bool = False) -> tuple[dict[str, Any], ValidationReport]:
    """Every ``*.xml`` under ``ann_dir`` (sorted, recursive) → (COCO dict, report).

    COCO ``file_name`` is relative to ``images_dir``. A broken xml, a missing/unreadable image or an
    xml ``<size>`` that differs from the image file skips that file (reported); problems inside files
    (bad box, unknown name) are reported and dropped. ``--strict`` turns any problem into exit 2.
    """
    ann_dir, images_dir = Path(ann_dir), Path(images_dir)
    if not ann_dir.is_dir():
        raise DataError(f"{ann_dir}: annotation folder not found")
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: images folder not found")
    report = ValidationReport(str(ann_dir))
    roots = _parse_all(ann_dir, report)
    if labels is None:
        found = {(_text(o, "name") or "") for _, r in roots for o in r.iter("object")}
        labels = sorted(n for n in found if n and class_name_problem(n) is None)  # others: dropped, not a class
    cat_of = {name: i + 1 for i, name in enumerate(labels)}

    images, anns = [], []
    iterator: Any = roots
    if progress:
        from tqdm import tqdm

        iterator = tqdm(roots, desc="voc → coco", unit="xml", leave=False, disable=None)
    for xml_path, root in iterator:
        report.images_total += 1
        objects = root.findall("object")
        found = _image_of(xml_path, root, images_dir, report)
        if found is None:
            report.images_skipped += 1
            report.boxes_total += len(objects)
            report.boxes_in_skipped_images += len(objects)
            continue
        img_path, w, h = found
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": _relative(img_path, images_dir),
                       "width": int(w), "height": int(h)})
        for k, obj in enumerate(objects):
            report.boxes_total += 1
            ann = _object_to_ann(obj, xml_path, f"object[{k}]", cat_of, float(w), float(h), report)
            if ann is not None:
                ann.update(id=len(anns) + 1, image_id=image_id)
                anns.append(ann)
                report.boxes_kept += 1
    categories = [{"id": i, "name": n} for n, i in cat_of.items()]
    # images_dir: where file_names are relative to, so the json works without --images (coco.default_images_dir)
    return {"info": {"description": f"converted from Pascal VOC {ann_dir.name}",
                     "images_dir": str(images_dir.resolve())}, "images": images,
            "annotations": anns, "categories": categories}, report


def _parse_all(ann_dir: Path, report: ValidationReport) -> list[tuple[Path, ET.Element]]:
    """Every ``*.xml`` under ``ann_dir`` (sorted, recursive) parsed; one that leads out of the folder (a
    symlink) or does not parse is reported and skipped (--strict makes it fail), none left is an error."""
    listed = sorted(ann_dir.rglob("*.xml"))
    if not listed:
        raise DataError(f"{ann_dir}: no .xml files")
    xml_files = [x for x in listed if is_inside(ann_dir, x)]
    for x in sorted(set(listed) - set(xml_files)):  # a symlinked xml pointing out of the folder
        report.add(x, "xml", OUTSIDE.format(what="annotation folder", root=ann_dir))
        report.images_total += 1
        report.images_skipped += 1
    roots: list[tuple[Path, ET.Element]] = []
    for x in xml_files:
        try:
            roots.append((x, parse_voc_xml(x)))
        except FlowdetError as e:
            msg = e.message[len(f"{x}: "):] if e.message.startswith(f"{x}: ") else e.message
            report.add(x, "xml", f"{msg} (skipped)")
            report.images_total += 1
            report.images_skipped += 1
    if not roots:
        raise DataError(f"none of the {len(xml_files)} .xml files parses ({report.problems[0]})", path=ann_dir)
    return roots


def _image_of(xml_path: Path, root: ET.Element, images_dir: Path,
              report: ValidationReport) -> tuple[Path, float, float] | None:
    """(image file, width, height) of one xml — the ``<size>`` when it agrees with the file, the file's
    own when ``<size>`` is missing or zero — or None (reported): no image inside ``images_dir``, an
    unreadable one, or another size."""
    img_path = _find_image(images_dir, xml_path, _text(root, "filename"))
    if img_path is None:
        name = _text(root, "filename")
        why = "is " + OUTSIDE.format(what="images folder", root=images_dir) if name and within(images_dir, name) is None \
            else f"not found in {images_dir} (skipped)"
        report.add(xml_path, "filename", f"image {name!r} {why}")
        return None
    size = root.find("size")
    w, h = _number(size, "width"), _number(size, "height")
    real, why = _real_size(img_path)
    if real is None:
        report.add(img_path, "image", f"{why} (skipped)")
        return None
    if not w or not h or not (math.isfinite(w) and math.isfinite(h)) or w <= 0 or h <= 0:
        return img_path, real[0], real[1]  # a missing or zero <size>: the image's own
    if (int(w), int(h)) != real:
        report.add(xml_path, "size", f"<size> says {w:g}x{h:g} but {img_path.name} is {real[0]}x{real[1]} (skipped)")
        return None
    return img_path, w, h


def _relative(img_path: Path, images_dir: Path) -> str:
    """The json's file_name of an image found inside ``images_dir``: its name there, or (an absolute
    or ``..`` <filename> that still lands inside) the resolved path relative to the resolved folder."""
    try:
        rel = img_path.relative_to(images_dir)
        if ".." not in rel.parts:
            return rel.as_posix()
    except ValueError:
        pass
    return Path(os.path.relpath(real(img_path), real(images_dir))).as_posix()


def _real_size(img_path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((width, height) of the decoded image file, None), or (None, why it is unusable)."""
    from flowdet.core.imread import ImageReadError, image_size, read_image

    try:
        image_size(img_path)  # cheap refusals first (not a file, over the cap, truncated)
        img = read_image(img_path)  # then decode: a header over garbage pixels is not a usable image
        return (img.shape[1], img.shape[0]), None
    except ImageReadError as e:
        return None, e.reason


def _object_to_ann(obj: ET.Element, xml_path: Path, where: str, cat_of: dict[str, int], w: float, h: float,
                   report: ValidationReport) -> dict[str, Any] | None:
    name = _text(obj, "name")
    if name not in cat_of:
        report.add(xml_path, f"{where}.name", f"class {name!r} not in the labels (dropped)")
        report.boxes_dropped += 1
        return None
    bb = obj.find("bndbox")
    coords = [_number(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
    if any(c is None or not math.isfinite(c) for c in coords):
        report.add(xml_path, f"{where}.bndbox", f"missing or not finite: {coords} (dropped)")
        report.boxes_dropped += 1
        return None
    xmin, ymin, xmax, ymax = coords  # type: ignore[misc]
    # 1-based inclusive pixels → continuous COCO corners.
    x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        report.add(xml_path, f"{where}.bndbox", f"empty box {coords} (dropped)")
        report.boxes_dropped += 1
        return None
    cx1, cy1, cx2, cy2 = min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)
    if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
        report.add(xml_path, f"{where}.bndbox", f"entirely outside the {w:g}x{h:g} image (dropped)")
        report.boxes_dropped += 1
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        report.add(xml_path, f"{where}.bndbox", f"sticks out of the {w:g}x{h:g} image (clipped)")
        report.boxes_clipped += 1
    difficult = _text(obj, "difficult") in ("1", "true", "True")
    bw, bh = cx2 - cx1, cy2 - cy1
    return {"category_id": cat_of[name], "bbox": [cx1, cy1, bw, bh], "area": bw * bh, "iscrowd": 0,
            "difficult": int(difficult)}


def write_voc_xml(path: Path, file_name: str, width: int, height: int,
                  objects: list[tuple[str, list[float], bool]]) -> None:
    """One VOC xml; ``objects`` = [(name, COCO xywh, difficult)] (inverse of the convention above)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = file_name
    size = ET.SubElement(root, "size")
    for tag, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(v)
    for name, (x, y, w, h), difficult in objects:
        o = ET.SubElement(root, "object")
        ET.SubElement(o, "name").text = name
        ET.SubElement(o, "difficult").text = "1" if difficult else "0"
        bb = ET.SubElement(o, "bndbox")
        for tag, v in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(bb, tag).text = repr(float(v))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
