"""The demo report: ``report.md`` + a self-contained ``report.html`` + ``summary.json``.

Every number printed in the report is read from the summary dict through :func:`fmt`, so the
test can check that each number in the report is present in ``summary.json`` (nothing canned).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from flowdet.utils import atomic_write_text

# The reference study's layout (see flowdet eval): label → key in summary["metrics"].
METRIC_ROWS = [
    ("AP @[.5:.95] maxDets=100", "AP"),
    ("AP50 maxDets=1000", "AP50_1000"),
    ("AP75 maxDets=1000", "AP75_1000"),
    ("AR maxDets=100", "AR100"),
    ("AR maxDets=300", "AR300"),
    ("AR maxDets=1000", "AR1000"),
]

SECTIONS = ["Metrics", "Deployment threshold", "AP per epoch", "Stage times", "Loss curves", "Precision-recall",
            "Validation predictions", "Box sizes", "Stream", "Run this on your own data"]
# the one size table (flowdet.demo.sections.size_rows): header → key of a summary["sizes"] row
SIZE_COLUMNS = [("size (box area)", "size"), ("train labels", "train"), ("share", "train_share"),
                ("train labels at input", "train_at_input"), ("share at input", "train_at_input_share"),
                ("val labels", "val"), ("val AP maxDets=1000", "AP"), ("val AR maxDets=1000", "AR")]
OUTCOMES = "green: TP (a prediction matching a label, IoU ≥ 0.5), red: FP (matching none), orange: missed label"
# summary["metrics"] keys of the best-F1 threshold (flowdet.detect.evaluate, IoU 0.5)
DEPLOY_ROWS = [("score threshold (best F1)", "best_f1_conf"), ("F1", "best_f1"), ("precision", "precision_at_best"),
               ("recall", "recall_at_best"), ("TP", "tp_at_best"), ("FP", "fp_at_best"), ("FN (missed)", "fn_at_best")]


# Table rows named for a reader, not by their summary.json key (the fallback: "_" / "." become spaces)
READABLE = {"parity_ok": "parity check passed", "parity_max_abs_diff": "largest score difference",
            "onnx_seconds": "export seconds", "images": "images", "boxes": "labelled boxes",
            "det_per_frame": "detections per frame", "fps": "frames per second", "frames_read": "frames read",
            "best_ap": "best AP", "best_epoch": "best epoch", "miss_share_first": "labels no anchor reached, first epoch",
            "miss_share_last": "labels no anchor reached, last epoch", "latency_p50_ms": "latency p50 (ms)",
            "latency_p95_ms": "latency p95 (ms)", "infer_ms": "inference (ms)"}


def readable(key: str) -> str:
    """A summary key as a table row's name: ``classes.bottle`` → ``labels of class bottle``."""
    if key in READABLE:
        return READABLE[key]
    head, _, rest = key.partition(".")
    if head == "classes" and rest:
        return f"labels of class {rest}"
    return key.replace("parity_", "parity: ").replace(".", " ").replace("_", " ")


def _rows(d: dict[str, Any], types: tuple[type, ...] = (int, float)) -> list[list[Any]]:
    return [[readable(k), v] for k, v in d.items() if isinstance(v, types)]


def loss_jump_note(train: dict[str, Any]) -> list[str]:
    """Why the training loss steps up near the end: in the last ``no_aug_epochs`` epochs mosaic/mixup stop
    and YOLOX adds the L1 box loss to the sum — a new term, not a divergence."""
    n, epochs = train.get("no_aug_epochs"), train.get("epochs")
    if not isinstance(n, int) or n <= 0 or not isinstance(epochs, int) or n >= epochs:
        return []
    return [f"The total loss steps up at epoch {epochs - n + 1}: for the last {n} epochs augmentation "
            "(mosaic) stops and the L1 box loss is added to the sum (YOLOX's schedule) — a new term in "
            "the total, not a divergence; the other curves keep falling.", ""]


def detected_nothing(m: dict[str, Any]) -> bool:
    """The evaluation matched no label at any threshold (best F1 0): its precision (1.000 from zero
    detections) and threshold mean nothing."""
    return "best_f1" in m and not m["best_f1"]


