"""``flowdet pseudo-label``: a teacher over unlabeled frames → ``DIR/pseudo.json`` (+ ``summary.json``).

Per source (:mod:`flowdet.pseudo.sources`), the teacher (:func:`load_teacher`: any flowdet checkpoint
or exported model, optionally with a horizontal flip and tiles + full frame) detects on every frame at
the filter's floor (``low``); an ordered source then goes through :func:`flowdet.pseudo.track_filter.track_filter`,
an unordered one through :func:`~flowdet.pseudo.track_filter.untracked`.

Written under ``DIR`` (a used ``DIR`` becomes ``DIR2``, … unless ``exist_ok``: a run never lands in an
earlier run's results):

- ``images/<source>/`` — a video's frames as JPEG (quality 95, as ``flowdet mine``); an existing image
  file is hard-linked (a copy where the file system refuses links), never re-encoded;
- ``pseudo.json`` — COCO: ``images`` (+ ``source``, ``frame``), ``annotations`` with ``score``,
  ``track_id`` (null when none), ``source`` ("track" / "gap" / "detection") and ``iscrowd: 1`` on ignore
  regions; ``categories`` the teacher's. ``flowdet train --data LABELED --pseudo DIR`` adds it to a labeled set
  (flowdet.detect.train_pseudo), ``flowdet train --data DIR/pseudo.json`` trains on it alone;
- ``summary.json`` — the teacher and thresholds, per source frames / boxes kept, filled, ignored /
  tracks, and the score against held-back labels when asked.

Only per-frame detections are held in memory (the filter needs a source's whole sequence), never frames.
Torch-free except a ``.pt`` teacher (through :func:`flowdet.runtime.predict.predictor.load_predictor`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet import log
from flowdet.core.boxes import clip_xyxy
from flowdet.core.detections import Detections
from flowdet.errors import DataError, InputError
from flowdet.pseudo.sources import FrameSeq, SeqFrame, check_sources, expand_sources
from flowdet.pseudo.track_filter import DETECTION, GAP, TRACK, FilterConfig, PseudoBoxes, track_filter, untracked
from flowdet.runtime.predict.predictor import Predictor

JPEG_QUALITY = 95   # as flowdet mine: frames written once, trained on many times
NMS_IOU = 0.65      # the teacher's NMS (flowdet predict / stream default)


def load_teacher(model: str | Path, img_size: int | str | None = None, device: str = "auto",
                 threads: int | None = None, tta: str = "none", tiles: int | None = None, overlap: float = 0.2,
                 merge: str = "nms") -> Predictor:
    """The teacher: ``load_predictor`` (``img_size``: a larger input for a .pt; an exported model's is
    fixed), then ``tta="flip"`` (:class:`flowdet.runtime.predict.tta.FlipPredictor`) and ``tiles`` (tiles of that
    side + the full frame, :class:`flowdet.runtime.predict.tiles.TiledPredictor`) around it."""
    from flowdet.runtime.predict.predictor import load_predictor

    if tta not in ("none", "flip"):
        raise InputError(f"--tta {tta}: choose none or flip", field="--tta")
    pred: Any = load_predictor(str(model), img_size=img_size, device=device, threads=threads)
    if tta == "flip":
        from flowdet.runtime.predict.tta import FlipPredictor

        pred = FlipPredictor(pred, merge=merge)
    if tiles:
        from flowdet.runtime.predict.tiles import TiledPredictor

        try:
            pred = TiledPredictor(pred, int(tiles), overlap=overlap, merge=merge)
        except ValueError as e:
            raise InputError(str(e), field="--tiles") from None
    return pred


@dataclass
class Inputs:
    """What :func:`open_sources` checked: the sequences, and the labels to score against (or None)."""

    seqs: list[FrameSeq]
    scorer: Any = None


def open_sources(sources: list[str | Path], sequence: bool = False,
                 score_against: str | Path | None = None) -> Inputs:
    """SOURCES (and ``score_against``) → checked :class:`Inputs` (:mod:`flowdet.pseudo.sources`). Called before
    the teacher loads, so a bad source or labels of other images is one line at once."""
    if not sources:
        raise InputError("give at least one SOURCE (a video, an image folder, a mined-frame folder or a COCO .json)")
    seqs = expand_sources(list(sources), sequence=sequence)
    check_sources(seqs)
    scorer = None
    if score_against is not None:
        from flowdet.pseudo.score import PseudoScorer

        scorer = PseudoScorer(score_against)
        if not any(scorer.covers(_identities(s)) for s in seqs):
            raise DataError("none of its images is among the sources' frames (matched by file path, or by video "
                            "and frame number)", path=score_against)
    return Inputs(seqs, scorer)


def pseudo_label(teacher: Predictor, sources: list[str | Path] | Inputs, out: str | Path,
                 cfg: FilterConfig | None = None, *,
                 sequence: bool = False, stride: int = 1, max_frames: int | None = None,
                 score_against: str | Path | None = None, exist_ok: bool = False, batch: int = 8,
                 teacher_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Label ``sources`` (paths, or what :func:`open_sources` checked; its labels then win over
    ``score_against``) with ``teacher`` into ``out`` (see the module docstring); → the summary dict
    (also ``summary.json``), with ``out_dir``, ``pseudo_json`` and, with ``score_against``, ``score``."""
    from flowdet.runs import increment_path

    cfg = cfg or FilterConfig()
    cfg.validate()
    if stride < 1 or batch < 1 or (max_frames is not None and max_frames < 1):
        raise InputError("--stride, --batch and --max-frames must be >= 1")
    inputs = sources if isinstance(sources, Inputs) else open_sources(list(sources), sequence, score_against)
    seqs, scorer = inputs.seqs, inputs.scorer
    if scorer is not None:
        scorer.bind(list(teacher.names))
    out_dir = increment_path(out, exist_ok)
    if Path(out_dir) != Path(out):
        log.info(f"{out} holds earlier results: writing to {out_dir} (--exist-ok to write into {out})")
    from flowdet.core.validate import writable_dir

    (writable_dir(out_dir) / "images").mkdir(exist_ok=True)   # a folder that cannot be written: one line, now

    cat_ids = list(getattr(teacher, "cat_ids", None) or range(1, len(teacher.names) + 1))
    writer = _CocoWriter(cat_ids)
    rows, t0 = [], time.perf_counter()
    for seq in seqs:
        if not seq.ordered:
            log.info(f"{seq.label}: no time order (an image folder or a COCO json's images): the teacher's boxes "
                     f">= {cfg.conf} without the track filter" + (" (--sequence tracks a folder's images in "
                                                                   "name order)" if seq.kind == "images" else ""))
        rows.append(_label_source(teacher, seq, out_dir / "images", cfg, writer, scorer, stride, max_frames, batch))
        r = rows[-1]
        log.info(f"{seq.label}: {r['frames']} frames, {r['detections']} teacher boxes >= {cfg.conf} → kept "
                 f"{r['kept']}" + (f" on {r['tracks']} tracks, filled {r['filled']}" if seq.ordered else "")
                 + f", ignore regions {r['ignored']}")
    if not writer.images:
        raise DataError("no frame could be read", path=", ".join(s.label for s in seqs))

    summary: dict[str, Any] = {
        "out_dir": str(out_dir), "pseudo_json": str(out_dir / "pseudo.json"), "teacher": teacher_info or {},
        "thresholds": vars(cfg), "tracker": vars(cfg.tracker()), "stride": stride, "max_frames": max_frames,
        "sources": rows, "seconds": round(time.perf_counter() - t0, 1),
        "totals": {k: sum(r[k] for r in rows) for k in ("frames", "skipped", "detections", "kept", "filled",
                                                        "ignored", "tracks")}}
    if scorer is not None:
        summary["score"] = scorer.result()
    from flowdet.utils import atomic_write_json

    info = {"description": "flowdet pseudo-labels", "images_dir": "images", "teacher": teacher_info or {},
            "thresholds": vars(cfg)}
    atomic_write_json(out_dir / "pseudo.json", writer.coco(info, list(teacher.names)))
    atomic_write_json(out_dir / "summary.json", summary, indent=1)
    return summary


