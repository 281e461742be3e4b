"""The label-efficiency report: table (markdown), plot (AP and AP50 vs % labels) and verdict.

Every number is computed from ``results.json``'s points; nothing is written by hand. The verdict
judges each kind (pretrained, semi, pretrained+semi) against scratch and the **seed spread**: at a
fraction, a kind "helped" only when every seed's paired difference (kind − scratch, same subset and
seed) is positive and the mean difference exceeds the spread — the larger max − min over seeds of the
two kinds. With one seed there is no spread to judge against, and the verdict says so instead of
claiming anything. It also checks the targets of issue 18 (pretrained at 25 % ≥ scratch at 100 % in
AP; pretrained ≥ scratch + 0.03 AP at 10 % with every seed agreeing) and of issue 31 (each semi kind
≥ scratch + 0.03 AP at 10 % on every seed, APs up on every seed).
"""
from __future__ import annotations

from pathlib import Path
from statistics import mean

from flowdet.experiments.efficiency_semi import KINDS, PRETRAINED_KINDS, SEMI_KINDS

# what a kind is called in the table, plot and verdict ({m}: the pretraining method)
KIND_LABEL = {"scratch": "from scratch", "pretrained": "{m} pretrained", "semi": "semi-supervised",
              "pretrained+semi": "{m} pretrained + semi-supervised"}
HEAD = {"pretrained": ("Pretraining", "help"), "semi": ("The unlabeled frames (semi-supervised)", "pay"),
        "pretrained+semi": ("Pretraining + the unlabeled frames", "pay")}  # the verdict's subject and verb per kind
TARGET_GAIN = 0.03  # AP over scratch at 10 % labels, every seed (issues 18 and 31)


def kind_label(kind: str, method: str) -> str:
    return KIND_LABEL[kind].format(m=method)


def aggregate(points: dict) -> dict[tuple[str, float], dict]:
    """(kind, fraction) → {"seeds", "images", "unlabeled", "labeled_iters", "AP": {seed: v}, "AP50", "APs", "train_s"}."""
    out: dict[tuple[str, float], dict] = {}
    for p in points.values():
        a = out.setdefault((p["kind"], float(p["fraction"])), {"seeds": [], "images": p.get("images"), "AP": {},
                                                                 "AP50": {}, "APs": {}, "train_s": [],
                                                                 "unlabeled": p.get("unlabeled"),
                                                                 "labeled_iters": p.get("labeled_iters")})
        a["seeds"].append(p["seed"])
        for k in ("AP", "AP50", "APs"):
            if k in p:
                a[k][p["seed"]] = float(p[k])
        a["train_s"].append(float(p.get("train_s") or 0))
    return out


