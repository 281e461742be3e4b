"""`flowdet train`, `flowdet eval`, `flowdet predict` — parsing only (see flowdet.detect.*)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from flowdet.commands import (
    BATCH,
    EPOCHS,
    SEED,
    THREADS,
    HelpDefaults,
    Number,
    backend_options,
    config_options,
    overrides_from,
    relaunch_on_gpus,
)
from flowdet.devices import DEVICE_HELP
from flowdet.models.sizes import MODEL_SIZES


def _detect_defaults():
    from flowdet.detect.recipes import load_detect_config

    return load_detect_config(None, [])[0]  # the dataclass defaults with the nano recipe


_d = HelpDefaults(_detect_defaults)
_MODEL_HELP = "A checkpoint (.pt) or an exported model (.onnx / OpenVINO .xml / .engine); --ckpt and --model are the same."


@click.command("train")
@click.option("--data", "data", type=click.Path(),
              help="Training set (data.train): COCO json, YOLO data.yaml (its val split validates), VOC "
                   "folder or YOLO folder export with classes.txt; converted once, cached (default: none, "
                   "required unless --config or --resume gives it).")
@click.option("--images", type=click.Path(file_okay=False), help="Training image folder (data.images; default: next to the json, or recorded by the conversion).")
@click.option("--val", type=click.Path(), help="Validation set, any format --data takes (data.val; default: a data.yaml's "
                                                "val split, else none: no evaluation, best.pt = last epoch).")
@click.option("--val-images", type=click.Path(file_okay=False), help="Validation image folder (default: --images, or next to the val json).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder: last.pt, best.pt, metrics.csv, loss.png; a used one becomes <out>2, …" + _d("out"))
@click.option("--size", type=click.Choice(("auto", *MODEL_SIZES)),
              help="Model size; auto = nano-d (or the --backbone's size)" + _d("model.size"))
@click.option("--epochs", type=EPOCHS, help="Epochs" + _d("train.epochs"))
@click.option("--batch", type=BATCH, help="Total batch over all processes" + _d("train.batch"))
@click.option("--lr", type=Number(0, 10), help="Learning rate; 0 = 0.01 up to batch 64, then linear" + _d("train.lr"))
@click.option("--img-size", help="Input size: 640 (square) or 960x544 (W×H), multiples of 32; auto = the frames' "
                                "aspect at the model's pixel budget (832x480 on 16:9 with nano-d)" + _d("train.img_size"))
@click.option("--p2", is_flag=True, default=None, help="Add a stride-4 level for objects under ~8 px (model.p2; default: off).")
@click.option("--iou-loss", type=click.Choice(["iou", "giou", "ciou"]), help="Box loss" + _d("train.iou_loss"))
@click.option("--backbone", type=click.Path(dir_okay=False), help="Pretrained backbone.pt from `flowdet pretrain`, or a detector's best.pt to fine-tune "
                   "from (its backbone weights; model.backbone; default: none).")
@click.option("--unlabeled", multiple=True, type=click.Path(),
              help="Unlabeled frames for teacher–student training: image folder, mined-frame folder / manifest.jsonl, "
                   ".txt list, COCO json (images only) or video; repeatable (semi.unlabeled, default: none = supervised only).")
@click.option("--pseudo", multiple=True, type=click.Path(),
              help="`flowdet pseudo-label` output (its folder or pseudo.json): its images, boxes and ignore regions "
                   "join the training set; repeatable (data.pseudo, default: none).")
@click.option("--exclude", multiple=True, type=click.Path(),
              help="Val/test set (COCO json, folder, list) that no --unlabeled frame or --pseudo image may be: an "
                   "identical or near-duplicate picture stops the run (semi.exclude, default: none; repeatable).")
@click.option("--resume", is_flag=False, flag_value="auto", default=None, metavar="[PATH]",
              help="Continue exactly from a checkpoint (alone: <out>/last.pt). Without --config the "
                   "checkpoint's own config is used (default: off, a new run).")
@click.option("--device", help=DEVICE_HELP + _d("train.device"))
@click.option("--exist-ok", is_flag=True,
              help="Write into --out even if it holds a run (default: a used folder becomes <out>2, <out>3, …).")
@click.option("--eval-interval", type=Number(1, integer=True), help="Evaluate every N epochs" + _d("train.eval_interval"))
@click.option("--workers", type=Number(0, 256, integer=True), help="DataLoader workers per process" + _d("train.workers"))
@click.option("--seed", type=SEED, help="Random seed" + _d("train.seed"))
@config_options
def train(data, images, val, val_images, out, size, epochs, batch, lr, img_size, p2, iou_loss, backbone, unlabeled,
          pseudo, exclude, resume, device, exist_ok, eval_interval, workers, seed, config, sets) -> None:
    """Fine-tune a YOLOX detector on a COCO dataset.

    \b
    flowdet train --data train.json --images imgs/ --val val.json --out runs/x --size nano
    flowdet train --data data.yaml --size nano --epochs 50   # YOLO data.yaml: its val split validates
    flowdet train --resume runs/x/last.pt          # continue an interrupted run exactly
    flowdet train --data train.json --val val.json --unlabeled frames/ --unlabeled river.mp4 --exclude val.json
    flowdet train --data data.yaml --pseudo runs/pseudo   # + `flowdet pseudo-label`'s images and boxes
    flowdet cfg train                              # every config key, its default and help
    flowdet train ... --device 0,1                 # DDP: relaunches itself under torchrun, a process per GPU
    torchrun --nproc_per_node 2 -m flowdet train ... --device cpu   # DDP by hand (gloo on CPU)
    """
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig, validate

    overrides = overrides_from(
        sets, data=("data.train", data), images=("data.images", images), val=("data.val", val),
        val_images=("data.val_images", val_images), out=("out", out), size=("model.size", size), p2=("model.p2", p2),
        epochs=("train.epochs", epochs), batch=("train.batch", batch), lr=("train.lr", lr), img_size=("train.img_size", img_size),
        iou_loss=("train.iou_loss", iou_loss), backbone=("model.backbone", backbone), device=("train.device", device),
        eval_interval=("train.eval_interval", eval_interval), workers=("train.workers", workers),
        seed=("train.seed", seed), unlabeled=("semi.unlabeled", list(unlabeled) if unlabeled else None),
        pseudo=("data.pseudo", list(pseudo) if pseudo else None),
        exclude=("semi.exclude", list(exclude) if exclude else None))
    if resume is not None:
        path = _resume_file(resume, out, config, overrides)
        overrides.append(f"train.resume={path}")
        if config is None:
            from flowdet.detect.train import resume_config

            cfg = resume_config(path, overrides)
        else:
            cfg = load_config(DetectConfig, config, overrides)
    else:
        from flowdet.detect.recipes import load_detect_config

        cfg, recipe = load_detect_config(config, overrides)
        origin = f"recipe '{recipe}' (no --config)" if recipe else (f"config {config}" if config else "defaults")
    validate(cfg)
    relaunch_on_gpus(cfg.train.device)  # --device 0,1: the same command under torchrun, its exit code
    if resume is None:
        cfg = _new_run_dir(cfg, exist_ok)
    from flowdet.detect.train import train as run_train

    summary = run_train(cfg, origin=origin if resume is None else f"resumed from {cfg.train.resume}")
    if summary.get("best") and os.environ.get("RANK", "0") == "0":
        _train_closing(cfg, summary)


def _train_closing(cfg, summary: dict) -> None:
    """best.pt's score, the run's files and the eval / export commands that follow."""
    from flowdet.closing import run_files, say_done

    best = summary["best"]  # its scores: the trainer's closing table
    val = cfg.data.val_source()
    ann = val[0] if val else "VAL.json"
    say_done(summary["run_dir"], run_files(summary["run_dir"]), [
        f"flowdet eval --model {best} --ann {ann} --out runs/eval",
        f"flowdet export --ckpt {best} --out {Path(summary['run_dir']) / 'model.onnx'}"])


def _new_run_dir(cfg, exist_ok: bool):
    """A used run folder becomes <out>2, <out>3, … (ultralytics), said in one line at start.

    One process claims the folder atomically (two runs started at once get two folders). Under
    torchrun every rank decides here, before init_process_group (a rendezvous of all ranks), so
    none claims: rank 0 creates the folder only after it, so all ranks agree on the name."""
    import dataclasses

    from flowdet import log
    from flowdet.engine.launch import inside_torchrun
    from flowdet.runs import increment_path

    run_dir = increment_path(cfg.out, exist_ok, claim=not inside_torchrun())
    if str(run_dir) != str(cfg.out):
        log.info(f"{cfg.out} holds an earlier run: this run goes to {run_dir} (--exist-ok to reuse {cfg.out})")
        cfg = dataclasses.replace(cfg, out=str(run_dir))
    return cfg  # the trainer's start line names the folder either way


def _resume_file(resume: str, out: str | None, config: str | None, overrides: list[str]) -> Path:
    if resume != "auto":
        return Path(resume)
    if out is None and config is not None:
        from flowdet.config import load_config
        from flowdet.detect.config import DetectConfig

        out = load_config(DetectConfig, config, overrides).out
    if out is None:
        raise click.UsageError("--resume without a PATH needs --out (or --config) to find last.pt")
    return Path(out) / "last.pt"


@click.command("eval")
@click.option("--ckpt", "--model", "model", required=True, type=click.Path(dir_okay=False), help=_MODEL_HELP)
@click.option("--ann", required=True, type=click.Path(),
              help="Ground truth: COCO json, YOLO data.yaml (its val split), VOC folder or YOLO folder export.")
@click.option("--images", type=click.Path(file_okay=False), help="Image folder (default: next to --ann).")
@click.option("--img-size", help="Input size for .pt, 640 or 960x544 (W×H) (default: the training size); "
                                "an exported model's size is fixed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the detections here.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Write detections.json, metrics.json, pr_curve.png, prf_curve.png; a used folder becomes "
                   "<out>2, <out>3, … unless --exist-ok (default: none, print only).")
@click.option("--exist-ok", is_flag=True, help="Write into --out even if it holds earlier results.")
@click.option("--batch", type=BATCH, default=8, show_default=True)
@click.option("--conf", type=Number(0, 1), default=0.001, show_default=True, help="Score threshold (YOLOX test: 0.001).")
@click.option("--iou", type=Number(0, 1), default=0.65, show_default=True, help="NMS IoU threshold.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + "; an .onnx uses the CUDA provider.")
@click.option("--threads", type=THREADS, help="CPU threads for ONNX Runtime / OpenVINO.")
@click.option("--dont-care", type=click.Choice(["iscrowd", "training"]), default="iscrowd", show_default=True,
              help="Ground-truth boxes scored as don't-care regions: iscrowd (as pycocotools) or training "
                   "(also those marked ignore / difficult, which training treats as ignore regions).")
@backend_options
def evaluate(model, ann, images, img_size, json_path, out, exist_ok, batch, conf, iou, device, threads, dont_care,
             backend, precision) -> None:
    """COCO metrics (AP, AP50, APs…, AR@100/300/1000) of a checkpoint or an ONNX model."""
    from flowdet.detect.evaluate import evaluate as run_eval
    from flowdet.runtime.predict.predictor import load_predictor

    _check_model_path(model)
    pred = load_predictor(model, img_size=img_size, device=device, threads=threads, backend=backend,
                          precision=precision)
    if out is not None:
        out = _fresh_out(out, exist_ok)
    stats = run_eval(pred, ann, images, batch=batch, conf=conf, iou=iou, out_dir=out, json_path=json_path,
                     dont_care=dont_care)
    _eval_closing(model, stats, out)


def _eval_closing(model: str, stats: dict, out: str | None) -> None:
    """The files eval wrote and the next command: export a checkpoint, or predict at the best-F1 threshold."""
    from flowdet.closing import say_done

    conf = stats.get("best_f1_conf")
    nxt = ([f"flowdet export --ckpt {model} --out {Path(model).with_suffix('.onnx')}"] if Path(model).suffix in
           (".pt", ".pth") else [f"flowdet predict IMAGES/ --model {model}" + (f" --conf {conf:.3f}" if conf else "")])
    notes = [] if stats.get("best_f1", 1) else [
        "the model matched no label: check that --ann holds the classes it was trained on, or train it longer"]
    if "paths" in stats:
        names = [Path(p).name if out and Path(p).parent == Path(out) else p for p in stats["paths"].values()]
        say_done(out, names, nxt, notes)
    else:
        say_done(None, ["nothing (--out DIR keeps metrics.json and the curves)"], nxt, notes)


@click.command("predict")
@click.argument("source", type=click.Path())
@click.option("--model", "--ckpt", "model", required=True, type=click.Path(dir_okay=False), help=_MODEL_HELP)
@click.option("--out", default="runs/predict", show_default=True, type=click.Path(file_okay=False),
              help="Output folder; a used one becomes <out>2, <out>3, … unless --exist-ok.")
@click.option("--exist-ok", is_flag=True, help="Write into --out even if it holds earlier results.")
@click.option("--conf", type=Number(0, 1), default=None,
              help="Score threshold (default: the best-F1 threshold the model stores from training's evaluation, "
                   "else 0.25).")
@click.option("--iou", type=Number(0, 1), default=0.65, show_default=True, help="NMS IoU threshold.")
@click.option("--img-size", help="Input size for .pt, 640 or 960x544 (W×H) (default: the training size); "
                                "an exported model's size is fixed.")
@click.option("--batch", type=BATCH, default=1, show_default=True)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + "; an .onnx uses the CUDA provider.")
@click.option("--threads", type=THREADS, help="CPU threads for ONNX Runtime / OpenVINO.")
@backend_options
@click.option("--no-draw", is_flag=True, help="Skip the annotated images (json outputs only).")
@click.option("--recursive", is_flag=True, help="A folder SOURCE: its sub-folders too.")
@click.option("--ann", type=click.Path(dir_okay=False),
              help="COCO json of these images: results.json uses its image ids (score against your own labels).")
@click.option("--save-txt", is_flag=True, help="Also write labels/<stem>.txt in YOLO format (class cx cy w h conf).")
def predict(source, model, out, exist_ok, conf, iou, img_size, batch, device, threads, backend, precision, no_draw,
            recursive, ann, save_txt) -> None:
    """Detect objects in an image, a glob ("frames/*.jpg") or a folder: annotated images, results.json,
    detections.jsonl. A video: use `flowdet stream`."""
    from flowdet.detect.predict import predict_source, refuse_video
    from flowdet.runtime.predict.predictor import load_predictor

    refuse_video(source, model)  # before any folder exists or any line says where results go
    _check_model_path(model)
    pred = load_predictor(model, img_size=img_size, device=device, threads=threads, backend=backend,
                          precision=precision)
    out = _fresh_out(out, exist_ok)
    from flowdet.runtime.predict.predictor import resolve_conf

    conf = resolve_conf(pred, conf)  # none given: the model's best-F1 threshold, said in the start line
    summary = predict_source(pred, source, out, conf=conf, iou=iou, batch=batch, draw=not no_draw,
                             recursive=recursive, ann=ann, save_txt=save_txt)
    _predict_closing(model, pred, summary, conf, draw=not no_draw, save_txt=save_txt)


def _predict_closing(model: str, pred, summary: dict, conf: float, draw: bool, save_txt: bool) -> None:
    """One summary line, the files written and what to do next (a lower --conf when nothing was found)."""
    from flowdet.closing import say_done

    skipped = f" ({summary['skipped']} unreadable, skipped)" if summary["skipped"] else ""
    n, k = summary["images"], summary["detections"]
    click.echo(f"{n} image{'' if n == 1 else 's'}{skipped}, {k} detection{'' if k == 1 else 's'} at conf ≥ {conf:g}")
    names = ["results.json", "detections.jsonl"]
    if draw:
        names.append(f"{summary['images']} annotated images")
    if save_txt:
        names.append("labels/")
    notes = []
    if not summary["detections"]:
        from flowdet.runtime.predict.predictor import nothing_found_hint

        notes.append(f"no detections at conf ≥ {conf:g}: {nothing_found_hint(pred, conf, model)}")
    say_done(summary["out"], names, [f"flowdet eval --model {model} --ann VAL.json --out runs/eval   "
                                     "# score the model against your labels"], notes)


def _fresh_out(out: str, exist_ok: bool) -> str:
    """The one run-folder rule of train / predict / eval (flowdet.runs): a used folder becomes
    <out>2, …, so a new result never mixes with or replaces an old one."""
    from flowdet import log
    from flowdet.runs import increment_path, is_used

    new = increment_path(out, exist_ok)
    if str(new) != str(out):
        log.info(f"{out} holds earlier results: writing to {new} (--exist-ok to write into {out})")
    elif is_used(new):
        log.warn(f"{new} holds earlier results; files this run does not rewrite stay beside the new ones")
    return str(new)


def _check_model_path(path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise click.ClickException(f"{p}: model file not found")
    if p.suffix not in (".pt", ".pth", ".onnx", ".engine", ".xml"):
        raise click.ClickException(f"{p}: unknown model type '{p.suffix}' (expected .pt, .onnx, .xml or .engine)")
