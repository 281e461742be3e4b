"""Helpers shared by test modules (tests/ is on pytest's pythonpath)."""
from __future__ import annotations


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Run ``flowdet`` in-process and return (exit code, stderr); a subprocess costs seconds."""
    from flowdet.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err
