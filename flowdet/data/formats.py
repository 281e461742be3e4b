"""Any dataset a user has → the COCO json flowdet reads: a YOLO data.yaml, a YOLO folder export
(classes.txt / obj.names), a VOC folder, or a COCO json (as is).

Converted once and cached: the json lands in the user's cache (``$XDG_CACHE_HOME/flowdet/``, else
``~/.cache/flowdet/``; never the dataset's own folder, which may be read-only or shared), keyed by the
source's path, split and a fingerprint of its label and image files
(names, sizes, mtimes), so an edited label or an added image means a new conversion and an
unchanged dataset none.
Every command that reads a dataset goes through :func:`load_dataset` / :func:`resolve_dataset`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flowdet import log
from flowdet.data.coco import load_coco
from flowdet.data.records import CocoDataset
from flowdet.errors import DataError

_LABEL_EXTS = {".txt", ".xml", ".yaml", ".yml", ".names"}
_VOC_ANN, _VOC_IMG = ("Annotations", "annotations", "xml"), ("JPEGImages", "images", "Images")


def describe_source(path: str | Path) -> str:
    """"coco" | "yolo-yaml" | "yolo-folder" | "voc" — what :func:`resolve_dataset` would read."""
    p = Path(path)
    if p.is_dir():
        if (p / "classes.txt").is_file() or (p / "obj.names").is_file():
            return "yolo-folder"
        if _voc_dirs(p) is not None:
            return "voc"
        raise DataError("a folder given as a dataset must be a VOC folder (Annotations/*.xml + JPEGImages/) "
                        "or a YOLO export with classes.txt", path=p)
    if p.suffix.lower() in (".yaml", ".yml"):
        return "yolo-yaml"
    return "coco"


def _voc_dirs(p: Path) -> tuple[Path, Path] | None:
    ann = next((p / a for a in _VOC_ANN if (p / a).is_dir() and any((p / a).rglob("*.xml"))), None)
    if ann is None:
        return (p, p) if any(p.glob("*.xml")) else None  # xml files beside the images
    img = next((p / i for i in _VOC_IMG if (p / i).is_dir()), p)
    return ann, img


def _fingerprint(root: Path, extra: Path) -> str:
    """Names, sizes and mtimes of every file a conversion reads: labels *and* images (a background
    image added later has no label file, and must still land in the converted json)."""
    from flowdet.core.media import IMAGE_EXTS

    h = hashlib.sha1()
    for f in sorted([*root.rglob("*"), extra]):
        if f.suffix.lower() in (_LABEL_EXTS | set(IMAGE_EXTS)) and f.is_file() and ".flowdet" not in f.parts:
            st = f.stat()
            h.update(f"{f.relative_to(root) if f.is_relative_to(root) else f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def _cache_file(src: Path, split: str, root: Path) -> Path:
    key = hashlib.sha1(f"{src.resolve()}|{split}".encode()).hexdigest()[:8]
    name = f"{src.stem or src.name}_{split}_{key}_{_fingerprint(root, src)}.json"
    return cache_dir() / name


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/flowdet`` (else ``~/.cache/flowdet``), made when missing; a home without a
    writable cache falls back to the system temp folder (one per user)."""
    import tempfile

    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flowdet"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="flowdet-cache-"))  # private (0700); converted again next run


def resolve_dataset(path: str | Path, split: str = "train") -> Path:
    """A COCO json for ``path``: the file itself, or its cached conversion (made when missing).

    ``split`` picks the yaml's split (train/val/test); folders have one set and ignore it. The
    converted json records its images root (``info.images_dir``), so no ``--images`` is needed."""
    return resolve_with_root(path, split)[0]