def _identities(seq: FrameSeq) -> list[tuple[str, int | None]]:
    """Frame identities a source may have, without reading it (a video: (path, None) = any of its frames)."""
    if seq.kind == "video":
        return [(str(seq.path.resolve()), None)]
    if seq.kind == "manifest":
        return [k for r in seq.records for k in ((str(Path(r["path"]).resolve()), None), (str(r["source"]), r["frame"]))]
    return [(str(f.resolve()), None) for f in seq.files]


def _label_source(teacher: Predictor, seq: FrameSeq, images_root: Path, cfg: FilterConfig, writer: _CocoWriter,
                  scorer: Any, stride: int, max_frames: int | None, batch: int) -> dict[str, Any]:
    folder = images_root / seq.slug
    folder.mkdir(parents=True, exist_ok=True)
    frames: list[tuple[int, tuple, Detections, int, tuple[int, int]]] = []  # (index, keys, dets, image id, (w, h))
    chunk: list[SeqFrame] = []

    def run(chunk: list[SeqFrame]) -> None:
        for fr, det in zip(chunk, teacher.predict([f.image for f in chunk], conf=cfg.low, iou=NMS_IOU)):
            h, w = fr.image.shape[:2]
            _store(fr, folder)
            image_id = writer.add_image(f"{seq.slug}/{fr.name}", w, h, seq.label, fr.index)
            frames.append((fr.index, fr.keys, det, image_id, (w, h)))   # not the pixels

    for fr in seq.frames(stride, max_frames):
        chunk.append(fr)
        if len(chunk) == batch:
            run(chunk)
            chunk = []
    if chunk:
        run(chunk)
    if seq.ordered:
        pseudo, n_tracks = track_filter([(index, det, size) for index, _, det, _, size in frames], cfg)
    else:
        pseudo, n_tracks = [untracked(det, cfg) for _, _, det, _, _ in frames], 0
    row = {"source": seq.label, "kind": seq.kind, "ordered": seq.ordered, "images": f"images/{seq.slug}",
           "frames": len(frames), "skipped": len(seq.skipped), "detections": 0, "kept": 0, "filled": 0,
           "ignored": 0, "tracks": n_tracks, "labelled_frames": 0}
    for (_, keys, det, image_id, (w, h)), p in zip(frames, pseudo):
        writer.add_boxes(image_id, p, w, h)
        row["detections"] += int((det.scores >= cfg.conf).sum())
        row["kept"] += int((p.kept() & (p.origin != GAP)).sum())
        row["filled"] += int((p.origin == GAP).sum())
        row["ignored"] += int(p.ignore.sum())
        if scorer is not None:
            row["labelled_frames"] += int(scorer.add(keys, det, p, cfg.conf, tracked=seq.ordered))
    if seq.skipped:
        log.warn(f"{seq.label}: {seq.skipped.summary()}")
    return row


