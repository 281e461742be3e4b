"""Issue 31's new-camera offline protocol, resumable: teacher → pseudo-labels → student, per seed.

The teacher is the baseline run (the labels only); it pseudo-labels the new camera's frames
(``flowdet pseudo-label``: stills, so boxes ≥ 0.5 kept, [0.25, 0.5) as ignore regions); the student is
the same training command plus those frames (``--pseudo``). The pseudo-boxes (and the student's own
boxes) are scored against the new camera's labels, which no training reads. Each step is skipped
when its output is complete and a killed training run continues from its ``last.pt``, so one command
picks up where a session ended. Seeds run one after the other: for two lanes, start it once per seed.

    cd /work/bench   # a YOLO export of grogol-960: flowdet convert coco2yolo ... --out yolo-g960
    OMP_NUM_THREADS=1 nohup python /work/main/benchmarks/newcam_pseudo.py --seeds 0 > lane-s0.txt 2>&1 &
    OMP_NUM_THREADS=1 nohup python /work/main/benchmarks/newcam_pseudo.py --seeds 1 > lane-s1.txt 2>&1 &
    python /work/main/benchmarks/newcam_pseudo.py --seeds 0,1 --report   # the table of what has finished

Measured with it (2026-12-08, AMD EPYC, docs/benchmarks.md "Student on pseudo-labels"): students
0.248 / 0.253 against their teachers' 0.235 / 0.218.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from flowdet.export.gate import describe_cpu

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grogol-960"


def flowdet(*args: str, log: Path) -> None:
    """One flowdet verb in a subprocess, its output in ``log``; a failure stops the lane."""
    cmd = [sys.executable, "-m", "flowdet", *args]
    print("$ flowdet " + " ".join(args), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        if subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"failed: {' '.join(args)} (see {log})")


def finished(run: Path) -> bool:
    """A training run that reached its end writes metrics.json with its best epoch."""
    m = run / "metrics.json"
    return m.is_file() and "best_epoch" in json.loads(m.read_text())


def train(run: Path, a: argparse.Namespace, seed: int, *extra: str) -> None:
    if finished(run):
        return
    log = run.with_name(run.name + ".log")
    if (run / "last.pt").is_file():  # killed mid-run: the checkpoint holds the run's own config
        flowdet("train", "--resume", str(run / "last.pt"), log=log)
        return
    flowdet("train", "--data", a.data, "--epochs", str(a.epochs), "--workers", "0", "--seed", str(seed),
            "--set", "data.cache=true", "--set", "train.progress=false", *a.train_args, *extra, "--out", str(run),
            log=log)


def pseudo_label(model: Path, sources: list[str], out: Path, *extra: str) -> None:
    if (out / "summary.json").is_file():
        return
    flowdet("pseudo-label", "--model", str(model), *sources, "--out", str(out), "--exist-ok", *extra,
            log=out.with_name(out.name + ".log"))


def lane(a: argparse.Namespace, seed: int) -> None:
    runs = Path(a.out)
    teacher, student = runs / f"newcam-base-s{seed}", runs / f"newcam-student-s{seed}"
    pl, score = runs / f"newcam-pl-s{seed}", runs / f"newcam-plscore-s{seed}"
    train(teacher, a, seed)
    pseudo_label(teacher / "best.pt", [a.unlabeled], pl, *a.pl_args)
    pseudo_label(teacher / "best.pt", [a.val_json], score, "--score-against", a.val_json, *a.pl_args)
    train(student, a, seed, "--pseudo", str(pl))
    pseudo_label(student / "best.pt", [a.val_json], runs / f"newcam-stscore-s{seed}", "--score-against",
                 a.val_json, *a.pl_args)


def best(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    b = m.get("best_metrics") or {}
    return {"AP": b.get("AP"), "APs": b.get("APs"), "AR@1000": b.get("AR1000"), "epoch": m["best_epoch"]}


def pr(out: Path) -> str:
    s = json.loads((out / "summary.json").read_text()).get("score", {})
    before = s.get("before") or {}
    return f"{num(before.get('precision'))} / {num(before.get('recall'))}"


def num(x: float | None, sign: bool = False) -> str:
    """A metric to 3 decimals; '—' where there is none (no boxes to score, no AP)."""
    return "—" if x is None else f"{x:+.3f}" if sign else f"{x:.3f}"


def report(a: argparse.Namespace, seeds: list[int]) -> None:
    print(f"box: {describe_cpu()}")
    print("| seed | teacher AP / APs / AR@1000 (best epoch) | pseudo P / R | student AP / APs / AR@1000 | "
          "student − teacher | student's boxes P / R |")
    print("|---|---|---|---|---|---|")
    runs = Path(a.out)
    for s in seeds:
        t, st = runs / f"newcam-base-s{s}", runs / f"newcam-student-s{s}"
        if not (finished(t) and finished(st)):
            print(f"| {s} | not finished | | | | |")
            continue
        bt, bs = best(t), best(st)
        cell = lambda b: f"{num(b['AP'])} / {num(b['APs'])} / {num(b['AR@1000'])} ({b['epoch']})"  # noqa: E731
        gain = [num(bs[k] - bt[k], sign=True) if bs[k] is not None and bt[k] is not None else "—" for k in ("AP", "APs")]
        print(f"| {s} | {cell(bt)} | {pr(runs / f'newcam-plscore-s{s}')} | {cell(bs)} | {gain[0]} / {gain[1]} | "
              f"{pr(runs / f'newcam-stscore-s{s}')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="yolo-g960/data.yaml", help="the labels (train + the new camera's val)")
    ap.add_argument("--unlabeled", default="yolo-g960/images/val", help="the new camera's frames")
    ap.add_argument("--val-json", default=str(SHARED / "val.json"), help="their labels, for scoring only")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default="runs")
    ap.add_argument("--train-arg", dest="train_args", action="append", default=[],
                    help="one more `flowdet train` argument, for teacher and student (repeatable)")
    ap.add_argument("--pl-arg", dest="pl_args", action="append", default=[],
                    help="one more `flowdet pseudo-label` argument, e.g. --pl-arg=--tta --pl-arg=flip")
    ap.add_argument("--report", action="store_true", help="print the table of finished seeds and exit")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if not a.report:
        for s in seeds:
            lane(a, s)
    report(a, seeds)


if __name__ == "__main__":
    main()
