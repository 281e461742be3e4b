"""Click commands, one module per stage group. Parsing only: each calls its stage's Python API.

Shared conventions (keep them the same everywhere):
- config-backed commands take ``--config FILE`` and repeatable ``--set section.key=value``; explicit
  flags are sugar that become the same overrides (see ``config_options``/``overrides_from``);
- stages raise :mod:`flowdet.errors` (``flowdet/cli.py`` prints one line and exits with the error's
  ``exit_code``, 2 by default); a command itself raises ``click.UsageError`` / ``click.ClickException``
  only for what is about its own flags (exit 2, one line, no traceback);
- messages to the user go through :mod:`flowdet.log` (stderr, ``-q``/``-v``); results go to stdout;
- nothing here imports torch at module level.
"""
from __future__ import annotations

from typing import Any, Callable

import click


def config_options(f: Callable) -> Callable:
    f = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override any config key, e.g. --set train.epochs=3 (repeatable).")(f)
    f = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                     help="YAML config (a file, or a preset name under configs/).")(f)
    return f


BACKEND_HELP = "Runtime: onnxruntime, or openvino (the same .onnx or its IR .xml; pip install 'flowdet[openvino]')."
PRECISION_HELP = "OpenVINO inference precision: fp32, or bf16 where the CPU has it [default: fp32 / the model's]."


def backend_options(f):
    """``--backend`` / ``--precision``, the same on predict, eval and stream."""
    f = click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None, help=PRECISION_HELP)(f)
    return click.option("--backend", type=click.Choice(["onnxruntime", "openvino"]), default=None,
                        help=BACKEND_HELP + " [default: onnxruntime for .onnx, openvino for .xml]")(f)


def overrides_from(sets: tuple[str, ...], **flag_to_key: tuple[str, Any]) -> list[str]:
    """Explicit flags first (only those given), then --set, so --set wins on conflict.

    ``flag_to_key`` maps a flag name to (config key, value or None when not given)."""
    out = [f"{key}={_yaml_scalar(val)}" for key, val in flag_to_key.values() if val is not None]
    return out + list(sets)


def _yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    return str(v)
