"""`flowdet mine` and `flowdet pretrain` — parsing only (see flowdet.mine.miner and flowdet.pretrain.train)."""
from __future__ import annotations

from pathlib import Path

import click

from flowdet import log
from flowdet.commands import BATCH, EPOCHS, FPS, HelpDefaults, Number, config_options, overrides_from, relaunch_on_gpus
from flowdet.devices import DEVICE_HELP
from flowdet.models.sizes import MODEL_SIZES
from flowdet.pretrain.registry import method_names

_METHODS = list(method_names())  # every registered method (flowdet/pretrain/methods/), no import of one


def _no_method_defaults():
    from flowdet.config import load_config
    from flowdet.pretrain.config import PretrainConfig

    return load_config(PretrainConfig, None, [])  # no --method, no --config: the dataclass defaults


def _method_defaults() -> dict:
    from flowdet.pretrain.config import method_defaults

    return {m: method_defaults(m) for m in _METHODS}


# --help states each default, and where a --method preset changes it, the preset's value
_d = HelpDefaults(_no_method_defaults, _method_defaults, "--method")


@click.command("mine")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder (frames/ + manifest.jsonl).")
@click.option("--every", type=Number(1, integer=True), default=None, help="Keep every N-th decoded frame.")
@click.option("--fps", type=FPS, default=None, help="Keep F frames per second of video time (instead of --every).")
@click.option("--max-frames", type=Number(1, integer=True), default=None, help="At most M kept frames per video / folder.")
@click.option("--dedupe", type=Number(0, 1, hi_open=True), default=0.01, show_default=True,
              help="Drop a frame whose 32×18 grayscale thumbnail differs from the last kept one by at most "
                   "this mean absolute difference (0–1); 0 keeps every sampled frame.")
@click.option("--quality", type=Number(1, 100, integer=True), default=95, show_default=True, help="JPEG quality.")
@click.option("--exist-ok", is_flag=True, help="Add to an --out mined with other --every/--fps/--dedupe.")
@click.option("--workers", type=Number(1, 256, integer=True), default=1, show_default=True,
              help="Decode this many videos at once, one per process (same manifest as 1 worker).")
