"""A stand-in for `python -m flowdet` in the efficiency grid's tests (tests/ is on pytest's pythonpath)."""
from __future__ import annotations

import json
from pathlib import Path

from flowdet.errors import FlowdetError


def run_in_process(argv: list[str], log: Path) -> None:
    """The real `flowdet` CLI in this process (the grid's runner for the real-training tests)."""
    from cli_helpers import exit_code

    code = exit_code(argv)
    if code:
        raise FlowdetError(f"flowdet {argv[0]} exited {code}")


def kind_of(argv: list[str]) -> str:
    """The grid kind a `flowdet train` argv is: --backbone → pretrained, --unlabeled → semi."""
    semi = "--unlabeled" in argv
    if "--backbone" in argv:
        return "pretrained+semi" if semi else "pretrained"
    return "semi" if semi else "scratch"


def arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


class FakeRunner:
    """Stands in for `python -m flowdet`: writes what each verb writes; AP = base + bonus by kind/seed."""

    def __init__(self, ap, fail_resume: bool = False):
        self.ap, self.fail_resume, self.calls = ap, fail_resume, []

    def __call__(self, argv: list[str], log: Path) -> None:
        self.calls.append(argv)
        verb = argv[0]
        if "--resume" in argv and self.fail_resume:
            raise FlowdetError("not a resumable checkpoint")
        if verb == "pretrain":
            out = Path(arg(argv, "--out"))
            out.mkdir(parents=True, exist_ok=True)
            (out / "backbone.pt").write_bytes(b"bb")
            (out / "metrics.csv").write_text("epoch,loss,seconds\n1,1.0,12.5\n2,0.9,12.5\n")
        elif verb == "train":
            if "--resume" in argv:
                out = Path(arg(argv, "--resume")).parent
            else:
                out = Path(arg(argv, "--out"))
                assert not (out / "junk").exists()  # a fresh start is in an emptied folder
            out.mkdir(parents=True, exist_ok=True)
            (out / "last.pt").write_bytes(b"ck")
            (out / "metrics.csv").write_text("epoch,loss,time_s\n1,2.0,3.0\n")
            if "--resume" not in argv:  # a resumed run keeps the command it started with
                (out / "argv.json").write_text(json.dumps(argv))
        elif verb == "eval":
            run = Path(arg(argv, "--ckpt")).parent
            a = json.loads((run / "argv.json").read_text())
            kind = kind_of(a)
            n = len(json.loads(Path(arg(a, "--data")).read_text())["images"])
            (run / "eval").mkdir(exist_ok=True)
            ap = self.ap(kind, n, int(arg(a, "--seed")))
            (run / "eval" / "metrics.json").write_text(json.dumps({"metrics": {"AP": ap, "AP50": 2 * ap, "AP75": 0,
                                                                               "APs": ap / 2, "APm": 0, "AR100": 0}}))
