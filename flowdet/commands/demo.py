"""`flowdet demo` (parsing only; the pipeline is flowdet.demo.pipeline.run_demo)."""
from __future__ import annotations

import click

from flowdet.commands import SEED


@click.command(context_settings={"show_default": True})
@click.option("--out", default="runs/demo", type=click.Path(file_okay=False), help="Output folder (report.md inside).")
@click.option("--quick", is_flag=True, help="The ~2-minute variant: fewer images, fewer epochs.")
@click.option("--method", type=click.Choice(["self-emd", "patch-contrast", "center-loss"]), default="self-emd",
              help="Self-supervised pretraining method for the backbone.")
@click.option("--seed", type=SEED, default=0, help="Seed of the synthetic data and of training.")
@click.option("--device", default="auto", help="auto | cpu | cuda.")
@click.option("--force", is_flag=True, help="Overwrite an existing run in --out instead of resuming it.")
def demo(out: str, quick: bool, method: str, seed: int, device: str, force: bool) -> None:
    """Run the whole pipeline on synthetic FloW-like data and write a report.

    \b
    Stages: synthesize → mine → pretrain → train → eval → export → stream → report.
    Re-running into the same --out resumes after the last finished stage.
    Example:  flowdet demo --out runs/demo --quick
    """
    from flowdet.demo.pipeline import run_demo

    run_demo(out, quick=quick, method=method, seed=seed, force=force, device=device)