def _order(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def _stat(vals: dict) -> tuple[float, float, float]:
    v = list(vals.values())
    return mean(v), min(v), max(v)


def _cell(vals: dict) -> str:
    if not vals:
        return "—"
    m, lo, hi = _stat(vals)
    return f"{m:.3f} ({lo:.3f}–{hi:.3f})"


def markdown_table(results: dict, method: str, batch: int | None = None) -> str:
    agg = aggregate(results.get("points", {}))
    pre = results.get("pretrain", {}).get(method, {})
    lines = ["| kind | labels | images | unlabeled frames | labeled iterations | seeds | AP mean (min–max) | "
             "AP50 mean (min–max) | APs mean (min–max) | train s / point | pretrain s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, frac), a in sorted(agg.items(), key=lambda kv: (_order(kv[0][0]), kv[0][1])):
        ps = pre.get("seconds") if kind in PRETRAINED_KINDS else None
        lines.append(f"| {kind_label(kind, method)} | {frac:.0%} | {a['images'] or '?'} | {a['unlabeled'] or '—'} | "
                     f"{a['labeled_iters'] or '?'} | {','.join(map(str, sorted(a['seeds'])))} | {_cell(a['AP'])} | "
                     f"{_cell(a['AP50'])} | {_cell(a['APs'])} | {mean(a['train_s']):.0f} | {f'{ps:.0f}' if ps else '—'} |")
    if any(k in SEMI_KINDS for k, _ in agg):
        lines.append(f"\nEqual labeled iterations: a semi row trains its scratch row's subset, epochs and batch"
                     f"{f' (batch {batch})' if batch else ''} — the same labeled iterations; each step also carries "
                     "semi.ratio unlabeled frames per labeled image (more images per step, not more steps).")
    return "\n".join(lines) + "\n"


def compare(results: dict) -> list[dict]:
    """Per kind other than scratch and fraction with both: paired AP (and APs) differences, the seed
    spread, and the judgement."""
    agg = aggregate(results.get("points", {}))
    rows = []
    for kind, frac in sorted((k for k in agg if k[0] != "scratch"), key=lambda kf: (_order(kf[0]), kf[1])):
        s, p = agg.get(("scratch", frac)), agg[(kind, frac)]
        seeds = sorted(set(s["AP"]) & set(p["AP"])) if s else []
        if not s or not seeds:
            continue
        diffs = [p["AP"][k] - s["AP"][k] for k in seeds]
        spread = max(max(x["AP"][k] for k in seeds) - min(x["AP"][k] for k in seeds) for x in (s, p))
        d = mean(diffs)
        if len(seeds) < 2:
            judged = "one seed"
        elif all(x > 0 for x in diffs) and d > spread:
            judged = "helped"
        elif all(x < 0 for x in diffs) and -d > spread:
            judged = "hurt"
        else:
            judged = "within the seed spread"
        aps = [p["APs"][k] - s["APs"][k] for k in seeds if k in p["APs"] and k in s["APs"]]
        rows.append({"kind": kind, "fraction": frac, "seeds": seeds, "scratch": mean(s["AP"][k] for k in seeds),
                     "ap": mean(p["AP"][k] for k in seeds), "diffs": diffs, "aps_diffs": aps, "mean_diff": d,
                     "spread": spread, "verdict": judged})
    return rows


def _head(kind: str, rows: list[dict]) -> str:
    subject, verb = HEAD[kind]
    past = "helped" if verb == "help" else "paid"
    helped = [r for r in rows if r["verdict"] == "helped"]
    if helped:
        return f"{subject} {past} beyond the seed spread at " + ", ".join(f"{r['fraction']:.0%}" for r in helped) + " labels."
    if all(r["verdict"] == "one seed" for r in rows):
        return f"With one seed per point the seed spread is unknown: this run cannot say whether {subject.lower()} {past}."
    return f"{subject} did not {verb} beyond the seed spread at any measured fraction."


def _detail(r: dict, method: str) -> str:
    per_seed = ", ".join(f"{d:+.3f}" for d in r["diffs"])
    where = (f"at {r['fraction']:.0%} labels {kind_label(r['kind'], method)} gives AP {r['ap']:.3f} vs "
             f"{r['scratch']:.3f} from scratch (Δ {r['mean_diff']:+.3f}; per seed {per_seed}")
    if r["verdict"] == "one seed":
        return where + "; one seed, so no seed spread to judge against)"
    return where + f"; seed spread {r['spread']:.3f}) — {r['verdict']}"


def _targets(rows: list[dict], agg: dict, method: str) -> list[str]:
    targets = []
    p25, s100 = agg.get(("pretrained", 0.25)), agg.get(("scratch", 1.0))
    if p25 and s100:
        a, b = _stat(p25["AP"])[0], _stat(s100["AP"])[0]
        targets.append(f"pretrained + 25 % of the labels {'≥' if a >= b else '<'} scratch + 100 % "
                       f"({a:.3f} vs {b:.3f} AP: {'met' if a >= b else 'not met'})")
    for r in (r for r in rows if abs(r["fraction"] - 0.1) < 1e-9):
        diffs = ", ".join(f"{d:+.3f}" for d in r["diffs"])
        ok = len(r["diffs"]) >= 2 and all(d >= TARGET_GAIN for d in r["diffs"])
        if r["kind"] == "pretrained":
            targets.append(f"pretrained ≥ scratch + {TARGET_GAIN} AP at 10 % with every seed agreeing "
                           f"({diffs} over {len(r['diffs'])} seed(s): {'met' if ok else 'not met'})")
            continue
        ok = ok and len(r["aps_diffs"]) == len(r["diffs"]) and all(d > 0 for d in r["aps_diffs"])
        aps = ", ".join(f"{d:+.3f}" for d in r["aps_diffs"]) or "not recorded"
        targets.append(f"{kind_label(r['kind'], method)} ≥ scratch + {TARGET_GAIN} AP at 10 % on every seed, APs up "
                       f"on every seed (AP {diffs}; APs {aps}; over {len(r['diffs'])} seed(s): {'met' if ok else 'not met'})")
    return targets


def verdict(results: dict, method: str) -> str:
    """One paragraph, computed from the points (see the module docstring for the rule)."""
    rows = compare(results)
    if not rows:
        return "No fraction has both a scratch point and a point of another kind yet: no verdict.\n"
    kinds = sorted({r["kind"] for r in rows}, key=_order)
    head = " ".join(_head(k, [r for r in rows if r["kind"] == k]) for k in kinds)
    pre_s = results.get("pretrain", {}).get(method, {}).get("seconds")
    cost = f" Pretraining took {pre_s:.0f} s." if pre_s and set(PRETRAINED_KINDS) & set(kinds) else ""
    same = (" Semi points trained the same labeled iterations as their scratch points (same subset, epochs and "
            "batch), with unlabeled frames added to each step." if set(kinds) & set(SEMI_KINDS) else "")
    targets = _targets(rows, aggregate(results.get("points", {})), method)
    tail = (" Targets: " + "; ".join(targets) + ".") if targets else ""
    return f"{head} In detail: " + "; ".join(_detail(r, method) for r in rows) + "." + cost + same + tail + "\n"


def plot(results: dict, method: str, path: Path, epochs: int | None = None, img_size: str | None = None) -> None:
    """AP (left) and AP50 (right) vs % labels, one line per kind, error bars = min–max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(results.get("points", {}))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, metric in zip(axes, ("AP", "AP50")):
        for kind in KINDS:
            pts = sorted((f, _stat(a[metric]), len(a[metric])) for (k, f), a in agg.items() if k == kind)
            if not pts:
                continue
            x = [f * 100 for f, _, _ in pts]
            m = [s[0] for _, s, _ in pts]
            err = [[s[0] - s[1] for _, s, _ in pts], [s[2] - s[0] for _, s, _ in pts]]
            ax.errorbar(x, m, yerr=err, marker="o", capsize=4, label=kind_label(kind, method))
        ax.set_xlabel("% of training labels")
        ax.set_ylabel(f"{metric} on val")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    budget = f"{epochs} full-data epochs of iterations per point" if epochs else "equal iterations per point"
    fig.suptitle(f"label efficiency: {budget}" + (f" at {img_size} px" if img_size else "")
                 + "; bars: min–max over seeds", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, method: str, out: Path, epochs: int | None = None,
                 img_size: str | None = None, batch: int | None = None) -> dict:
    """table.md, verdict.md and efficiency.png under ``out``; returns their texts and paths."""
    table, text = markdown_table(results, method, batch), verdict(results, method)
    (out / "table.md").write_text(table)
    (out / "verdict.md").write_text(text)
    png = out / "efficiency.png"
    # redrawn only when the points changed: a resumed grid with nothing new costs no matplotlib
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps([results.get("points"), method, epochs, img_size], sort_keys=True,
                                     default=str).encode()).hexdigest()
    stamp = out / ".efficiency.png.sha1"
    fresh = png.is_file() and stamp.is_file() and stamp.read_text() == digest
    if results.get("points") and not fresh:
        plot(results, method, png, epochs, img_size)
        stamp.write_text(digest)
    return {"table": table, "verdict": text, "plot": str(png), "comparisons": compare(results)}
