"""The report's figures, drawn from study.json (matplotlib, Agg, PNG written atomically)."""
from pathlib import Path
from typing import Dict, Optional

from ..analysis import LayerEfficiency, class_grouping, plot_bit_efficiency
from ..analysis._plot import pyplot, save_png
from .content import KIB, accuracy_rows

MARKERS = {"ptq": "o", "retrain": "s", "vbq": "^"}


def _by_label(rows):
    out: Dict[str, list] = {}
    for r in rows:
        out.setdefault(r["label"], []).append(r)
    return {k: sorted(v, key=lambda r: r["bits"]) for k, v in out.items()}


def _colours(labels):
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def accuracy_plot(label: str, steps: Dict, png: Path, max_drop: float = 1.0) -> Optional[Path]:
    rows = accuracy_rows(steps)
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.6))
    groups = _by_label(rows)
    colours = _colours(groups)
    for name, rs in groups.items():
        style = "-" if len(rs) > 1 else "none"
        ax.plot([r["bits"] for r in rs], [r["test_accuracy"] for r in rs], linestyle=style,
                marker=MARKERS.get(rs[0]["method"], "o"), color=colours[name], label=name)
    base = steps["baseline"]["test_accuracy"]
    ax.axhline(base, color="k", linestyle=":", label="float32")
    ax.axhspan(base - max_drop, base, color="0.85", zorder=0, label=f"within {max_drop:g} points")
    best = steps.get("inference", {}).get("best")
    if best:
        ax.plot([best["bits"]], [best["test_accuracy"]], marker="*", markersize=18, color="gold",
                markeredgecolor="k", linestyle="none", label="chosen", zorder=5)
    lows = [r["test_accuracy"] for r in rows]
    ax.set_ylim(max(0.0, min(min(lows), base - 3 * max_drop) - 2), min(100.0, base + 2))
    ax.set(xlabel="bits per weight", ylabel="test accuracy (%)", title=f"{label}: accuracy against bits")
    ax.set_xticks(sorted({r["bits"] for r in rows}))
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    return save_png(fig, png)


def size_plot(label: str, steps: Dict, png: Path, max_drop: float = 1.0) -> Optional[Path]:
    rows = accuracy_rows(steps)
    if not rows:
        return None
    plt = pyplot()
    fig, (by_bits, trade) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = _by_label(rows)
    colours = _colours(groups)
    float_kib = steps["baseline"]["float32_bytes"] / KIB
    for name, rs in groups.items():
        kw = dict(color=colours[name], marker=MARKERS.get(rs[0]["method"], "o"))
        by_bits.plot([r["bits"] for r in rs], [r["packed_bytes"] / KIB for r in rs], label=name,
                     linestyle="-" if len(rs) > 1 else "none", **kw)
        trade.plot([r["packed_bytes"] / KIB for r in rs], [r["test_accuracy"] for r in rs], label=name,
                   linestyle="none", **kw)
    by_bits.axhline(float_kib, color="k", linestyle=":", label="float32")
    trade.axvline(float_kib, color="k", linestyle=":")
    trade.axhline(steps["baseline"]["test_accuracy"], color="k", linestyle=":", label="float32")
    by_bits.set(xlabel="bits per weight", ylabel="packed file (KiB)", yscale="log", title="model size")
    by_bits.invert_xaxis()
    trade.set(xlabel="packed file (KiB)", ylabel="test accuracy (%)", xscale="log",
              title="accuracy against size")
    lows = [r["test_accuracy"] for r in rows]
    trade.set_ylim(max(0.0, sorted(lows)[len(lows) // 4] - 5), min(100.0, steps["baseline"]["test_accuracy"] + 2))
    for ax in (by_bits, trade):
        ax.grid(alpha=0.3)
    by_bits.legend(fontsize=7, ncol=2)
    fig.suptitle(label, fontsize=10)
    return save_png(fig, png)


def speed_plot(label: str, steps: Dict, png: Path, max_drop: float = 1.0) -> Optional[Path]:
    models = [m for m in steps.get("inference", {}).get("models", []) if "batch1_us" in m]
    if not models:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    names = ["float32"] + [f"{m['label']}\n{m['bits']}-bit {m['mode']}" for m in models]
    series = [
        ("batch 1: us per image", models[0]["float_batch1_us"], [m["batch1_us"] for m in models],
         [m["batch1_speedup"] for m in models]),
        (f"batch {models[0]['batch']}: ms per batch", models[0]["float_batch64_ms"],
         [m["batch64_ms"] for m in models], [m["batch64_speedup"] for m in models]),
        ("size: KiB", models[0]["float_bytes"] / KIB, [m["packed_bytes"] / KIB for m in models],
         [m["float_bytes"] / m["packed_bytes"] for m in models]),
    ]
    for ax, (title, base, values, ratios) in zip(axes, series):
        bars = ax.bar(range(len(names)), [base] + values, color=["0.6"] + [f"C{i}" for i in range(len(values))])
        for bar, ratio in zip(bars[1:], ratios):
            ax.annotate(f"{ratio:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{label}: packed inference against float (ratio = float / packed; "
                 f"{steps['inference'].get('threads')} threads)", fontsize=10)
    return save_png(fig, png)


def bit_efficiency_plot(label: str, steps: Dict, png: Path, max_drop: float = 1.0) -> Optional[Path]:
    an = steps.get("analysis") or {}
    if not an.get("bit_efficiency"):
        return None
    results = {what: [LayerEfficiency(**r) for r in layers] for what, layers in an["bit_efficiency"].items()}
    plot_bit_efficiency(results, png, title=f"{label}: bit efficiency per layer at {an['bits']} bits")
    return Path(png)


def grouping_plot(label: str, steps: Dict, png: Path, max_drop: float = 1.0) -> Optional[Path]:
    g = (steps.get("analysis") or {}).get("grouping")
    if not g:
        return None
    class_grouping(g["confusion"], steps["baseline"]["classes"], groups=g["groups"], png=png,
                   title=f"{label}: confusions of {g['model']}")
    return Path(png)


FIGURES = [("accuracy", "Accuracy against bits, every method", accuracy_plot),
           ("size", "Size", size_plot),
           ("speed", "Packed inference: speed and size against float", speed_plot),
           ("bit_efficiency", "Bit efficiency", bit_efficiency_plot),
           ("grouping", "Confusion grouping", grouping_plot)]
