"""`flowdet efficiency` — parsing only (see flowdet.experiments.efficiency)."""
from __future__ import annotations

import click

from flowdet.commands import BATCH, EPOCHS, Number
from flowdet.devices import DEVICE_HELP
from flowdet.models.sizes import MODEL_SIZES
from flowdet.pretrain.registry import method_names

_METHODS = list(method_names())  # every registered method (flowdet/pretrain/methods/), no import of one


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: comma-separated integers, e.g. 0,1", param_hint=flag) from None


@click.command("efficiency")
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Labelled training set (COCO json).")
@click.option("--images", type=click.Path(file_okay=False), help="Its image folder (default: images/ next to the json).")
@click.option("--val", required=True, type=click.Path(dir_okay=False),
              help="Validation set (COCO json): every point is scored on it; pretraining and the semi kinds' unlabeled "
                   "frames refuse its images.")
@click.option("--val-images", type=click.Path(file_okay=False), help="Validation image folder (default: --images).")
@click.option("--frames", multiple=True, type=click.Path(),
              help="Pretraining frames: folder, manifest.jsonl, .txt list (repeatable; `flowdet mine` makes them).")
@click.option("--unlabeled", multiple=True, type=click.Path(),
              help="Semi kinds: unlabeled frames besides the training images left out of each subset — image or "
                   "video folder, manifest.jsonl, .txt list or video, as `train --unlabeled` (videos mined once "
                   "into OUT/unlabeled_frames; repeatable).")
@click.option("--transductive", is_flag=True,
              help="Semi kinds: allow --val images among the unlabeled frames (the new-camera protocol; the val "
                   "score is then transductive). Default: refused before any training.")
@click.option("--fractions", default="0.1,0.25,1.0", show_default=True, help="Fractions of the training labels, in (0, 1].")
@click.option("--method", type=click.Choice(_METHODS), default="self-emd", show_default=True, help="Pretraining method.")
@click.option("--seeds", default="0", show_default=True,
              help="Seeds (subset and training), e.g. 0,1: the spread the verdict is judged against.")
@click.option("--kinds", default="scratch,pretrained", show_default=True,
              help="Curves to run now, from scratch, pretrained, semi (scratch + `train --unlabeled` on the rest "
                   "of the training images, labels hidden, + --unlabeled), pretrained+semi; two lanes sharing one "
                   "--out can split them.")
@click.option("--epochs", type=EPOCHS, default=30, show_default=True,
              help="Full-data epochs of iterations per point (a point at fraction f trains epochs / f); a semi "
                   "point trains its scratch point's labeled iterations, its unlabeled frames added to each step.")
@click.option("--pretrain-epochs", type=EPOCHS, default=10, show_default=True, help="Pretraining epochs.")
@click.option("--no-aug-epochs", type=Number(-1, 1_000_000, integer=True), default=-1, show_default=True, help="At the full-data budget; -1 = auto.")
@click.option("--backbone", type=click.Path(dir_okay=False), help="Use this backbone.pt instead of pretraining.")
@click.option("--train-frames/--no-train-frames", default=True, show_default=True,
              help="Also pretrain on the training images (their labels unused).")
@click.option("--exclude", multiple=True, type=click.Path(),
              help="Sets no pretraining or unlabeled frame may be (default: --val).")
@click.option("--size", type=click.Choice(list(MODEL_SIZES)), default="nano-d", show_default=True,
              help="Backbone and detector size (train's auto choice).")
@click.option("--img-size", default="auto", show_default=True,
              help="Detector input: auto (the frames' aspect at the size's pixel budget, as train), 640 or 960x544 (W×H).")
@click.option("--batch", type=BATCH, default=8, show_default=True)
@click.option("--workers", type=Number(0, 256, integer=True), default=0, show_default=True, help="DataLoader workers per training run.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--train-set", multiple=True, metavar="KEY=VALUE", help="Extra --set for every detector run.")
@click.option("--pretrain-set", multiple=True, metavar="KEY=VALUE", help="Extra --set for pretraining.")
@click.option("--out", default="runs/eff", show_default=True, type=click.Path(file_okay=False),
              help="Grid folder: results.json, table.md, verdict.md, efficiency.png; re-running resumes it.")
def efficiency(data, images, val, val_images, frames, unlabeled, transductive, fractions, method, seeds, kinds,
               epochs, pretrain_epochs, no_aug_epochs, backbone, train_frames, exclude, size, img_size, batch, workers,
               device, train_set, pretrain_set, out) -> None:
    """Label efficiency: scratch vs pretrained vs semi-supervised detectors at fractions of the labels, equal iterations.

    \b
    flowdet efficiency --data train.json --images imgs/ --val val.json --frames frames/ \\
        --fractions 0.1,0.25,1.0 --method self-emd --seeds 0,1 --out runs/eff
    flowdet efficiency --data train.json --images imgs/ --val val.json --unlabeled videos/ \\
        --fractions 0.1 --seeds 0,1 --kinds scratch,semi --out runs/eff-semi   # does my video pay?
    Pretrains once (if a pretrained kind is asked), then trains + evaluates every (kind, fraction, seed)
    point with `flowdet train` (semi: `train --unlabeled`) and `flowdet eval`; every kind at one
    (fraction, seed) shares the labeled subset and the labeled iterations. Re-running the same command
    resumes (finished points are not re-run).
    """
    from flowdet.experiments.efficiency import EfficiencySpec, parse_fractions, run_efficiency

    spec = EfficiencySpec(data=data, images=images or "", val=val, val_images=val_images or "", frames=list(frames),
                          unlabeled=list(unlabeled), transductive=transductive,
                          fractions=parse_fractions(fractions), method=method, seeds=_ints(seeds, "--seeds"),
                          kinds=[k.strip() for k in kinds.split(",") if k.strip()], epochs=epochs,
                          no_aug_epochs=no_aug_epochs, pretrain_epochs=pretrain_epochs, backbone=backbone or "",
                          train_images_as_frames=train_frames, exclude=list(exclude) or None, size=size,
                          img_size=img_size, batch=batch, workers=workers, device=device,
                          train_sets=list(train_set), pretrain_sets=list(pretrain_set), out=out)
    r = run_efficiency(spec)
    click.echo(r["table"])
    click.echo(r["verdict"])
    click.echo(f"plot: {r['plot']}")
