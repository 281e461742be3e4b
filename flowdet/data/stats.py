"""Dataset statistics: counts, boxes per image, COCO size buckets native and after letterbox.

Size buckets follow COCO (box area in pixels): small < 32², medium < 96², large otherwise. The
"resized" numbers apply the letterbox of flowdet.core.letterbox to each image: ``r = min(S/h, S/w)``
for ``img_size`` S, so areas scale by r². This is the number that matters for a detector: at 640
input a 1920×1080 dataset that is "mostly medium" natively becomes mostly small.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.data.formats import load_dataset
from flowdet.data.records import CocoDataset

SMALL, MEDIUM = 32.0 ** 2, 96.0 ** 2


def _buckets(area: np.ndarray) -> dict[str, Any]:
    n = int(area.size)
    small, medium = int((area < SMALL).sum()), int(((area >= SMALL) & (area < MEDIUM)).sum())
    side = np.sqrt(area)
    return {"small": small, "medium": medium, "large": n - small - medium,
            "small_share": small / n if n else 0.0, "medium_share": medium / n if n else 0.0,
            "large_share": (n - small - medium) / n if n else 0.0,
            "sqrt_area_median": float(np.median(side)) if n else 0.0,
            "sqrt_area_p10": float(np.percentile(side, 10)) if n else 0.0,
            "sqrt_area_p90": float(np.percentile(side, 90)) if n else 0.0}


def letterbox_ratio(width: int, height: int, img_size: int | tuple[int, int]) -> float:
    th, tw = (img_size, img_size) if isinstance(img_size, int) else img_size
    return min(th / height, tw / width)


def dataset_stats(ann_path: str | Path, images_dir: str | Path | None = None, img_size: int | tuple[int, int] = 640,
                  out_dir: str | Path | None = None, dataset: CocoDataset | None = None) -> dict[str, Any]:
    """Statistics of a COCO dataset as a json-able dict; with ``out_dir`` also writes
    ``stats.json`` and ``box_sizes.png`` (sqrt(area) histograms, native vs letterboxed) there.

    Images are decoded once to check them (sizes come from the json); pass an already loaded
    ``dataset`` to skip reading. Keys: images, images_without_boxes, boxes, ignored_boxes,
    classes {name: count}, boxes_per_image {mean, median, max}, native {small, medium, large,
    *_share, sqrt_area_*}, resized (same, at img_size), img_size, histogram_png (path or None),
    problems (validation problem count).
    """
    # decoded (not just headers): an image that does not decode must not be counted as fine
    ds = dataset if dataset is not None else load_dataset(ann_path, images_dir, check_images=True)
    per_image = np.array([len(r.boxes) for r in ds.records], dtype=np.int64)
    boxes = [r.boxes.astype(np.float64) for r in ds.records]
    ratios = [letterbox_ratio(r.width, r.height, img_size) for r in ds.records]
    area = np.concatenate([(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in boxes]) if boxes else np.zeros(0)
    area_resized = np.concatenate([(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) * r * r
                                   for b, r in zip(boxes, ratios)]) if boxes else np.zeros(0)
    classes = np.concatenate([r.classes for r in ds.records]) if ds.records else np.zeros(0, np.int64)
    stats: dict[str, Any] = {
        "annotations": str(ann_path), "images": len(ds.records),
        "images_without_boxes": int((per_image == 0).sum()),
        "boxes": int(per_image.sum()),
        "ignored_boxes": int(sum(int(r.ignore.sum()) for r in ds.records)),
        "classes": {name: int((classes == i).sum()) for i, name in enumerate(ds.names)},
        "boxes_per_image": {"mean": float(per_image.mean()) if per_image.size else 0.0,
                            "median": float(np.median(per_image)) if per_image.size else 0.0,
                            "max": int(per_image.max()) if per_image.size else 0},
        "image_sizes": _image_sizes(ds),
        "native": _buckets(area), "resized": _buckets(area_resized),
        "img_size": list(img_size) if isinstance(img_size, tuple) else [img_size, img_size],
        "problems": len(ds.report.problems), "histogram_png": None,
    }
    if out_dir is not None:
        from flowdet.core import validate
        from flowdet.utils import atomic_write_json

        out = validate.writable_dir(out_dir)
        stats["histogram_png"] = str(plot_size_histogram(np.sqrt(area), np.sqrt(area_resized), stats["img_size"],
                                                         out / "box_sizes.png", title=Path(ann_path).name))
        atomic_write_json(out / "stats.json", stats, indent=2)
    return stats


def _image_sizes(ds: CocoDataset) -> dict[str, int]:
    """The most common image sizes, "WxH" → count (at most 5)."""
    sizes: dict[str, int] = {}
    for r in ds.records:
        key = f"{r.width}x{r.height}"
        sizes[key] = sizes.get(key, 0) + 1
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5])


def plot_size_histogram(native: np.ndarray, resized: np.ndarray, img_size: list[int], path: Path,
                        title: str = "") -> Path:
    """Histogram of sqrt(box area) in pixels, native vs letterboxed, with the COCO bucket edges."""
    from flowdet.utils import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")  # files only; never a GUI backend
    plt = require("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    top = max(float(native.max()) if native.size else 1.0, 150.0)  # keeps both bucket edges in view
    bins = np.logspace(0, np.log10(top * 1.05), 50)
    ax.hist(native, bins=bins, alpha=0.6, label=f"native (n={native.size})")
    ax.hist(resized, bins=bins, alpha=0.6, label=f"letterboxed to {img_size[1]}x{img_size[0]}")
    for edge, name in ((32, "small|medium"), (96, "medium|large")):
        ax.axvline(edge, color="k", ls="--", lw=1)
        ax.text(edge, ax.get_ylim()[1] * 0.95, f" {name}", fontsize=8, va="top")
    ax.set_xscale("log")
    ax.set_xlabel("sqrt(box area) [px]")
    ax.set_ylabel("boxes")
    ax.set_title(f"Box sizes {title}".strip())
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
