"""flowdet: unlabeled river video to an edge small-object detector.

The Python API reads like the CLI (flowdet.api)::

    from flowdet import Detector, train
    summary = train(data="splits/train.json", val="splits/val.json", epochs=100)
    results = Detector.load(summary["best"]).predict("frames/")
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Detector", "Results", "train", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): `import flowdet` stays instant and torch-free; the API loads on first use.
    if name in ("Detector", "Results", "train"):
        from flowdet import api

        return getattr(api, name)
    raise AttributeError(f"module 'flowdet' has no attribute {name!r}")
