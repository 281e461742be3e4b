"""`flowdet pseudo-label` — parsing only (see flowdet.pseudo.label)."""
from __future__ import annotations

from pathlib import Path

import click

from flowdet import log
from flowdet.devices import DEVICE_HELP
from flowdet.pseudo.track_filter import FilterConfig

_F = FilterConfig()


@click.command("pseudo-label")
@click.argument("sources", nargs=-1, required=True)
@click.option("--model", "--ckpt", "model", required=True, type=click.Path(dir_okay=False),
              help="The teacher: a flowdet checkpoint (.pt) or an exported model (.onnx / .xml / .engine).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder (pseudo.json, summary.json, images/); a used one becomes <out>2, … unless --exist-ok.")
@click.option("--exist-ok", is_flag=True, help="Write into --out even if it holds earlier results.")
@click.option("--conf", type=click.FloatRange(0, 1), default=_F.conf, show_default=True,
              help="Trusted score: the 'before' threshold scored, what a folder without time order keeps, and the "
                   "tracker's high threshold (tracks start at conf + 0.1).")
@click.option("--low", type=click.FloatRange(0, 1), default=_F.low, show_default=True,
              help="Floor of the teacher's boxes: what the tracker sees (its second stage carries a confirmed "
                   "track on low-score boxes; those are kept).")
@click.option("--ignore-above", type=click.FloatRange(0, 1), default=_F.ignore_above, show_default=True,
              help="A box no confirmed track carries, at or above this score, becomes an ignore region (iscrowd 1); "
                   "0.25 = what flowdet predict / stream show by default.")
@click.option("--max-gap", type=click.IntRange(0), default=_F.max_gap, show_default=True,
              help="Fill a confirmed track's gaps of up to this many source frames with interpolated boxes "
                   "(source 'gap'); 0 = no fill.")
@click.option("--smooth", type=click.IntRange(0), default=_F.smooth, show_default=True,
              help="Average a track's box (centre, size) with its boxes up to this many frames before and after "
                   "(in symmetric pairs); 0 = the teacher's boxes as they are.")
@click.option("--sequence", is_flag=True,
              help="Image folders are consecutive frames in name order: track them (default: no time order, no track filter).")
@click.option("--stride", type=click.IntRange(1), default=1, show_default=True,
              help="Label every Nth frame of each source (the tracker takes the gap as its frame step).")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="At most this many frames per source.")
@click.option("--tta", type=click.Choice(["none", "flip"]), default="none", show_default=True,
              help="Test-time augmentation: flip = also the mirrored frame, boxes merged (2x the inference).")
@click.option("--tiles", type=click.IntRange(32), default=None,
              help="Also tiles of this side in frame pixels, merged with the full frame (small objects at full size).")
@click.option("--overlap", type=click.FloatRange(0, 0.95), default=0.2, show_default=True, help="Tile overlap fraction.")
@click.option("--merge", type=click.Choice(["nms", "wbf"]), default="nms", show_default=True,
              help="How flip / tile views merge: nms keeps the best box; wbf averages an object's boxes by score "
                   "(steadier boxes, but its Python loop is slow on thousands of boxes per frame).")
@click.option("--img-size", help="Input size of a .pt teacher, e.g. 1280 or 1280x736 (W×H) (default: its training "
                                 "size); an exported model's is fixed.")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True, help="Frames per teacher call.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + "; an .onnx uses the CUDA provider.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for ONNX Runtime.")
@click.option("--score-against", type=click.Path(dir_okay=False), default=None,
              help="Labels of (some of) these frames, COCO json (a video's as video.mp4#000123): precision / recall "
                   "of the pseudo-boxes at IoU 0.5 before and after the track filter.")
def pseudo_label(sources, model, out, exist_ok, conf, low, ignore_above, max_gap, smooth, sequence, stride, max_frames, tta,
                 tiles, overlap, merge, img_size, batch, device, threads, score_against) -> None:
    """Pseudo-labels from unlabeled SOURCES with a TEACHER model, filtered by flowdet's tracker.

    SOURCES: videos, image folders, mined-frame folders (their manifest.jsonl from `flowdet mine`),
    COCO .json files (their images). Videos and mined frames are tracked: boxes that confirmed tracks
    carry are kept (their score kept), short gaps of a track are filled, other boxes >= --ignore-above
    become ignore regions. An image folder has no time order unless --sequence: its boxes >= --conf
    are kept as detected.

    \b
    flowdet pseudo-label --model teacher.pt river.mp4 mined/ --out runs/pseudo --tta flip
    flowdet train --data data.yaml --pseudo runs/pseudo ...   # the labels + these frames
    """
    from flowdet.pseudo.label import load_teacher, open_sources
    from flowdet.pseudo.label import pseudo_label as run
    from flowdet.pseudo.score import format_score

    if not Path(model).is_file():
        raise click.ClickException(f"{model}: model file not found")
    cfg = FilterConfig(conf=conf, low=low, ignore_above=ignore_above, max_gap=max_gap, smooth=smooth)
    cfg.validate()   # a bad threshold, source or labels file is one line before the teacher loads
    inputs = open_sources(list(sources), sequence, score_against)
    teacher = load_teacher(model, img_size=img_size, device=device, threads=threads, tta=tta, tiles=tiles,
                           overlap=overlap, merge=merge)
    info = {"model": str(model), "tta": tta, "tiles": tiles, "overlap": overlap if tiles else None,
            "merge": merge if tiles or tta != "none" else None, "img_size": list(teacher.img_size)}
    s = run(teacher, inputs, out, cfg, stride=stride, max_frames=max_frames, exist_ok=exist_ok, batch=batch,
            teacher_info=info)
    t = s["totals"]
    click.echo(f"{t['frames']} frames from {len(s['sources'])} source(s): kept {t['kept']} boxes ({t['tracks']} "
               f"confirmed tracks), filled {t['filled']}, ignore regions {t['ignored']} ({s['seconds']:.0f} s)")
    if "score" in s:
        for line in format_score(s["score"], conf):
            click.echo(line)
    if t["skipped"]:
        log.warn(f"skipped {t['skipped']} unreadable frame(s)")
    _pseudo_closing(Path(s["out_dir"]))


def _pseudo_closing(out_dir: Path) -> None:
    """What the folder holds and how a training run uses it (the labels stay the user's: DATA)."""
    from flowdet.closing import run_files, say_done

    say_done(out_dir, run_files(out_dir),
             (f"flowdet train --data DATA --pseudo {out_dir} --out runs/student   # your labels + these frames",
              f"flowdet train --data {out_dir / 'pseudo.json'} --out runs/pseudo-only"),
             notes=("frames that are also --val images make its val score transductive; --exclude VAL.json "
                    "refuses them",))
