"""Helpers shared by test modules (tests/ is on pytest's pythonpath)."""
from __future__ import annotations


def run_cli(capsys, *args: str, stdout: bool = False) -> tuple[int, str]:
    """Run ``flowdet`` in-process and return (exit code, stderr — or stdout with ``stdout``); a
    subprocess costs seconds."""
    from flowdet.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out if stdout else captured.err
