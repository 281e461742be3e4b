"""Small torch-free helpers shared by every stage."""
from __future__ import annotations

import importlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from flowdet.errors import MissingDependency

# Which optional extra provides which module: the one-line hint a user sees instead of a traceback.
_EXTRA_OF = {
    "torch": "train", "pycocotools": "train", "onnx": "train", "matplotlib": "train", "scipy": "train",
    "ultralytics": "bench", "tensorrt": "trt", "openvino": "openvino", "nncf": "openvino",
}


class MissingExtra(MissingDependency):
    """What :func:`require` raises: one line naming the pip extra (exit 2 through the CLI)."""


def require(module: str, extra: str | None = None) -> Any:
    """Import ``module`` or raise a one-line error naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = extra or _EXTRA_OF.get(top, "train")
        raise MissingExtra(
            f"this command needs '{top}', which is not installed: pip install 'flowdet[{extra}]'"
        ) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (umask applied)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # "No space left on device" alone does not say which file
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    import json

    atomic_write_text(path, json.dumps(obj, indent=indent))


def save_plot(fig: Any, ax: Any, out: str | Path) -> Path:
    """The tail every line plot shares: light grid, small legend, tight layout, 100 dpi PNG, figure closed
    (an open figure per epoch would leak memory over a long run)."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def link_or_copy(src: str | Path, dst: Path, copy: bool = False) -> None:
    """``dst`` as a hard link to ``src`` (no extra disk; the folder holds the file itself, so reading
    it back stays inside it — a symlink out would be refused by flowdet.paths), else a copy (another
    filesystem, or linking not allowed). An existing ``dst`` is replaced."""
    import shutil

    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if not copy:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def duration(seconds: float) -> str:
    """``42s``, ``12m05s``, ``3h07m``: an ETA a person reads at a glance."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