def fmt(v: Any) -> str:
    """The one number format of the report (and of the test that checks it)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"  # parity deltas etc. would print as 0.000
        # seconds and rates read as 614.9, not 614.910; metrics (< 100) keep three decimals
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _metric(v: Any) -> Any:
    return "n/a (no ground truth in this size range)" if isinstance(v, (int, float)) and v < 0 else v


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return out


def _img(rel: str | None, alt: str) -> str:
    return f"![{alt}]({rel})" if rel else f"_({alt}: not produced in this run)_"


def render_markdown(s: dict[str, Any]) -> str:
    """Markdown report from the summary dict (paths in ``s['assets']`` relative to the report)."""
    a = s.get("assets", {})
    m = s.get("metrics", {})
    L = ["# flowdet demo report", "",
         f"Mode: **{s.get('mode')}** · pretraining method: **{s.get('method')}** · model: **{s.get('model_size')}** "
         f"· input {s.get('img_size')} px · seed {s.get('seed')} · flowdet {s.get('flowdet_version')}", "",
         "All numbers below were measured in this run and are also in `summary.json`.", ""]
    L += ["## Metrics", "", "COCO metrics on the synthetic validation set (score threshold 0.001, as YOLOX; "
          "the reference FloW study's layout).", ""]
    # pycocotools reports -1 where no ground truth falls in a size range (e.g. no large objects)
    L += _table(["metric", "value"], [[label, _metric(m.get(key, float("nan")))] for label, key in METRIC_ROWS])
    L += ["", f"Standard COCO: AP50 (maxDets=100) = {fmt(m.get('AP50', float('nan')))}, "
          f"APs = {fmt(m.get('APs', float('nan')))}. AP and AR per object size: the Box sizes table.", ""]
    L += ["## Deployment threshold", "", "AP averages over every score threshold; a camera runs at one. "
          "At the threshold with the best F1 (IoU 0.5):", ""]
    if detected_nothing(m):
        L += ["**This run was too short to detect anything:** the model matched none of the validation labels at "
              "any score threshold (best F1 0), so there is no threshold to deploy at (a precision from zero "
              "detections would read 1.000)." + (" `--quick` trains a few epochs to check that every stage runs; "
                                                  "`flowdet demo` without it trains long enough to detect."
                                                  if s.get("mode") == "quick" else "")]
    else:
        L += _table(["at the deployment threshold", "value"], [[label, m[key]] for label, key in DEPLOY_ROWS if key in m]
                    ) if any(key in m for _, key in DEPLOY_ROWS) else ["_(not measured in this run)_"]
    L += [""]
    L += _ap_per_epoch(s)
    L += ["## Stage times", ""]
    st = s.get("stage_seconds", {})
    L += _table(["stage", "seconds"], [[k, v] for k, v in st.items()] + [["total", s.get("total_seconds", float("nan"))]])
    L += ["", "## Loss curves", "", _img(a.get("pretrain_loss"), "pretraining loss"), "",
          _img(a.get("train_loss"), "detector training losses"), ""]
    L += loss_jump_note(s.get("train", {}))
    tr = s.get("train", {})
    if tr:
        L += _table(["training", "value"], _rows(tr))
        L += [""]
    L += ["## Precision-recall", "", _img(a.get("pr_curve"), "precision-recall curve"), ""]
    g = s.get("grid", {})
    grid_conf = g.get("conf", s.get("grid_conf", 0.3))
    at_deploy = " (the deployment threshold)" if grid_conf == m.get("best_f1_conf") and not detected_nothing(m) else ""
    L += ["## Validation predictions", "", f"Predictions at score ≥ {fmt(grid_conf)}{at_deploy} "
          f"on the first validation images; {OUTCOMES}; the number on a box is its score.", ""]
    if g:
        L += _table(["on these images", "value"], [["images", g.get("images")], ["TP", g.get("TP")], ["FP", g.get("FP")],
                                                   ["missed labels", g.get("miss")]]) + [""]
    L += [_img(a.get("pred_grid"), "validation predictions"), ""]
    L += ["## Box sizes", "", "COCO size buckets by box area in pixels: training labels as labelled and after the "
          f"letterbox to the {s.get('img_size')} px input, validation labels and the validation AP / AR per bucket.", ""]
    sizes = s.get("sizes", [])
    if sizes:
        L += _table([h for h, _ in SIZE_COLUMNS], [[_metric(r.get(k)) if k in ("AP", "AR") else r.get(k)
                                                    for _, k in SIZE_COLUMNS] for r in sizes])
    else:
        L += ["_(not measured in this run)_"]
    ds = s.get("dataset", {})
    if ds:
        L += ["", "Training set:", ""]
        L += _table(["dataset", "value"], _rows(ds))
    L += ["", _img(a.get("box_hist"), "box-size histogram"), ""]
    L += ["## Stream", "", "The synthetic video streamed through the ONNX runtime (torch-free path).", ""]
    so = s.get("stream", {})
    L += _table(["stream", "value"], _rows(so))
    fr = s.get("stream_frame")
    if fr:
        L += ["", f"Frame {fr.get('frame')} (t = {fmt(fr.get('time'))} s) of the stream, its detections from "
              f"`detections.jsonl` against the video's labels ({OUTCOMES}): {fr.get('TP')} TP, {fr.get('FP')} FP, "
              f"{fr.get('miss')} missed.", "", _img(a.get("stream_frame"), "a frame of the stream")]
    ex = s.get("export", {})
    if ex:
        L += ["", "ONNX export parity against PyTorch:", ""]
        L += _table(["export", "value"], _rows(ex, (int, float, bool)))
    L += ["", f"Outputs: `{s.get('out_dir', '.')}`", ""]
    L += ["## Run this on your own data", "", "Videos and a few hundred VOC or YOLO-labelled frames: "
          "`docs/own-data.md` walks through split → mine → pretrain → train → eval → export → stream "
          "with the same commands (`flowdet data split labels/ --out splits/ --group-by video`, "
          "`flowdet train --data splits/train.json --val splits/val.json --img-size 1280x736`, …).", ""]
    return "\n".join(L)


def _ap_per_epoch(s: dict[str, Any]) -> list[str]:
    rows = s.get("ap_per_epoch", [])
    L = ["## AP per epoch", ""]
    if not rows:
        return L + ["_(no evaluation logged in this run's metrics.csv)_", ""]
    L += [f"Validation AP at each evaluation during training (every {s.get('eval_interval', '?')} epoch(s), "
          "maxDets=100; read from the run's `metrics.csv`).", ""]
    L += _table(["epoch", "AP", "AP50", "APs"], [[r.get("epoch"), r.get("AP"), r.get("AP50"), r.get("APs")] for r in rows])
    return L + ["", _img(s.get("assets", {}).get("ap_per_epoch"), "AP per epoch"), ""]


def _md_to_html(md: str, base: Path) -> str:
    """A tiny Markdown subset → HTML (headings, tables, images inlined as base64, paragraphs)."""
    body, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("![") and "](" in line:
            alt, rel = line[2:].split("](", 1)
            p = base / rel.rstrip(")")
            if p.exists():
                data = base64.b64encode(p.read_bytes()).decode()
                kind = "gif" if p.suffix == ".gif" else "png"
                body.append(f'<p><img alt="{html.escape(alt)}" src="data:image/{kind};base64,{data}"></p>')
        elif line.strip():
            text = html.escape(line).replace("**", "")
            body.append(f"<p>{text.replace('`', '')}</p>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 10px;text-align:left}"
             "th{background:#eef}img{max-width:100%}h2{border-bottom:1px solid #ddd;margin-top:1.6em}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>flowdet demo report</title><style>{style}</style></head><body>{''.join(body)}</body></html>"


def write_report(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path, Path]:
    """Write summary.json, report.md and report.html into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    md = render_markdown(summary)
    sj, rm, rh = out_dir / "summary.json", out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(sj, json.dumps(summary, indent=1, default=str))
    atomic_write_text(rm, md)
    atomic_write_text(rh, _md_to_html(md, out_dir))
    return sj, rm, rh
