"""The speed/accuracy gate for a faster deployment candidate (INT8, OpenVINO bf16): measured
against the onnxruntime fp32 model on a val set and on this CPU, refused when it is not worth it.

AP: both models scored by the same code (:func:`flowdet.detect.evaluate.evaluate`, conf 0.001).
Latency: ``infer`` on the same letterboxed val frame, fp32 and candidate interleaved run by run
(a load change on a shared box hits both), medians. The result and the CPU's VNNI / BF16 / AMX
flags go in the model's metadata (``gate``, ``cpu_flags``) and the log.
"""
from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flowdet import log as _log
from flowdet.errors import FlowdetError

_FLAGS = {"avx2": ("avx2",), "avx512": ("avx512f",), "vnni": ("avx512_vnni", "avx_vnni"),
          "bf16": ("avx512_bf16", "amx_bf16"), "amx": ("amx_tile", "amx_int8", "amx_bf16"),
          "neon": ("asimd", "neon")}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """{"model": …, "avx2", "avx512", "vnni", "bf16", "amx", "neon": bool} from /proc/cpuinfo
    (all False and model = the platform's name where it cannot be read, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return {"model": platform.processor() or platform.machine(), **{k: False for k in _FLAGS}}
    flags: set[str] = set()
    model = platform.machine()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() in ("model name", "Model name") and model == platform.machine():
            model = value.strip()
    return {"model": model, **{k: any(f in flags for f in names) for k, names in _FLAGS.items()}}


def format_flags(flags: dict[str, Any], keys: tuple[str, ...] = ("vnni", "bf16", "amx")) -> str:
    return " ".join(f"{k.upper()}={'yes' if flags.get(k) else 'no'}" for k in keys)


def describe_cpu(flags: dict[str, Any] | None = None) -> str:
    """'<model>, N cores: AVX2=yes AVX512=… VNNI=… BF16=… AMX=…' — printed with every latency table,
    since latency ratios between models depend on the ISA (dense vs depthwise convs, INT8 without VNNI)."""
    import os

    f = flags or cpu_flags()
    return f"{f['model']}, {os.cpu_count()} cores: " + format_flags(f, ("avx2", "avx512", "vnni", "bf16", "amx", "neon"))


@dataclass
class GateResult:
    candidate: str
    ap_fp32: float | None
    ap_candidate: float | None
    ms_fp32: float
    ms_candidate: float
    threads: int | None
    runs: int
    max_ap_drop: float
    min_speedup: float
    cpu: dict[str, Any] = field(default_factory=dict)
    forced: bool = False

    @property
    def ap_drop(self) -> float | None:
        """In AP points (0–100 scale), positive = the candidate is worse."""
        if self.ap_fp32 is None or self.ap_candidate is None:
            return None
        return (self.ap_fp32 - self.ap_candidate) * 100.0

    @property
    def speedup(self) -> float:
        return self.ms_fp32 / self.ms_candidate if self.ms_candidate > 0 else float("inf")

    @property
    def reasons(self) -> list[str]:
        out = []
        if self.ap_drop is not None and self.ap_drop > self.max_ap_drop:
            out.append(f"AP drop {self.ap_drop:.2f} > {self.max_ap_drop:g} points")
        if self.speedup < self.min_speedup:
            out.append(f"speed-up {self.speedup:.2f}x < {self.min_speedup:g}x")
        return out

    @property
    def passed(self) -> bool:
        return not self.reasons

    def line(self) -> str:
        ap = ("AP not measured (no --val)" if self.ap_drop is None else
              f"AP {self.ap_candidate:.4f} vs fp32 {self.ap_fp32:.4f} (drop {self.ap_drop:.2f} points, "
              f"max {self.max_ap_drop:g})")
        thr = f"{self.threads} thread{'s' if self.threads != 1 else ''}" if self.threads else "default threads"
        return (f"{self.candidate}: {ap}; latency {self.ms_candidate:.1f} ms vs fp32 {self.ms_fp32:.1f} ms = "
                f"{self.speedup:.2f}x (min {self.min_speedup:g}x; median of {self.runs} interleaved runs, {thr}; "
                f"CPU {format_flags(self.cpu)})")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(ap_drop_points=self.ap_drop, speedup=round(self.speedup, 3), passed=self.passed,
                 reasons=self.reasons)
        return d


def interleaved_latency(predictors: list[Any], batch: np.ndarray, runs: int = 30, warmup: int = 3) -> list[float]:
    """Median ms of ``infer(batch)`` per predictor, runs interleaved (a, b, a, b, …)."""
    for p in predictors:
        for _ in range(warmup):
            p.infer(batch)
    times: list[list[float]] = [[] for _ in predictors]
    for _ in range(runs):
        for i, p in enumerate(predictors):
            t0 = time.perf_counter()
            p.infer(batch)
            times[i].append((time.perf_counter() - t0) * 1000.0)
    return [float(np.median(t)) for t in times]


def val_ap(predictor: Any, val: str | Path, images: str | Path | None) -> float:
    from flowdet.detect.evaluate import evaluate

    return float(evaluate(predictor, val, images, batch=1, progress=False, verbose=False)["AP"])


def timing_frame(val: str | Path | None, images: str | Path | None, img_size: tuple[int, int]) -> np.ndarray:
    """One letterboxed frame for the latency runs: the first val image, else a synthetic one."""
    from flowdet.core.imread import read_image
    from flowdet.core.letterbox import preprocess_batch
    from flowdet.export.parity import synthetic_images
    from flowdet.paths import within

    img = None
    if val is not None:
        try:
            first = json.loads(Path(val).read_text())["images"][0]["file_name"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            first = None  # the AP run has already said what is wrong with the json
        if first is not None:
            p = Path(val).parent
            root = Path(images) if images else (p / "images" if (p / "images").is_dir() else p)
            path = within(root, first) if isinstance(first, str) else None  # never a file outside root
            img = read_image(path) if path is not None else None
    return preprocess_batch([img if img is not None else synthetic_images(1)[0]], img_size)[0]


def run_gate(fp32: Any, candidate: Any, name: str, val: str | Path | None, images: str | Path | None,
             max_ap_drop: float = 1.0, min_speedup: float = 1.3, threads: int | None = 1, runs: int = 30,
             log: Callable[[str], None] = _log.info) -> GateResult:
    """Measure ``candidate`` against ``fp32`` (two loaded predictors); return the result (not raised)."""
    if tuple(fp32.img_size) != tuple(candidate.img_size):
        raise FlowdetError(f"{name}: input size {candidate.img_size} differs from the fp32 model's {fp32.img_size}")
    ap_ref = ap_cand = None
    if val is not None:
        log(f"gate: scoring fp32 and {name} on {val}")
        ap_ref, ap_cand = val_ap(fp32, val, images), val_ap(candidate, val, images)
    ms_ref, ms_cand = interleaved_latency([fp32, candidate], timing_frame(val, images, fp32.img_size), runs)
    res = GateResult(name, ap_ref, ap_cand, ms_ref, ms_cand, threads, runs, max_ap_drop, min_speedup, cpu_flags())
    log(("gate passed: " if res.passed else "gate refused: ") + res.line())
    return res


def gate_props(res: GateResult) -> dict[str, str]:
    """The metadata entries that record a gate result in the deployed model."""
    return {"gate": json.dumps(res.to_json()), "cpu_flags": json.dumps(res.cpu)}


class GateRefused(FlowdetError):
    """The candidate is not faster or not accurate enough (exit 2 through the CLI, one line)."""