def resolve_with_root(path: str | Path, split: str = "train") -> tuple[Path, Path | None]:
    """(:func:`resolve_dataset`'s json, the images root its file_names are relative to — the
    dataset root the user named — or None for a COCO json, whose root comes from the json)."""
    from flowdet.paths import remember_root
    from flowdet.utils import atomic_write_json

    p = Path(path)
    kind = describe_source(p)
    if kind == "coco":
        return p, None
    if not p.exists():
        raise DataError("dataset not found", path=p)
    if kind == "yolo-yaml":
        from flowdet.data.yolo import _load_data_yaml, dataset_root

        data = _load_data_yaml(p)
        root = dataset_root(p, data)
        if split not in data:
            raise DataError(f"no '{split}' split (has: {', '.join(k for k in ('train', 'val', 'test') if k in data)})",
                            path=p)
    elif kind == "voc":
        root, split = _voc_dirs(p)[1], "all"  # type: ignore[index]
    else:
        root, split = p, "all"
    root = root.resolve()
    cache = _cache_file(p, split, p.resolve() if kind == "voc" else root)
    if cache.is_file():
        log.info(f"{p}: {kind} dataset → {cache} (cached conversion)")
        return cache, root
    if kind == "yolo-yaml":
        from flowdet.data.yolo import yolo_to_coco

        coco, _, report = yolo_to_coco(p, split)
    elif kind == "yolo-folder":
        from flowdet.data.yolo import yolo_folder_to_coco

        coco, _, report = yolo_folder_to_coco(p)
    else:
        from flowdet.data.voc import voc_to_coco

        ann, img = _voc_dirs(p)  # type: ignore[misc]
        coco, report = voc_to_coco(ann, img)
    # what the conversion left out travels with it: `data check` and training report it on every
    # later (cached) load too, not only the first time (:func:`_with_conversion_problems`)
    coco.setdefault("info", {})["conversion"] = {
        "problems": [[p.file, p.field, p.message] for p in report.problems], "images_skipped": report.images_skipped,
        "boxes_dropped": report.boxes_dropped, "boxes_in_skipped_images": report.boxes_in_skipped_images}
    atomic_write_json(cache, coco)
    remember_root(cache, root)
    problems = f", {len(report.problems)} problem(s) skipped (`flowdet data check {p}` lists them)" \
        if report.problems else ""
    log.info(f"{p}: {kind} dataset{'' if split == 'all' else ' split ' + split} converted once → {cache} "
             f"({len(coco['images'])} images, {len(coco['annotations'])} boxes{problems})")
    return cache, root


def load_dataset(path: str | Path, images_dir: str | Path | None = None, split: str = "train",
                 **kwargs) -> CocoDataset:
    """:func:`flowdet.data.coco.load_coco` for any format :func:`resolve_dataset` reads."""
    ann, root = resolve_with_root(path, split)
    ds = load_coco(ann, images_dir if images_dir is not None else root, **kwargs)
    return _with_conversion_problems(ds) if root is not None else ds


def _with_conversion_problems(ds: CocoDataset) -> CocoDataset:
    """The report of a converted dataset with what its conversion skipped (a label file naming an
    unknown class, an unreadable image): before, a cached conversion loaded as problem-free."""
    from flowdet.data.validation import Problem

    conv = ds.info.get("conversion") if isinstance(ds.info, dict) else None
    if not isinstance(conv, dict) or not conv.get("problems"):
        return ds
    try:
        skipped, dropped = int(conv.get("images_skipped", 0)), int(conv.get("boxes_dropped", 0))
        in_skipped = int(conv.get("boxes_in_skipped_images", 0))
    except (TypeError, ValueError):  # an edited cache file: its own load report stands
        return ds
    r = ds.report
    r.problems[:0] = [Problem(*map(str, p)) for p in conv["problems"] if isinstance(p, list) and len(p) == 3]
    r.images_total += skipped
    r.images_skipped += skipped
    r.boxes_total += dropped + in_skipped
    r.boxes_dropped += dropped
    r.boxes_in_skipped_images += in_skipped
    return ds


def has_split(path: str | Path, split: str) -> bool:
    """Whether a YOLO data.yaml names ``split`` (train falls back to its val split for validation)."""
    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml") or not p.is_file():
        return False
    from flowdet.data.yolo import _load_data_yaml

    return bool(_load_data_yaml(p).get(split))
