"""The figures of repro_capacity.py's page. Each takes the steps' results and writes one
PNG (atomically, through lowbit's plotting helper); a figure with nothing finished to
show says so in its title instead of being left out."""
from pathlib import Path
from typing import Dict, List, Optional

import lowbit.capacity as cap
from _repro_capacity_plan import (FAMILIES, PAPER_CNN_CONV, PAPER_FCDNN_MEAN, PAPER_FCDNN_RANGE,
                                  PAPER_LSTM)
from lowbit.analysis._plot import pyplot, save_png

EMPTY = "no finished units yet"


def _plain_ticks(ax) -> None:
    """Log-scaled x axis labelled with plain numbers, no crowded minor labels."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def curves(results: Dict[str, Dict], png: Path) -> None:
    """Paper 001's Fig. 2(a) per network, seed 0: information and accuracy against N, both
    per parameter; the line joins the best training at each N."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    drawn = 0
    for i, r in enumerate(results.values()):
        own = [t for t in r["trainings"] if t["seed"] == 0]
        if not own:
            continue
        drawn += 1
        best: Dict[int, Dict] = {}
        for t in own:
            if t["n"] not in best or t["mi"] > best[t["n"]]["mi"]:
                best[t["n"]] = t
        ns = sorted(best)
        p = r["params"]
        axes[0].plot([n / p for n in ns], [best[n]["mi"] / p for n in ns], "o-", ms=3, color=f"C{i % 10}",
                     label=r["name"])
        axes[1].plot([n / p for n in ns], [best[n]["accuracy"] for n in ns], "o-", ms=3, color=f"C{i % 10}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("N / parameters")
    axes[0].set_ylabel("mutual information / parameter (bits)")
    axes[1].set_ylabel("best training accuracy")
    if drawn:
        axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("Memorization against samples per parameter, seed 0 (paper 001, Fig. 2a)"
                 + ("" if drawn else f": {EMPTY}"), fontsize=10)
    save_png(fig, png)


def bits_vs_params(rows: List[Dict], png: Path) -> None:
    """Paper 001's Fig. 2(b): bits per parameter (per convolution parameter for CNNs)
    against the parameter count, mean and spread over seeds, beside the paper's values."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    marks = {"fcdnn": "o", "cnn": "s", "lstm": "^"}
    drawn = 0
    for i, fam in enumerate(FAMILIES):
        for done in (True, False):   # unfinished networks (their trainings so far): open markers
            own = [r for r in rows if r["family"] == fam and r["bits_per_param"] is not None
                   and (r["status"] == "done") == done]
            if not own:
                continue
            drawn += 1
            ys = [r["conv_bits_per_param"] if fam == "cnn" else r["bits_per_param"] for r in own]
            es = [(r["conv_bits_std"] if fam == "cnn" else r["bits_std"]) or 0 for r in own]
            ax.errorbar([r["params"] for r in own], ys, yerr=es, fmt=marks[fam], color=f"C{i}", capsize=3,
                        mfc=None if done else "none",
                        label=fam.upper() + (" (per conv param)" if fam == "cnn" else "")
                        + ("" if done else ", unfinished"))
    ax.axhspan(*PAPER_FCDNN_RANGE, color="C0", alpha=0.08)
    ax.axhline(PAPER_FCDNN_MEAN, color="C0", ls=":", lw=1)
    ax.axhspan(2.86, 3.09, color="C1", alpha=0.08)
    ax.axhline(PAPER_CNN_CONV["A"], color="C1", ls=":", lw=1)
    ax.axhline(PAPER_LSTM["bits"], color="C2", ls=":", lw=1)
    ax.text(0.01, PAPER_LSTM["bits"], " paper LSTM(32)", fontsize=7, va="bottom", transform=ax.get_yaxis_transform())
    ax.text(0.01, PAPER_CNN_CONV["A"], " paper CNN A", fontsize=7, va="top", transform=ax.get_yaxis_transform())
    ax.text(0.01, PAPER_FCDNN_MEAN, " paper FCDNN mean", fontsize=7, va="bottom", transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    _plain_ticks(ax)
    ax.set_xlabel("parameters")
    ax.set_ylabel("capacity / parameter (bits)")
    if drawn:
        ax.legend(fontsize=7)
    ax.set_title("Bits per parameter against size (paper 001, Fig. 2b; shaded: the paper's ranges)"
                 + ("" if drawn else f": {EMPTY}"), fontsize=9)
    save_png(fig, png)


def long_curves(rows: List[Dict], png: Path) -> None:
    """Best accuracy so far against epoch for the long retrainings, one panel per family;
    the dotted line is the capacity phase's epoch cap."""
    plt = pyplot()
    fams = [f for f in FAMILIES if any(r["family"] == f for r in rows)] or list(FAMILIES)
    fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 3.6), squeeze=False)
    drawn = 0
    for ax, fam in zip(axes[0], fams):
        for i, r in enumerate(x for x in rows if x["family"] == fam):
            ax.axvline(r["cap"], color="gray", ls=":", lw=1)
            if r["status"] != "done":
                continue
            drawn += 1
            best, xs, ys = -1.0, [], []
            for e, a in r["record"]["curve"]:
                best = max(best, a)
                xs.append(max(e, 1))
                ys.append(best)
            ax.plot(xs, ys, color=f"C{i}", label=f"{r['name']}, N = {r['n']}")
        ax.set_xscale("log")
        _plain_ticks(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("best training accuracy so far")
        ax.set_title(fam.upper(), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Long retraining at the best N, plateau stop off (dotted: the capacity phase's cap)"
                 + ("" if drawn else f": {EMPTY}"), fontsize=10)
    save_png(fig, png)


def quantization(drops: List[Dict], bits, png: Path) -> None:
    """Paper 001's Fig. 3: accuracy against precision at full and half capacity."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    order = [None] + list(bits)
    drawn = 0
    for ax, regime in zip(axes, ("full", "half")):
        own = [d for d in drops if d["regime"] == regime and d["status"] == "done"]
        for i, d in enumerate(own):
            drawn += 1
            acc = {None: d["float_accuracy"], **d["accuracies"]}
            ax.plot(range(len(order)), [acc[b] for b in order], "o-", color=f"C{i}",
                    label=f"{d['model']}, N = {d['n']}")
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(["float" if b is None else f"{b}-bit" for b in order])
        ax.set_title(f"{regime} capacity", fontsize=9)
        ax.set_ylabel("training accuracy")
        if own:
            ax.legend(fontsize=7)
    fig.suptitle("Quantization in sequence with retraining (paper 001, Fig. 3)" + ("" if drawn else f": {EMPTY}"),
                 fontsize=10)
    save_png(fig, png)


def surfaces(rows: Optional[List[Dict]], draws: int, png: Path) -> None:
    """Paper 001's Fig. 5: loss and accuracy along filter-normalized directions."""
    train, test = {}, {}
    for r in rows or []:
        group = train if r["data"] == "train" else test
        s = group.setdefault(r["model"], {"alpha": [], "loss": [], "accuracy": []})
        for k in ("alpha", "loss", "accuracy"):
            s[k].append(r[k])
    title = (f"LeNet-5 on Fashion-MNIST: f(alpha) = L(theta + alpha d), filter-normalized noise, {draws} draws "
             "(paper 001, Fig. 5)")
    if not rows:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.set_axis_off()
        ax.set_title(f"{title}: {EMPTY}", fontsize=9)
        save_png(fig, png)
        return
    cap.plot_loss_surfaces(train, png, test=test, title=title)

