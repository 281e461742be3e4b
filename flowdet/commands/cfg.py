"""`flowdet cfg train|pretrain` — every config key with its default and help (parsing only)."""
from __future__ import annotations

import click

from flowdet.models.sizes import MODEL_SIZES
from flowdet.pretrain.registry import method_names

_METHODS = list(method_names())  # every registered method (flowdet/pretrain/methods/), no import of one


@click.command("cfg")
@click.argument("stage", type=click.Choice(["train", "pretrain"]))
@click.option("--size", type=click.Choice(list(MODEL_SIZES)), default="nano", show_default=True,
              help="train: the size whose recipe fills the defaults (what `flowdet train --size X` starts from).")
@click.option("--method", type=click.Choice(_METHODS), default="self-emd", show_default=True,
              help="pretrain: the method whose preset (configs/pretrain_<method>.yaml) fills the defaults.")
def cfg(stage: str, size: str, method: str) -> None:
    """Print every config key of a stage with its default and help, as a YAML you can edit and pass
    back with --config (like ultralytics' `yolo cfg`).

    \b
    flowdet cfg train --size nano > my_train.yaml
    flowdet train --config my_train.yaml --set train.epochs=50
    """
    from flowdet.cfgdoc import as_yaml

    if stage == "train":
        from flowdet.detect.recipes import load_detect_config

        config, _ = load_detect_config(None, [f"model.size={size}"])
        head = f"# flowdet train defaults for --size {size} (recipe applied); override with --set key=value"
    else:
        from flowdet.pretrain.config import method_defaults

        config = method_defaults(method)
        head = f"# flowdet pretrain defaults for --method {method}; override with --set key=value"
    click.echo(head + "\n" + as_yaml(config), nl=False)
