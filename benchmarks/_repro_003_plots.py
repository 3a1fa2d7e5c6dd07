"""The figures of repro_003.py's page, drawn from the stored units. Each writes one PNG
(atomically, through lowbit's plotting helper); a figure with nothing finished to show
says so in its title instead of being left out."""
from pathlib import Path
from typing import List, Sequence

import numpy as np

import _repro_003_units as U
from _repro_003_results import FLOAT, Results
from lowbit.analysis._plot import pyplot, save_png

EMPTY = "no finished units yet"
ACCURACY_PNG = "repro_003_accuracy.png"
CALIBRATION_PNG = "repro_003_fig11.png"


def _spread(values: Sequence[float]):
    """Mean and the half-width of its 95 % t interval (0 for one value)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0
    from scipy import stats
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def accuracy(res: Results, methods_at, bits: List[int], seeds: List[int], png: Path) -> None:
    """Held-out and calibration accuracy against bits, one line per method (mean over seeds
    with its 95 % interval), float as a band: the page's main table as a picture."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    names = []
    for b in bits:
        names += [m for m in methods_at(b) if m not in names]
    drawn = 0
    for ax, field, title in ((axes[0], "held_out", "held-out (10k test images)"),
                             (axes[1], "calib", "calibration images")):
        flt = list(res.values(FLOAT, None, seeds, field).values())
        if flt:
            m, h = _spread(flt)
            ax.axhspan(m - h, m + h, color="0.85")
            ax.axhline(m, color="0.4", lw=1, label="float")
        for i, name in enumerate(names):
            xs, ys, es = [], [], []
            for b in bits:
                got = list(res.values(name, b, seeds, field).values()) if name in methods_at(b) else []
                if got:
                    m, h = _spread(got)
                    xs.append(b), ys.append(m), es.append(h)
            if xs:
                drawn += 1
                ax.errorbar(xs, ys, yerr=es, marker="o", ms=4, capsize=3, color=f"C{i}", label=name)
        ax.set_xticks(bits)
        ax.set_xlabel("bits per weight (every layer, per tensor)")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.suptitle("LeNet-5 on Fashion-MNIST: VBQ against Lloyd-Max, uniform and power of two "
                 f"(mean and 95 % interval over seeds){'' if drawn else ': ' + EMPTY}", fontsize=10)
    save_png(fig, png)


def calibration(res: Results, bits: int, sizes: Sequence[int], seeds: List[int], png: Path) -> None:
    """The paper's Fig. 11: SA's accuracy on its calibration images and on held-out images
    against the number of calibration images."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = 0
    for field, label, mark in (("calib", "calibration images", "s--"), ("held_out", "held-out images", "o-")):
        xs, ys, es = [], [], []
        for n in sizes:
            got = list(res.values(U.SA, bits, seeds, field, n).values())
            if got:
                m, h = _spread(got)
                xs.append(n), ys.append(m), es.append(h)
        if xs:
            drawn += 1
            ax.errorbar(xs, ys, yerr=es, fmt=mark, ms=4, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(list(sizes))
    ax.set_xticklabels([str(n) for n in sizes])
    ax.set_xlabel("calibration images")
    ax.set_ylabel("top-1 accuracy (%)")
    if drawn:
        ax.legend(fontsize=8)
    ax.set_title(f"{2 ** bits}-value VBQ-SA against the calibration set (paper 003, Fig. 11)"
                 + ("" if drawn else f": {EMPTY}"), fontsize=9)
    save_png(fig, png)