def mine(sources, out, every, fps, max_frames, dedupe, quality, exist_ok, workers) -> None:
    """Extract de-duplicated frames from videos (mp4/avi/mov/mkv) or image folders.

    \b
    flowdet mine river.mp4 more_videos/ --out frames/ --fps 2 --workers 4
    Re-running continues where it stopped (frames already in manifest.jsonl are skipped);
    an unreadable or truncated video is reported and the others continue.
    """
    from flowdet.mine.miner import mine as run_mine

    s = run_mine(list(sources), out, every=every, fps=fps, max_frames=max_frames, dedupe=dedupe, quality=quality,
                 exist_ok=exist_ok, workers=workers)
    for r in s["sources"]:
        if r["status"] == "error":
            log.info(f"skipped {r['source']}: {r['error']}")
        elif r["status"] == "done-before":
            click.echo(f"{r['source']}: already mined ({r['already']} frames)")
        else:
            extra = f", {r['already']} already held" if r["already"] else ""
            click.echo(f"{r['source']}: decoded {r['read']}, kept {r['kept']}, "
                       f"dropped {r['dropped']} as duplicates{extra}")
            if r.get("warning"):
                log.warn(f"{r['source']}: {r['warning']}")
            if r.get("unreadable"):
                bad = r["unreadable"]
                log.warn(f"{r['source']}: skipped {len(bad)} unreadable image(s): "
                         f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    click.echo(f"kept {s['kept']}, dropped {s['dropped']} (near-duplicates), {s['frames_in_manifest']} frames in "
               f"{s['manifest']} [{s['decoded_per_s']:.0f} frames/s decoded, {s['workers']} worker(s)]")
    if s["errors"] and not any(r["status"] != "error" for r in s["sources"]):
        raise click.ClickException("no source could be read")


@click.command("pretrain")
@click.option("--method", type=click.Choice(_METHODS),
              help="Without --config its preset configs/pretrain_<method>.yaml is the base"
                   " (method.name, default: patch-contrast on the dataclass defaults, no preset).")
@click.option("--frames", multiple=True, type=click.Path(),
              help="Frames: folder, manifest.jsonl, .txt list or COCO json (images only); repeatable" + _d("data.frames"))
@click.option("--exclude", multiple=True, type=click.Path(),
              help="Val/test set (COCO json, folder, list) no frame may be: a frame with the same pixels, or the "
                   "same picture at another size, stops the run (data.exclude, default: none; repeatable).")
@click.option("--drop-excluded", is_flag=True, default=None,
              help="Leave such frames out (with a warning) instead of stopping (data.exclude_action=drop).")
@click.option("--ann", type=click.Path(dir_okay=False), help="center-loss: labelled COCO json" + _d("data.ann"))
@click.option("--images", type=click.Path(file_okay=False),
              help="center-loss: its image folder (data.images, default: next to the json).")
@click.option("--size", type=click.Choice(list(MODEL_SIZES)), help="Backbone size" + _d("model.size"))
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder: backbone.pt, last.pt, metrics.csv; a used one becomes <out>2, …" + _d("train.out"))
@click.option("--epochs", type=EPOCHS, help="Epochs" + _d("train.epochs"))
@click.option("--batch", type=BATCH, help="Frames (images for center-loss) per step and process" + _d("train.batch"))
@click.option("--crop", type=Number(32, 8192, integer=True), help="Network input side of each patch / view, multiple of 32" + _d("method.crop"))
@click.option("--device", help=DEVICE_HELP + _d("train.device"))
@click.option("--resume", is_flag=True, default=False,
              help="Continue exactly from <out>/last.pt (without --config, <out>/config.yaml is the base).")
@click.option("--exist-ok", is_flag=True,
              help="Write into --out even if it holds a run (default: a used folder becomes <out>2, <out>3, …).")
@config_options
def pretrain(method, frames, exclude, drop_excluded, ann, images, size, out, epochs, batch, crop, device, resume, exist_ok, config,
             sets) -> None:
    """Self-supervised (or fg/bg supervised) pretraining of the detector's backbone → backbone.pt.

    \b
    flowdet pretrain --method self-emd --frames frames/ --exclude val.json --size nano --out runs/ssl
    flowdet pretrain --method insloc --frames frames/ --exclude val.json --out runs/insloc
    flowdet pretrain --method patch-contrast --frames frames/ --set method.loss=infonce --out runs/pc
    flowdet pretrain --method center-loss --ann train.json --images imgs/ --out runs/cl
    flowdet train ... --backbone runs/ssl/backbone.pt
    flowdet cfg pretrain --method self-emd         # every config key, its default and help
    flowdet pretrain ... --device 0,1             # DDP: relaunches itself under torchrun, a process per GPU
    """
    from flowdet.config import load_config
    from flowdet.pretrain.config import PretrainConfig, validate

    overrides = overrides_from(
        sets, method=("method.name", method), frames=("data.frames", list(frames) if frames else None),
        exclude=("data.exclude", list(exclude) if exclude else None),
        drop=("data.exclude_action", "drop" if drop_excluded else None),
        ann=("data.ann", ann), images=("data.images", images), size=("model.size", size), out=("train.out", out),
        epochs=("train.epochs", epochs), batch=("train.batch", batch), crop=("method.crop", crop),
        device=("train.device", device), resume=("train.resume", True if resume else None))
    base = config
    if config is None and method is not None and not resume:
        from flowdet.pretrain.config import method_preset

        base = method_preset(method)  # each method's tuned defaults
    if resume and config is None:
        if out is None:
            raise click.UsageError("--resume needs --out (the run folder holding last.pt) or --config")
        saved = Path(out) / "config.yaml"
        if not saved.is_file():
            raise click.ClickException(f"{saved}: not found — nothing to resume in {out}")
        base = str(saved)
    cfg = validate(load_config(PretrainConfig, base, overrides))
    relaunch_on_gpus(cfg.train.device)  # --device 0,1: the same command under torchrun, its exit code
    if not resume:
        import dataclasses

        from flowdet.engine.launch import inside_torchrun
        from flowdet.runs import increment_path

        # One process claims the folder atomically (two runs started at once get two). Every torchrun
        # rank decides here, before init_process_group (a rendezvous of all ranks), so none claims:
        # rank 0 creates the folder only after it, so all ranks agree on the name.
        run_dir = increment_path(cfg.train.out, exist_ok, claim=not inside_torchrun())
        if str(run_dir) != str(cfg.train.out):
            log.info(f"{cfg.train.out} holds an earlier run: this run goes to {run_dir} "
                     f"(--exist-ok to reuse {cfg.train.out})")
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, out=str(run_dir)))
    from flowdet.pretrain.train import pretrain as run_pretrain

    s = run_pretrain(cfg)
    line = f"backbone: {s['backbone']} ({s['method']}, final loss {s['final_loss']:.4f}"
    if "val_acc" in s:
        line += (f", held-out fg/bg accuracy {s['val_acc']:.2%} on {s['val_patches']} patches "
                 f"of {s['images_val']} images")
    click.echo(line + ")")
