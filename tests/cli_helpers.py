"""Helpers shared by test modules (tests/ is on pytest's pythonpath)."""
from __future__ import annotations


def exit_code(argv: list[str]) -> int:
    """The exit code of ``flowdet ARGV`` run in-process, output left to the caller's capsys."""
    from flowdet.cli import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def run_cli_captured(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``flowdet`` in-process and return (exit code, stdout, stderr); a subprocess costs seconds."""
    from flowdet.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli(capsys, *args: str, stdout: bool = False) -> tuple[int, str]:
    """(exit code, stderr — or stdout with ``stdout``) of ``flowdet`` run in-process."""
    code, out, err = run_cli_captured(capsys, *args)
    return code, out if stdout else err
