"""`flowdet` command line: parses and dispatches only.

Each verb lives in ``flowdet/commands/<group>.py`` (parsing only) and calls one function of its
stage, which is also the Python API. Commands are imported lazily so ``flowdet --help`` stays fast
and never imports torch; a verb whose extra is missing says which one to install.
"""
from __future__ import annotations

import importlib
import sys

import click

from flowdet import __version__

# verb → (module under flowdet.commands, attribute, one-line help shown by `flowdet --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "mine": ("pretrain", "mine", "Extract de-duplicated frames from unlabeled videos (resumable)."),
    "pretrain": ("pretrain", "pretrain", "Self-supervised backbone pretraining: patch-contrast, center-loss, self-emd, byol, insloc."),
    "efficiency": ("efficiency", "efficiency", "Label efficiency: scratch vs pretrained vs semi-supervised at fractions of the labels (resumable)."),
    "train": ("detect", "train", "Fine-tune a YOLOX detector (CIoU-corrected SimOTA)."),
    "pseudo-label": ("pseudo", "pseudo_label", "Pseudo-labels from unlabeled video with a teacher, filtered by tracks (COCO json)."),
    "eval": ("detect", "evaluate", "COCO metrics (AP, APs/m/l, AR@100/300/1000) for a checkpoint or ONNX model."),
    "predict": ("detect", "predict", "Detect objects in an image or a folder (PyTorch .pt or ONNX .onnx)."),
    "export": ("export", "export", "Export a checkpoint to ONNX (decoded outputs, parity-checked) or TensorRT."),
    "stream": ("export", "stream", "Run an ONNX model on a video file, folder, camera or RTSP/HTTP stream."),
    "counts": ("monitor", "counts", "Counted items per hour/day per camera from a `stream --db` database (table, CSV, SVG)."),
    "serve": ("monitor", "serve", "A dashboard of a `stream --db` database in the browser (counts per hour, health)."),
    "demo": ("demo", "demo", "Run the whole pipeline on synthetic data and write a report."),
    "convert": ("data", "convert", "Convert annotations: VOC → COCO, YOLO → COCO, COCO → YOLO."),
    "data": ("data", "data", "Datasets: stats (sizes, histograms), check (validator), split (train/val by scene)."),
    "cfg": ("cfg", "cfg", "Print every config key of train / pretrain with its default and help (a YAML)."),
    "synth": ("data", "synth", "Generate synthetic FloW-like water scenes (images, COCO json, video)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        mod = importlib.import_module(f"flowdet.commands.{module}")
        return getattr(mod, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="flowdet")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Also debug detail on stderr.")
def cli(quiet: bool = False, verbose: bool = False) -> None:
    """flowdet — unlabeled river video → a small-object debris detector on an edge device.

    \b
    Pipeline:  mine → pretrain → train → eval → export → predict/stream
               (pseudo-label: a teacher's boxes on unlabeled video, for train)
    Try:       flowdet demo --out runs/demo --quick
    Configs:   every config-backed command takes --config FILE and --set section.key=value.
    """
    from flowdet import log

    # Set on every invocation: main() runs many times in one process (tests, notebooks).
    log.set_level(log.QUIET if quiet else log.VERBOSE if verbose else log.NORMAL)


def main(argv: list[str] | None = None) -> None:
    """The ``flowdet`` entry point: the one place where errors become one line and an exit code.

    flowdet's own errors (:class:`flowdet.errors.FlowdetError`, ``ConfigError`` included) exit with
    their ``exit_code`` (2 unless a subclass says otherwise, e.g. a lost stream source: 3); click's
    usage errors exit 2; Ctrl-C exits 130."""
    from flowdet.errors import FlowdetError, one_line

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # obj["argv"]: `train --device 0,1` relaunches this same command line under torchrun
        cli.main(args=args, prog_name="flowdet", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.message = one_line(e.message)  # a hostile value is never echoed whole
        e.show()
        sys.exit(e.exit_code if e.exit_code != 1 else 2)
    except FlowdetError as e:
        click.echo(one_line(f"Error: {e}"), err=True)
        sys.exit(e.exit_code)
    except OSError as e:  # a read-only or full disk, a vanished file: one line naming the file
        where = f"{e.filename}: " if e.filename else ""
        click.echo(one_line(f"Error: {where}{e.strerror or e}"), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