def _store(fr: SeqFrame, folder: Path) -> None:
    """The frame's image under ``folder``: an existing file linked (else copied), a video frame as JPEG.
    Whatever ``--exist-ok`` left at that name goes first: writing through an earlier run's link would
    change the user's own image."""
    dst = folder / fr.name
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if fr.file is not None:
        from flowdet.utils import link_or_copy

        link_or_copy(fr.file, dst)  # a hard link: pseudo.json's images stay inside DIR (flowdet.paths)
        return
    ok, buf = cv2.imencode(".jpg", fr.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DataError(f"JPEG encoding failed for frame {fr.index}", path=dst)
    dst.write_bytes(buf.tobytes())


class _CocoWriter:
    """pseudo.json's lists, filled source by source."""

    def __init__(self, cat_ids: list[int]):
        self.cat_ids = cat_ids
        self.images: list[dict] = []
        self.anns: list[dict] = []

    def add_image(self, file_name: str, width: int, height: int, source: str, frame: int) -> int:
        self.images.append({"id": len(self.images) + 1, "file_name": file_name, "width": int(width),
                            "height": int(height), "source": source, "frame": int(frame)})
        return len(self.images)

    def add_boxes(self, image_id: int, p: PseudoBoxes, width: int, height: int) -> None:
        boxes = clip_xyxy(p.boxes.astype(np.float64), width, height)
        for b, s, c, tid, origin, ign in zip(boxes, p.scores, p.class_ids, p.track_ids, p.origin, p.ignore):
            w, h = round(float(b[2] - b[0]), 2), round(float(b[3] - b[1]), 2)
            if w <= 0 or h <= 0:   # a box clipped away (or under 0.01 px)
                continue
            self.anns.append({"id": len(self.anns) + 1, "image_id": image_id, "category_id": self.cat_ids[int(c)],
                              "bbox": [round(float(b[0]), 2), round(float(b[1]), 2), w, h],
                              "area": round(w * h, 2), "iscrowd": int(bool(ign)), "score": round(float(s), 4),
                              "track_id": int(tid) if tid > 0 else None, "source": str(origin)})

    def coco(self, info: dict, names: list[str]) -> dict[str, Any]:
        cats = [{"id": int(i), "name": n} for i, n in zip(self.cat_ids, names)]
        return {"info": info, "images": self.images, "annotations": self.anns, "categories": cats}


__all__ = ["Inputs", "load_teacher", "open_sources", "pseudo_label", "FilterConfig", "TRACK", "GAP", "DETECTION"]
