"""The one `flowdet predict` loop: image or folder → drawings, results json, jsonl.

``predict_source`` works over any :class:`flowdet.runtime.predict.predictor.Predictor` (PyTorch, ONNX,
TensorRT), so `flowdet predict model.onnx` runs on the core, torch-free install. The PyTorch
backend is :class:`flowdet.detect.torch_predictor.TorchPredictor`.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from flowdet import log
from flowdet.core.draw import draw_detections
from flowdet.core.media import IMAGE_EXTS, VIDEO_EXTS
from flowdet.core.postprocess import invalid_message
from flowdet.errors import DataError, InputError
from flowdet.runtime.predict.predictor import Predictor


def list_images(source: str | Path, recursive: bool = False) -> list[Path]:
    """An image file, a glob (``"frames/*.jpg"``, ``"**/*.png"``), or the images of a folder
    (sorted; below it too with ``recursive``)."""
    import glob

    text = str(source)
    if _is_glob(text):
        files = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).suffix.lower() in IMAGE_EXTS)
        if not files:
            raise DataError(f"{text}: the pattern matches no image ({', '.join(IMAGE_EXTS)})")
        return files
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() in VIDEO_EXTS:
            refuse_video(p, "MODEL")
        if p.suffix.lower() not in IMAGE_EXTS:
            raise DataError(f"{p}: not an image ({', '.join(IMAGE_EXTS)})")
        return [p]
    if p.is_dir():
        from flowdet.paths import keep_inside

        found = p.rglob("*") if recursive else p.iterdir()
        files = keep_inside(p, sorted(f for f in found if f.suffix.lower() in IMAGE_EXTS))
        if not files:
            hint = "" if recursive else "; --recursive looks in sub-folders too"
            raise DataError(f"{p}: no images in this folder ({', '.join(IMAGE_EXTS)}){hint}")
        return files
    if p.exists():
        raise DataError("not a regular file or a folder (not opened)", path=p)
    raise DataError(f"{p}: no such file or folder")


def refuse_video(source: str | Path, model: str | Path) -> None:
    """A video file given to predict: refused with the `flowdet stream` command that runs it (its
    ``--out`` is the annotated .mp4, ``--jsonl`` the detections), before anything is written."""
    p = Path(source)
    if p.suffix.lower() in VIDEO_EXTS and p.is_file():
        hint = f"flowdet stream {p} --model {model} --out {p.stem}_annotated.mp4 --jsonl {p.stem}.jsonl"
        raise DataError(f"a video; predict reads images. Run it as a stream: {hint}", path=p)


def _is_glob(source: str | Path) -> bool:
    text = str(source)
    return any(ch in text for ch in "*?[") and not Path(text).exists()


def output_root(source: str | Path) -> Path:
    """The folder outputs mirror: a folder SOURCE itself, a glob's literal leading folders
    (``frames/**/*.jpg`` → ``frames``), an image's own folder. ``sub/a.jpg`` below it is drawn to
    ``OUT/sub/a.jpg`` and labelled in ``OUT/labels/sub/a.txt``, so two ``a.jpg`` in two folders
    never overwrite each other's outputs."""
    if _is_glob(source):
        literal = []
        for part in Path(str(source)).parts:
            if any(ch in part for ch in "*?["):
                break
            literal.append(part)
        return Path(*literal) if literal else Path(".")
    p = Path(source)
    return p if p.is_dir() else p.parent


def _relative(f: Path, root: Path) -> Path:
    try:
        return f.relative_to(root)
    except ValueError:  # a glob reaching out of its literal folder ("a/../b/*.jpg")
        return Path(f.name)


def check_out_outside_source(source: str | Path, out: str | Path, recursive: bool, draw: bool) -> None:
    """Refuse an ``out`` the listing of ``source`` would reach: drawings written there would
    overwrite the images (``out`` = the source folder) or be predicted on by the next run
    (``out`` below a folder walked with ``--recursive`` or a glob with a wildcard folder)."""
    root = output_root(source).resolve()
    dst = Path(out).resolve()
    if dst != root and root not in dst.parents:
        return
    descends = recursive if not _is_glob(source) else ("**" in str(source) or any(
        any(ch in part for ch in "*?[") for part in Path(str(source)).parts[:-1]))
    if dst == root and draw:
        raise InputError(f"is the source folder {root}: the drawings would overwrite the images; choose "
                         "another --out", path=out, field="--out")
    if descends:
        raise InputError(f"is inside the source folder {root}, which this run walks: a rerun would predict on "
                         "this run's drawings; choose an --out outside it", path=out, field="--out")


def _batches(files: list[Path], batch: int, skipped) -> Iterator[list[tuple[Path, np.ndarray]]]:
    """Chunks of readable images; an unreadable one is logged in ``skipped`` (a SkipLog) and left out."""
    from flowdet.core.imread import ImageReadError, read_image

    out = []
    for f in files:
        try:
            img = read_image(f)
        except ImageReadError as e:
            skipped.add(f, e.reason)
            continue
        out.append((f, img))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def _image_ids(files: list[Path], ann: str | Path | None) -> list[int | str]:
    """COCO ids from ``ann`` (matched by file name, so results score against the user's own ground
    truth), else the file stem (an int when numeric, as ultralytics' save_json)."""
    if ann is not None:
        from flowdet.data.coco import image_entries, read_json

        data = read_json(ann)
        by_name: dict[str, int] = {}
        for im in image_entries(data, ann):
            by_name.setdefault(Path(im["file_name"]).name, im["id"])
        missing = [f.name for f in files if f.name not in by_name]
        if missing:
            raise DataError(f"{len(missing)} image(s) not in this json (first: {missing[0]})", path=ann)
        return [by_name[f.name] for f in files]
    return [int(f.stem) if f.stem.isdigit() else f.stem for f in files]


