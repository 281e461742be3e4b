"""`flowdet cfg` prints every key with default and help; `train --help` states defaults; --lr exists."""
from __future__ import annotations

import dataclasses

import yaml

from flowdet.cli import main


def _out(capsys, *args: str) -> str:
    try:
        main(list(args))
    except SystemExit as e:
        assert not e.code
    return capsys.readouterr().out


def test_cfg_train_is_a_yaml_with_every_key_that_loads_back(tmp_path, capsys):
    from flowdet.cfgdoc import fields
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig

    text = _out(capsys, "cfg", "train", "--size", "nano")
    assert "epochs: 300" in text and "# total over all DDP ranks" in text
    parsed = yaml.safe_load(text)

    def flat(d: dict, prefix: str = "") -> set[str]:
        return set().union(*[flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k} for k, v in d.items()])

    assert flat(parsed) == {k for k, _, _ in fields(DetectConfig())}
    (tmp_path / "c.yaml").write_text(text)
    assert dataclasses.asdict(load_config(DetectConfig, str(tmp_path / "c.yaml")))["train"]["epochs"] == 300
    assert "method:" in _out(capsys, "cfg", "pretrain", "--method", "byol")


def test_train_help_states_defaults_and_lr_is_a_flag(capsys):
    text = " ".join(_out(capsys, "train", "--help").split())  # click wraps help text at any width
    for want in ("default: 300", "default: 8", "default: runs/train", "--lr", "--exist-ok", "default: auto"):
        assert want in text
    from flowdet.commands import overrides_from

    assert overrides_from((), lr=("train.lr", 0.02)) == ["train.lr=0.02"]


def test_configs_name_no_machine_paths():
    import re
    from pathlib import Path

    for f in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"):
        assert not re.search(r"(^|[\s(:'\"])/(work|home|mnt|data|Users|tmp)/", f.read_text()), f.name


def _options_without_a_default(command) -> list[str]:
    import click

    skip = {"config", "sets", "help"}  # a file / overrides: nothing to default
    return [p.name for p in command.params if isinstance(p, click.Option) and not p.is_flag
            and p.name not in skip and "default:" not in (p.help or "")]


def test_pretrain_help_states_every_default_and_the_presets_values(capsys):
    # Before: `pretrain --help` showed no defaults (`--epochs INTEGER  train.epochs`).
    from flowdet.commands.detect import train
    from flowdet.commands.pretrain import pretrain
    from flowdet.pretrain.config import PretrainConfig, method_defaults

    assert _options_without_a_default(pretrain) == [] and _options_without_a_default(train) == []
    text = " ".join(_out(capsys, "pretrain", "--help").split())  # undo click's line wrapping
    base = PretrainConfig()
    assert f"(train.epochs, default: {base.train.epochs}; with --method:" in text
    assert f"self-emd {method_defaults('self-emd').train.epochs}" in text  # read from the preset, not copied
    assert f"(method.crop, default: {base.method.crop}; with --method:" in text
    assert "(train.out, default: runs/pretrain)" in text and "(train.device, default: auto)" in text


def test_cfg_train_keeps_every_help_whole(capsys):
    # Before: help texts over 160 characters were cut with "…" (train.lr_ref_batch, train.ema_tau, …).
    text = _out(capsys, "cfg", "train", "--size", "nano")
    assert "…" not in text
    joined = " ".join(ln.strip().lstrip("# ") for ln in text.splitlines())
    assert "tau ≈ iterations/5 averages ~the last 4 epochs instead." in joined
    assert max(len(ln) for ln in text.splitlines() if "#" in ln) < 200


def test_pyproject_license_is_an_spdx_string():
    # Before: license = { text = ... }, which setuptools warns about three times on every install.
    from pathlib import Path

    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert data["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=7") and int(r.split(">=")[1].split(".")[0]) >= 77
               for r in data["build-system"]["requires"])
