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

from collections.abc import Callable
from typing import Any

import click


class HelpDefaults:
    """``_d("train.epochs")`` → ``" (train.epochs, default: 300)"`` for a flag's help, so ``--help``
    states every default from the config the command really starts from (never a copy of it).

    ``base`` builds that config on first use (help strings are made when the command module is
    imported, i.e. only when that verb runs). ``variants`` (name → config) add where a preset differs:
    ``" (train.epochs, default: 10; with --method: self-emd 50, byol 50)"``."""

    def __init__(self, base: Callable[[], Any], variants: Callable[[], dict[str, Any]] | None = None,
                 variant_flag: str = "") -> None:
        self._build_base, self._build_variants, self.variant_flag = base, variants, variant_flag
        self._base: Any = None
        self._variants: dict[str, Any] | None = None

    def __call__(self, key: str) -> str:
        from flowdet.cfgdoc import default_of

        if self._base is None:
            self._base = self._build_base()
        value = default_of(self._base, key)
        text = f"{key}, default: {_shown(value)}"
        if self._build_variants is not None:
            if self._variants is None:
                self._variants = self._build_variants()
            differ = [f"{name} {_shown(default_of(c, key))}" for name, c in self._variants.items()
                      if default_of(c, key) != value]
            if differ:
                text += f"; with {self.variant_flag}: " + ", ".join(differ)
        return f" ({text})"


def relaunch_on_gpus(device: str) -> None:
    """``--device 0,1`` in a single process: run this same command under torchrun (one process per
    GPU) and exit with its exit code; returns at once for one device, cpu/auto, or inside torchrun.

    Call it once the config is resolved and checked (a bad flag is one line here, not one per
    worker) and before anything is written (each worker decides the run folder itself)."""
    import sys

    from flowdet.engine.launch import ddp_devices, relaunch

    ids = ddp_devices(device)
    if ids is None:
        return
    argv = (click.get_current_context().find_root().obj or {}).get("argv")
    if argv is None:  # called through click directly, not flowdet.cli.main: the command line is unknown
        raise click.UsageError(f"--device {device}: run it as `torchrun --nproc_per_node {len(ids)} -m flowdet ...`")
    sys.exit(relaunch(argv, ids, device))


class Checked(click.ParamType):
    """A flag type that runs one of :mod:`flowdet.core.validate`'s checks (``check(value, flag)``), so a
    flag and the stage's own check (``--set`` values, the Python API) are the same rule and one line."""

    def __init__(self, check: Callable[[Any, str], Any], name: str = "number") -> None:
        self.check, self.name = check, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from flowdet.errors import InputError

        if isinstance(value, str) and len(value) > 64:  # int() of > 4300 digits is a ValueError traceback
            self.fail(f"{value[:20]}…: not a number of a sane size ({len(value)} characters)", param, ctx)
        try:
            return self.check(value, "")
        except InputError as e:
            self.fail(e.message, param, ctx)


def Number(lo: float | None = None, hi: float | None = None, *, integer: bool = False,  # noqa: N802
           lo_open: bool = False, hi_open: bool = False) -> Checked:
    """Every numeric flag's type: a finite number in a range (:func:`flowdet.core.validate.number_in`).

    click's ``float`` / ``FloatRange`` let ``nan`` through (every comparison with it is false:
    ``--fps nan`` silently meant "off") and ``inf`` / ``1e300`` (a sampler stepping by 1/fps never
    advanced: a hang). ``Number(0, 1)`` → [0, 1]; ``lo_open`` / ``hi_open`` leave that end out;
    ``integer`` → an int."""
    from flowdet.core.validate import number_in

    def check(value: Any, flag: str) -> Any:
        return number_in(value, flag, lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)

    return Checked(check, "integer" if integer else "float")


def _validator(name: str) -> Callable[[Any, str], Any]:
    def check(value: Any, flag: str) -> Any:
        from flowdet.core import validate

        return getattr(validate, name)(value, flag)
    return check


BATCH = Checked(_validator("batch"), "integer")
THREADS = Checked(_validator("threads"), "integer")  # at most the CPUs of this process
EPOCHS = Checked(_validator("epochs"), "integer")
SEED = Checked(_validator("seed"), "integer")  # numpy's range: a negative seed was a traceback
FPS = Checked(_validator("fps"), "float")


def _shown(v: Any) -> str:
    return "none" if v in ("", [], ()) else _yaml_scalar(v)


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
