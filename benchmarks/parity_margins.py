"""How far a checkpoint's ONNX export is from PyTorch, and how close that is to export's parity
tolerances (flowdet.export.parity): the numbers behind docs/export.md's parity section.

For each checkpoint, fp32 (and with --half fp16) exported without the check, then judged on the
default frames (the checkpoint's own val / train images when present) and on synthetic frames.
Printed per row: the parity line, then the margins — largest box |Δ| relative to the box's side on
anchors scoring >= conf, the same in pixels, and the rule parity used before issue 30 (raw head
units Δcentre/stride, |Δ log size|, on every anchor), also on anchors >= conf only.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/parity_margins.py runs/train/best.pt [--half] [--images 6]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _raw_delta(ref: np.ndarray, got: np.ndarray, strides: list[int], hw: tuple[int, int]) -> np.ndarray:
    """Per-anchor max of Δcentre / stride and |Δ log size| ([B, N]; anchor order of flatten_levels)."""
    h, w = hw
    stride = np.concatenate([np.full((h // s) * (w // s), s, np.float64) for s in strides])[None, :, None]
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    d_ctr = np.abs((got[..., :2] + got[..., 2:]) - (ref[..., :2] + ref[..., 2:])) / 2 / stride
    size = [np.maximum(b[..., 2:] - b[..., :2], 1e-6) for b in (ref, got)]
    return np.maximum(d_ctr.max(-1), np.abs(np.log(size[1]) - np.log(size[0])).max(-1))


def main() -> None:
    import torch

    from flowdet.core.letterbox import preprocess_batch
    from flowdet.detect.io import model_from_checkpoint
    from flowdet.export.onnx_export import export_onnx
    from flowdet.export.parity import PARITY_CONF, judge
    from flowdet.export.parity_data import ParityFrames, checkpoint_frames, synthetic_images
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--half", action="store_true", help="also judge an fp16 export")
    ap.add_argument("--images", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="parity_margins_"))
    for ckpt in args.ckpts:
        model, meta = model_from_checkpoint(ckpt)
        model = model.float().eval().fuse()
        own = checkpoint_frames(ckpt, meta.get("config"), args.images, print)
        sets = [own] if own.kind == "synthetic" else [own, ParityFrames(synthetic_images(args.images), "synthetic",
                                                                        "forced for comparison")]
        for precision in ("fp32", "fp16") if args.half else ("fp32",):
            path = tmp / f"{Path(ckpt).stem}.{precision}.onnx"
            export_onnx(ckpt, path, half=precision == "fp16", parity=False, log=lambda m: None)
            pred = OnnxPredictor(path, providers="cpu", spinning=False)
            for frames in sets:
                batch, ratios = preprocess_batch(frames.images, pred.img_size)
                with torch.no_grad():
                    rb, rs = zip(*(model.predict(torch.from_numpy(batch[i:i + 1])) for i in range(len(batch))))
                rb, rs = torch.cat(rb).numpy(), torch.cat(rs).numpy()
                ob, os_ = pred.infer(batch)
                rep = judge(rb, rs, ob, os_, ratios, [im.shape[:2] for im in frames.images], precision,
                            names=frames.names, source=frames.kind, origin=frames.origin)
                seen = (rs.max(-1) >= PARITY_CONF) | (os_.max(-1) >= PARITY_CONF)
                d = np.abs(ob[seen].astype(np.float64) - rb[seen])
                side = np.abs(rb[seen][:, 2:] - rb[seen][:, :2])
                rel = d / np.maximum(np.concatenate([side, side], 1), 1e-9)
                raw = _raw_delta(rb, ob, model.strides, tuple(batch.shape[2:]))
                print(f"{ckpt} [{precision}] {rep.line()}")
                print(f"    anchors >= {PARITY_CONF:g}: {int(seen.sum())}, box |Δ| max {d.max(initial=0):.3g} px, "
                      f"max |Δ|/side {rel.max(initial=0):.3g} (boxes >= 8 px: "
                      f"{rel[np.concatenate([side, side], 1) >= 8].max(initial=0):.3g}); "
                      f"old rule (raw, all anchors) {raw.max():.3g}, raw on anchors >= {PARITY_CONF:g} "
                      f"{raw[seen].max(initial=0):.3g}; all-anchor box |Δ| max {np.abs(ob - rb).max():.3g} px")


if __name__ == "__main__":
    main()