def _yolo_lines(d, w: int, h: int) -> str:
    lines = []
    for (x1, y1, x2, y2), sc, c in zip(d.boxes, d.scores, d.class_ids):
        lines.append(f"{int(c)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                     f"{(y2 - y1) / h:.6f} {float(sc):.4f}")
    return "\n".join(lines) + ("\n" if lines else "")


def predict_source(predictor: Predictor, source: str | Path, out_dir: str | Path, conf: float = 0.25,
                   iou: float = 0.65, batch: int = 1, draw: bool = True, progress: bool = True,
                   recursive: bool = False, ann: str | Path | None = None, save_txt: bool = False) -> dict:
    """Run on an image, a glob or a folder. Writes ``out_dir``/{annotated images, results.json (COCO
    results: image_id from ``ann`` or the file stem, category_id the COCO id, with "file_name"),
    detections.jsonl (one line per image: boxes, scores, class_ids 0-based model indices,
    category_ids as in results.json, names), labels/<path>.txt with ``save_txt`` (YOLO: class cx cy w h conf)}.
    Images keep their path below the source folder (:func:`output_root`); an ``out_dir`` that the
    listing would reach is refused (:func:`check_out_outside_source`).

    An unreadable image (corrupt, truncated, over the pixel cap, not a regular file) is skipped
    with a warning and counted ("skipped" in the summary); detections.jsonl is written line by line
    as images finish, and results.json is written even when the run stops early."""
    import cv2
    from tqdm import tqdm

    from flowdet.core import validate
    from flowdet.core.imread import SkipLog
    from flowdet.utils import atomic_write_json

    validate.predict_args(conf, iou, batch)
    files = list_images(source, recursive)
    id_of = dict(zip(files, _image_ids(files, ann)))
    out = Path(out_dir)
    check_out_outside_source(source, out, recursive, draw)
    root = output_root(source)
    rel_of = {f: _relative(f, root) for f in files}
    validate.writable_dir(out)
    cat_ids = getattr(predictor, "cat_ids", None) or list(range(1, len(predictor.names) + 1))
    results: list[dict] = []
    n_det, done, invalid = 0, 0, 0
    skipped = SkipLog()
    try:
        with (out / "detections.jsonl").open("w", buffering=1) as jf, \
                tqdm(total=len(files), desc="predict", unit="img", disable=None if progress else True) as bar:
            for chunk in _batches(files, batch, skipped):
                dets = predictor.predict([im for _, im in chunk], conf=conf, iou=iou)
                for (f, img), d in zip(chunk, dets):
                    done += 1
                    rel = rel_of[f]
                    for r in d.to_coco(0, cat_ids):  # to_coco wants an int; a file stem may be text
                        results.append({**r, "image_id": id_of[f], "file_name": rel.as_posix()})
                    n_det += len(d)
                    invalid += d.invalid
                    jf.write(json.dumps({
                        "file": str(f), "width": int(img.shape[1]), "height": int(img.shape[0]),
                        "boxes": [[round(float(v), 2) for v in b] for b in d.boxes],
                        "scores": [round(float(s), 4) for s in d.scores],
                        "class_ids": [int(c) for c in d.class_ids],
                        "category_ids": [int(cat_ids[int(c)]) for c in d.class_ids],
                        "names": [predictor.names[int(c)] for c in d.class_ids],
                    }) + "\n")
                    if save_txt:
                        label = (out / "labels" / rel).with_suffix(".txt")
                        label.parent.mkdir(parents=True, exist_ok=True)
                        label.write_text(_yolo_lines(d, img.shape[1], img.shape[0]))
                    if draw:
                        vis = draw_detections(img, d.boxes, d.scores, d.class_ids, predictor.names)
                        (out / rel).parent.mkdir(parents=True, exist_ok=True)
                        if not cv2.imwrite(str(out / rel), vis):
                            raise DataError("cannot write the annotated image (disk full or not writable?)",
                                            path=out / rel)
                bar.update(done + len(skipped) - bar.n)
    except BaseException:
        with contextlib.suppress(OSError):  # what finished stays usable after a crash or Ctrl-C
            atomic_write_json(out / "results.json", results)
        raise
    atomic_write_json(out / "results.json", results)
    if skipped:
        log.warn(skipped.summary())
        if not done:
            raise DataError(f"none of the {len(files)} image(s) could be read ({skipped.summary()})", path=source)
    if invalid:
        log.warn(invalid_message(invalid))
    return {"images": done, "skipped": len(skipped), "detections": n_det, "invalid_outputs": invalid,
            "out": str(out), "results": str(out / "results.json"), "jsonl": str(out / "detections.jsonl")}
