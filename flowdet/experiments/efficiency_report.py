"""The label-efficiency report: table (markdown), plot (AP and AP50 vs % labels) and verdict.

Every number is computed from ``results.json``'s points; nothing is written by hand. The verdict
judges pretraining against the **seed spread**: at a fraction, pretraining "helped" only when every
seed's paired difference (pretrained − scratch, same subset and seed) is positive and the mean
difference exceeds the spread — the larger max − min over seeds of the two kinds. With one seed
there is no spread to judge against, and the verdict says so instead of claiming anything.
It also checks the two targets of issue 18: pretrained at 25 % ≥ scratch at 100 % in AP, and
pretrained ≥ scratch + 0.03 AP at 10 % with every seed agreeing.
"""
from __future__ import annotations

from pathlib import Path
from statistics import mean

KIND_LABEL = {"scratch": "from scratch", "pretrained": "pretrained"}


def aggregate(points: dict) -> dict[tuple[str, float], dict]:
    """(kind, fraction) → {"seeds", "images", "AP": {seed: v}, "AP50": {...}, "train_s"}."""
    out: dict[tuple[str, float], dict] = {}
    for p in points.values():
        a = out.setdefault((p["kind"], float(p["fraction"])), {"seeds": [], "images": p.get("images"), "AP": {},
                                                                 "AP50": {}, "train_s": []})
        a["seeds"].append(p["seed"])
        for k in ("AP", "AP50"):
            a[k][p["seed"]] = float(p[k])
        a["train_s"].append(float(p.get("train_s") or 0))
    return out


def _stat(vals: dict) -> tuple[float, float, float]:
    v = list(vals.values())
    return mean(v), min(v), max(v)


def markdown_table(results: dict, method: str) -> str:
    agg = aggregate(results.get("points", {}))
    pre = results.get("pretrain", {}).get(method, {})
    lines = ["| kind | labels | images | seeds | AP mean (min–max) | AP50 mean (min–max) | train s / point | pretrain s |",
             "|---|---|---|---|---|---|---|---|"]
    for (kind, frac), a in sorted(agg.items(), key=lambda kv: (kv[0][0] != "scratch", kv[0][1])):
        ap, ap50 = _stat(a["AP"]), _stat(a["AP50"])
        label = KIND_LABEL[kind] if kind == "scratch" else f"{method} pretrained"
        ps = pre.get("seconds") if kind == "pretrained" else None
        lines.append(f"| {label} | {frac:.0%} | {a['images'] or '?'} | {','.join(map(str, sorted(a['seeds'])))} | "
                     f"{ap[0]:.3f} ({ap[1]:.3f}–{ap[2]:.3f}) | {ap50[0]:.3f} ({ap50[1]:.3f}–{ap50[2]:.3f}) | "
                     f"{mean(a['train_s']):.0f} | {f'{ps:.0f}' if ps else '—'} |")
    return "\n".join(lines) + "\n"


def compare(results: dict) -> list[dict]:
    """Per fraction with both kinds: paired AP differences and the seed spread, and the judgement."""
    agg = aggregate(results.get("points", {}))
    rows = []
    for frac in sorted({f for _, f in agg}):
        s, p = agg.get(("scratch", frac)), agg.get(("pretrained", frac))
        if not s or not p:
            continue
        seeds = sorted(set(s["AP"]) & set(p["AP"]))
        if not seeds:
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
        rows.append({"fraction": frac, "seeds": seeds, "scratch": mean(s["AP"][k] for k in seeds),
                     "pretrained": mean(p["AP"][k] for k in seeds), "diffs": diffs, "mean_diff": d,
                     "spread": spread, "verdict": judged})
    return rows


def verdict(results: dict, method: str) -> str:
    """One paragraph, computed from the points (see the module docstring for the rule)."""
    rows = compare(results)
    if not rows:
        return "No fraction has both a scratch and a pretrained point yet: no verdict.\n"
    pre_s = results.get("pretrain", {}).get(method, {}).get("seconds")
    parts = []
    for r in rows:
        per_seed = ", ".join(f"{d:+.3f}" for d in r["diffs"])
        where = (f"at {r['fraction']:.0%} labels {method} gives AP {r['pretrained']:.3f} vs {r['scratch']:.3f} "
                 f"from scratch (Δ {r['mean_diff']:+.3f}; per seed {per_seed}")
        if r["verdict"] == "one seed":
            parts.append(where + "; one seed, so no seed spread to judge against)")
        else:
            parts.append(where + f"; seed spread {r['spread']:.3f}) — {r['verdict']}")
    helped = [r for r in rows if r["verdict"] == "helped"]
    if helped:
        head = ("Pretraining helped beyond the seed spread at " + ", ".join(f"{r['fraction']:.0%}" for r in helped)
                + " labels.")
    elif all(r["verdict"] == "one seed" for r in rows):
        head = "With one seed per point the seed spread is unknown: this run cannot say whether pretraining helped."
    else:
        head = "Pretraining did not help beyond the seed spread at any measured fraction."
    agg = aggregate(results.get("points", {}))
    targets = []
    p25, s100 = agg.get(("pretrained", 0.25)), agg.get(("scratch", 1.0))
    if p25 and s100:
        a, b = _stat(p25["AP"])[0], _stat(s100["AP"])[0]
        targets.append(f"pretrained + 25 % of the labels {'≥' if a >= b else '<'} scratch + 100 % "
                       f"({a:.3f} vs {b:.3f} AP: {'met' if a >= b else 'not met'})")
    r10 = next((r for r in rows if abs(r["fraction"] - 0.1) < 1e-9), None)
    if r10:
        ok = len(r10["diffs"]) >= 2 and all(d >= 0.03 for d in r10["diffs"])
        targets.append(f"pretrained ≥ scratch + 0.03 AP at 10 % with every seed agreeing "
                       f"({', '.join(f'{d:+.3f}' for d in r10['diffs'])} over {len(r10['diffs'])} seed(s): "
                       f"{'met' if ok else 'not met'})")
    cost = f" Pretraining took {pre_s:.0f} s." if pre_s else ""
    tail = (" Targets: " + "; ".join(targets) + ".") if targets else ""
    return f"{head} In detail: " + "; ".join(parts) + "." + cost + tail + "\n"


def plot(results: dict, method: str, path: Path, epochs: int | None = None, img_size: str | None = None) -> None:
    """AP (left) and AP50 (right) vs % labels, one line per kind, error bars = min–max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(results.get("points", {}))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, metric in zip(axes, ("AP", "AP50")):
        for kind in ("scratch", "pretrained"):
            pts = sorted((f, _stat(a[metric]), len(a[metric])) for (k, f), a in agg.items() if k == kind)
            if not pts:
                continue
            x = [f * 100 for f, _, _ in pts]
            m = [s[0] for _, s, _ in pts]
            err = [[s[0] - s[1] for _, s, _ in pts], [s[2] - s[0] for _, s, _ in pts]]
            ax.errorbar(x, m, yerr=err, marker="o", capsize=4,
                        label=KIND_LABEL[kind] if kind == "scratch" else f"{method} pretrained")
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
                 img_size: str | None = None) -> dict:
    """table.md, verdict.md and efficiency.png under ``out``; returns their texts and paths."""
    table, text = markdown_table(results, method), verdict(results, method)
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
