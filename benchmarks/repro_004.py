"""Small-scale reproduction of paper 004 (Nayak, Zhang, Chai, "Bit efficient quantization
for deep neural networks"): data-free PTQ sweeps (Table 1), class grouping (Table 2),
power-of-two bit-levels (Tables 1 and 3c), compressed sizes (Table 5), bit efficiency
and the weight plots (Figs. 1-2), and the knee bit width (Fig. 4).

    .venv/bin/python benchmarks/repro_004.py [--quick] [--out DIR] [--threads N]

The paper's formulas take the min / max of the whole tensor, so the table compared with
the paper quantizes per tensor; per output channel is the extra column. Its Uniform-ASYMM
formula, code = round((w - min)(2^n - 1) / (max - min)), value = min + code (max - min) /
(2^n - 1), is lowbit's "range" scheme; lowbit's "asymmetric" scheme (integer zero point,
range widened to contain 0) is a further row.

The paper's ResNet-18/CIFAR-10 and ImageNet models are out of reach on 2 CPU cores, so
this runs on CNNs trained on Fashion-MNIST: the cached `lowbit.models.pretrained("lenet5")`
and a small VGG with BatchNorm (width 8, 20k training images; trained once and cached,
about two minutes). --quick trains a LeNet-5 on 3000 images for three epochs and tests it
at 4, 3 and 2 bits on 500 images, for the test suite. Writes <out>/repro_004.md, repro_004_*.csv and
repro_004_*.png.
"""
import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

import lowbit as lb
from lowbit import analysis as A
from lowbit.analysis.bit_efficiency import plot_bit_efficiency

import _paper_004 as paper
from _repro_report import atomic_write, cpu_model, rows_to_csv
from _timing import set_threads

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
MAIN = ("range", "symmetric", "pow2")        # the paper's three schemes
SCHEMES = MAIN + ("asymmetric",)             # ... and lowbit's zero-point asymmetric
NAMES = {"range": "Uniform-ASYMM (paper formula, `range`)", "symmetric": "Uniform-SYMM (max-abs)",
         "pow2": "Power-of-2", "asymmetric": "lowbit `asymmetric` (zero point, range widened to 0)"}
SHORT = {"range": "ASYMM", "symmetric": "SYMM", "pow2": "pow2", "asymmetric": "lowbit asym"}
PAPER_KEY = {"range": "asymmetric", "symmetric": "symmetric"}   # paper.T1's names
GRANULARITIES = ("tensor", "channel")        # the first is the one compared with the paper
UPPER_BODY = [0, 2, 4, 6]   # T-shirt/top, Pullover, Coat, Shirt: the natural Fashion-MNIST group
GROUP_BITS = (3, 2)
MAX_GROUP = 4               # no group larger than the upper-body one: a broken model would merge all
KIB = 1024


# ---- models and data ------------------------------------------------------------------------

def load_models(quick: bool) -> Dict[str, nn.Module]:
    if quick:
        torch.manual_seed(0)
        x, y = lb.data.load_fashion_mnist("train", limit=3000, normalize=True)
        model = lb.models.LeNet5()
        lb.models.train_classifier(model, x, y, epochs=3, lr=0.05, progress=False)
        return {"LeNet-5 (quick)": model.eval()}
    return {"LeNet-5": lb.models.pretrained("lenet5"),
            "SmallVGG-8 (BN)": lb.models.pretrained("vgg", width=8, train_size=20000, epochs=4)}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.split(" (")[0].lower()).strip("_")


def kib(n: int) -> str:
    return f"{n / KIB:.1f}"


# ---- Table 1: the sweep ---------------------------------------------------------------------

def sweep(name: str, model: nn.Module, evaluate, bits: Sequence[int], granularity: str,
          out: Path) -> List[A.SweepRow]:
    tail = "" if granularity == GRANULARITIES[0] else f"_{granularity}"
    return A.accuracy_size_table(model, evaluate, SCHEMES, bits, png=out / f"repro_004_sweep_{slug(name)}{tail}.png",
                                 granularity=granularity)


def acc_of(rows: List[A.SweepRow], scheme: str, bits: int) -> float:
    return next((r.accuracy for r in rows if r.scheme == scheme and r.bits == bits), float("nan"))


def paper_t1_lines(bits: Sequence[int]) -> List[str]:
    lines = []
    for s in ("range", "symmetric"):
        t = paper.T1[PAPER_KEY[s]]
        cells = [f"{t[b][0]:.2f} ({t[b][1]})" if b in t else "" for b in bits]
        lines.append(f"| paper, ResNet-18 CIFAR-10, {NAMES[s]} (Mb) | {paper.T1_FLOAT} ({paper.T1_FLOAT_SIZE}) | "
                     + " | ".join(cells) + " |")
    return lines


def table1_markdown(name: str, by_gran: Dict[str, List[A.SweepRow]], bits: Sequence[int]) -> List[str]:
    main, extra = GRANULARITIES
    rows = by_gran[main]
    base = rows[0]
    by = {(r.scheme, r.bits): r for r in rows}
    lines = [f"### {name}: accuracy % (packed file KiB), per tensor", "",
             "| scheme | FP32 | " + " | ".join(f"{b}-bit" for b in bits) + " |",
             "|---" * (len(bits) + 2) + "|"]
    for s in SCHEMES:
        cells = [f"{by[s, b].accuracy:.2f} ({kib(by[s, b].sizes.packed)})" for b in bits]
        lines.append(f"| {NAMES[s]} | {base.accuracy:.2f} ({kib(base.sizes.float32)}) | " + " | ".join(cells) + " |")
    lines += paper_t1_lines(bits)
    lines += ["", f"### {name}: accuracy %, per tensor against per output channel", "",
              "| scheme | " + " | ".join(f"{b}-bit {g}" for b in bits for g in (main, extra)) + " |",
              "|---" * (2 * len(bits) + 1) + "|"]
    for s in SCHEMES:
        cells = [f"{acc_of(by_gran[g], s, b):.2f}" for b in bits for g in (main, extra)]
        lines.append(f"| {NAMES[s]} | " + " | ".join(cells) + " |")
    lines += ["", f"Sizes of {name} in KiB, per tensor, real bytes of lowbit's file format: float32 "
              f"{kib(base.sizes.float32)}; packed = codes at their bit width + parameters, then that file "
              "compressed; 'as float' = the quantized values stored as float32 and compressed "
              "(paper 004's way of storing quantized models).", "",
              "| scheme | bits | packed | packed+gzip | packed+LZMA | as float+gzip | as float+LZMA | float32 / packed |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows[1:]:
        z = r.sizes
        lines.append(f"| {r.scheme} | {r.bits} | {kib(z.packed)} | {kib(z.packed_gzip)} | {kib(z.packed_lzma)} | "
                     f"{kib(z.values_gzip)} | {kib(z.values_lzma)} | {z.float32 / z.packed:.1f}x |")
    return lines + [""]


def paper_rows() -> List[A.SweepRow]:
    """Paper 004's Table 1 as sweep rows (its ASYMM under the name `range`), so its knee
    comes from the same rule as ours."""
    z = A.ModelSizes(0, 0, 0, 0, 0, 0)
    ours = {v: k for k, v in PAPER_KEY.items()}
    return [A.SweepRow("float32", 32, paper.T1_FLOAT, z)] + [
        A.SweepRow(ours[s], b, acc, z) for s, table in paper.T1.items() for b, (acc, _) in table.items()]


def knee_markdown(results: Dict[str, Dict[str, List[A.SweepRow]]]) -> List[str]:
    lines = ["## The knee (Fig. 4)", "",
             "Knee = the lowest bit width whose accuracy, and that of every wider width, stays "
             "within the given drop of float (`lowbit.analysis.knee_bits`). The paper sees the knee "
             f"at {paper.KNEE_BITS} bits for every ImageNet model (ASYMM); its Table 1 (ResNet-18, "
             "CIFAR-10) gives the values in the last rows by the same rule.", "",
             "| model | granularity | scheme | knee, 1-point drop | knee, 4-point drop | largest single-step drop |",
             "|---|---|---|---|---|---|"]
    named = [(g, n, rows) for g in GRANULARITIES for n, rows in results[g].items()]
    named.append(("tensor", "paper: ResNet-18 CIFAR-10", paper_rows()))
    for g, name, rows in named:
        for s in SCHEMES:
            rs = sorted((r for r in rows if r.scheme == s), key=lambda r: -r.bits)
            if not rs:
                continue
            drops = [(a.accuracy - b.accuracy, b.bits) for a, b in zip(rs, rs[1:])]
            worst = max(drops) if drops else (0.0, None)
            knees = [A.knee_bits(rows, s, d) for d in (1.0, 4.0)]
            knees = ["none (the widest already loses more)" if k is None else k for k in knees]
            lines.append(f"| {name} | {g} | {NAMES[s]} | {knees[0]} | {knees[1]} | "
                         f"{worst[0]:.1f} points, to {worst[1]} bits |")
    return lines + [""]


# ---- Table 2: class grouping ----------------------------------------------------------------

def grouping(name: str, model: nn.Module, x, y, out: Path, draw: bool) -> List[dict]:
    classes = list(lb.data.FASHION_MNIST_CLASSES)
    cm_float = A.confusion_matrix(model, x, y, num_classes=10)
    rows = []
    for scheme in MAIN:
        for bits in GROUP_BITS:
            cm = A.confusion_matrix(lb.ptq(model, scheme, bits, GRANULARITIES[0]), x, y, num_classes=10)
            png = out / "repro_004_grouping.png" if draw and scheme == "range" and bits == 3 else None
            found = A.class_grouping(cm, classes, threshold=0.05, max_group_size=MAX_GROUP, png=png,
                                     title=f"{name}, {bits}-bit {SHORT[scheme]} per tensor: confusions and clustering")
            fixed = A.class_grouping(cm, classes, groups=[UPPER_BODY])
            rows.append({"model": name, "scheme": scheme, "bits": bits, "granularity": GRANULARITIES[0],
                         "float": round(A.grouped_accuracy(cm_float), 2),
                         "before": round(found.accuracy_before, 2),
                         "after_found_groups": round(found.accuracy_after, 2),
                         "float_found_groups": round(A.grouped_accuracy(cm_float, found.groups), 2),
                         "found_groups": "; ".join(n for n in found.names if "/" in n) or "(none)",
                         "after_upper_body": round(fixed.accuracy_after, 2),
                         "float_upper_body": round(A.grouped_accuracy(cm_float, [UPPER_BODY]), 2)})
    return rows


def table2_markdown(rows: List[dict]) -> List[str]:
    lines = ["## Class grouping (Table 2)", "",
             "Per tensor. Groups found by average-linkage clustering of the quantized model's confusion "
             "matrix (merge while the two groups' mutual confusion rate is at least 5 %, groups of at most "
             f"{MAX_GROUP} classes), and the fixed "
             "upper-body group T-shirt/top + Pullover + Coat + Shirt. 'after' counts a prediction "
             "inside the true class's group as right; the float model is scored with the same groups.", "",
             "| model | scheme | bits | float | before grouping | after (found groups) | float, same groups | "
             "groups found | after (upper-body group) | float, upper-body group |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {NAMES[r['scheme']]} | {r['bits']} | {r['float']:.2f} | {r['before']:.2f} | "
                     f"{r['after_found_groups']:.2f} | {r['float_found_groups']:.2f} | {r['found_groups']} | "
                     f"{r['after_upper_body']:.2f} | {r['float_upper_body']:.2f} |")
    lines += ["", "Paper 004 (ResNet-18, CIFAR-10, 3 bits, grouping cat + dog): "
              + "; ".join(f"{NAMES['range' if s == 'asymmetric' else s]}: float {f}, before {b}, after {a}"
                          for s, (f, b, a) in paper.T2.items())
              + " (its power-of-two row is the unbounded quantizer, not 3 bits).", ""]
    return lines


# ---- power-of-two bit-levels, compression, bit efficiency -----------------------------------

def pow2_rows(name: str, model: nn.Module, evaluate) -> List[dict]:
    rows = []
    for coverage in (1.0, 0.99):
        s = A.pow2_bit_levels(model, coverage=coverage)
        need = max(r.bits_needed for r in s.layers)
        acc = evaluate(lb.ptq(model, "pow2", min(8, need), GRANULARITIES[0]))
        rows.append({"model": name, "coverage": coverage, "average_bit_levels": round(s.average_bit_levels, 2),
                     "weighted_bit_levels": round(s.weighted_bit_levels, 2),
                     "average_bits_needed": round(s.average_bits_needed, 2), "max_bits_needed": need,
                     "accuracy_at_max_bits_needed": round(acc, 2)})
    return rows


def pow2_markdown(rows: List[dict], float_acc: Dict[str, float]) -> List[str]:
    lines = ["## Power-of-two: average bit-levels (Tables 1 and 3c)", "",
             "Bit-levels of a layer = 1 + log2(n + 1): a sign bit plus codes for its n exponents "
             "(from the largest used down to the smallest, unbounded rounding) and zero "
             "(`lowbit.analysis.pow2_bit_levels`). Averaged over layers as in the paper, and weighted by "
             "parameters. With coverage 0.99 the smallest exponents holding 1 % of the weights are "
             "flushed to zero. The accuracy column quantizes every layer per tensor at the largest bits "
             "needed, which equals unbounded power-of-two rounding for coverage 1.", "",
             "| model | coverage | avg bit-levels | weighted | avg bits needed | max bits needed | "
             "float acc | pow2 acc at max bits |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['coverage']} | {r['average_bit_levels']:.2f} | {r['weighted_bit_levels']:.2f} | "
                     f"{r['average_bits_needed']:.2f} | {r['max_bits_needed']} | {float_acc[r['model']]:.2f} | "
                     f"{r['accuracy_at_max_bits_needed']:.2f} |")
    lines += ["", f"Paper: ResNet-18 CIFAR-10 {paper.T1_POW2[0]} % (float {paper.T1_FLOAT}), average bit-levels "
              f"{paper.T1_POW2[1]}; ImageNet (Table 3c): "
              + "; ".join(f"{m} {v[2]}" + (f" ({v[1]} % vs {v[0]} %)" if v[1] else "") for m, v in paper.T3C.items()), ""]
    return lines


def lzma_saving(z: A.ModelSizes) -> float:
    """(gzip - LZMA) / gzip of the 'as float' file, %: the last column of the paper's Table 5."""
    return 100 * (z.values_gzip - z.values_lzma) / z.values_gzip


def compression_markdown(results: Dict[str, List[A.SweepRow]], bits: int) -> List[str]:
    lines = [f"## Compression at {bits} bits, per tensor (Table 5)", "",
             "KiB. 'as float' stores the quantized values as float32 (as the paper does) and compresses "
             "the file; 'packed' stores codes at their bit width. Δ = (gzip − LZMA) / gzip of the 'as float' "
             "file, the paper's last column (its 7-zip is LZMA).", "",
             "| model | scheme | float32 | as float+gzip | as float+LZMA | Δ | float32 / (as float+gzip) | "
             "packed | packed+gzip | packed+LZMA |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        by = {(r.scheme, r.bits): r.sizes for r in rows}
        for s in ("range", "pow2"):
            if (s, bits) not in by:
                continue
            z = by[s, bits]
            lines.append(f"| {name} | {SHORT[s]} | {kib(z.float32)} | {kib(z.values_gzip)} | {kib(z.values_lzma)} | "
                         f"{lzma_saving(z):.1f} % | {z.float32 / z.values_gzip:.1f}x | {kib(z.packed)} | "
                         f"{kib(z.packed_gzip)} | {kib(z.packed_lzma)} |")
    for (m, s), (b, g, z) in paper.T5.items():
        lines.append(f"| paper: {m} (MB) | {s} | {b} | {g} | {z} | {100 * (g - z) / g:.1f} % | {b / g:.1f}x | | | |")
    return lines + [""]


# ---- the claims ------------------------------------------------------------------------------

def _loss(rows: List[A.SweepRow], scheme: str, bits: int) -> float:
    return rows[0].accuracy - acc_of(rows, scheme, bits)


def _per_model(results: Dict[str, List[A.SweepRow]], fmt) -> str:
    return "; ".join(f"{n}: {fmt(rows)}" for n, rows in results.items())


def _verdict(ok: bool, why_yes: str, why_no: str) -> str:
    return f"reproduced: {why_yes}" if ok else f"not reproduced: {why_no}"


def claims(results: Dict[str, Dict[str, List[A.SweepRow]]], groups: List[dict], pow2: List[dict],
           bits: Sequence[int]) -> List[dict]:
    """Paper 004's claims, its number, ours per tensor (the comparison) and per channel
    (the extra column), and a verdict computed from the per-tensor numbers by the stated rule."""
    T, C = (results[g] for g in GRANULARITIES)
    T1, F = paper.T1, paper.T1_FLOAT
    wide = [b for b in bits if b >= 4]
    out = []

    def add(claim, paper_value, ours_t, ours_c, verdict):
        out.append({"claim": claim, "paper": paper_value, "ours_per_tensor": ours_t,
                    "ours_per_channel": ours_c, "verdict": verdict})

    def worst_wide(rows, s):
        return max(_loss(rows, s, b) for b in wide)

    for s, tol in (("range", 1.0), ("symmetric", 1.5)):
        p = max(F - T1[PAPER_KEY[s]][b][0] for b in (8, 7, 6, 5, 4))
        fmt = lambda rows, s=s: f"{worst_wide(rows, s):.1f}"  # noqa: E731
        worst = max(worst_wide(rows, s) for rows in T.values())
        add(f"{SHORT[s]} stays within {tol:g} point(s) of float from 8 down to 4 bits (largest loss, points)",
            f"{p:.2f}", _per_model(T, fmt), _per_model(C, fmt),
            _verdict(worst <= tol, f"largest loss {worst:.1f} points", f"loses {worst:.1f} points"))
    for s in ("range", "symmetric"):
        p = F - T1[PAPER_KEY[s]][3][0]
        fmt = lambda rows, s=s: f"{_loss(rows, s, 3):.1f}"  # noqa: E731
        worst = max(_loss(rows, s, 3) for rows in T.values())
        add(f"{SHORT[s]} at 3 bits without a drastic loss (loss, points; rule: at most the paper's worst "
            "3-bit loss, 4.9)", f"{p:.2f}", _per_model(T, fmt), _per_model(C, fmt),
            _verdict(worst <= 4.94 + 0.05, f"largest loss {worst:.1f} points",
                     f"loses {worst:.1f} points, more than the paper's worst 4.9"))
    if 2 in bits:
        fmt = lambda rows: f"{acc_of(rows, 'range', 2):.1f} %"  # noqa: E731
        collapsed = [acc_of(rows, "range", 2) < rows[0].accuracy / 2 for rows in T.values()]
        add("ASYMM collapses at 2 bits (accuracy; rule: below half of float)", f"{T1['asymmetric'][2][0]} %",
            _per_model(T, fmt), _per_model(C, fmt),
            _verdict(all(collapsed), "below half of float on every model",
                     "keeps more than half of float on " + ", ".join(
                         n for n, c in zip(T, collapsed) if not c)))
        fmt = lambda rows: f"{acc_of(rows, 'symmetric', 2):.1f} %"  # noqa: E731
        kept = [rows[0].accuracy - acc_of(rows, "symmetric", 2) <= 2 * (F - T1["symmetric"][2][0])
                for rows in T.values()]
        add("SYMM keeps most of its accuracy at 2 bits (accuracy; rule: loss at most twice the paper's 13.6 "
            "points)", f"{T1['symmetric'][2][0]} %", _per_model(T, fmt), _per_model(C, fmt),
            _verdict(all(kept), "within the rule on every model",
                     "loses more on " + ", ".join(n for n, k in zip(T, kept) if not k)
                     + " (max-abs 2-bit SYMM has only the levels -max, 0 and +max)"))
    for b in (3, 2):
        if b not in bits:
            continue
        p = (F - T1["asymmetric"][b][0]) - (F - T1["symmetric"][b][0])
        gap = lambda rows, b=b: _loss(rows, "range", b) - _loss(rows, "symmetric", b)  # noqa: E731
        fmt = lambda rows, gap=gap: f"{gap(rows):+.1f}"  # noqa: E731
        ahead = [gap(rows) > 0 for rows in T.values()]
        add(f"SYMM beats ASYMM at {b} bits (ASYMM loss − SYMM loss, points)", f"{p:+.1f}",
            _per_model(T, fmt), _per_model(C, fmt),
            _verdict(all(ahead), "SYMM ahead on every model", "ASYMM ahead on " + ", ".join(
                n for n, a in zip(T, ahead) if not a)))
    paper_knee = A.knee_bits(paper_rows(), "range", 1.0)
    fmt = lambda rows: str(A.knee_bits(rows, "range", 1.0))  # noqa: E731
    knees = [A.knee_bits(rows, "range", 1.0) for rows in T.values()]
    add("knee of ASYMM (1-point rule): 6 bits on ImageNet (Fig. 4); by the same rule Table 1 gives",
        f"{paper_knee} (ImageNet: {paper.KNEE_BITS})", _per_model(T, fmt), _per_model(C, fmt),
        _verdict(all(k == paper_knee for k in knees), f"{paper_knee} bits as the paper's CIFAR-10 table; the "
                 "ImageNet knee is not testable here (no ImageNet models)",
                 f"knee {knees} against the paper's CIFAR-10 {paper_knee}; ImageNet not testable here"))
    pw = {r["model"]: r for r in pow2 if r["coverage"] == 1.0}
    p_loss = F - paper.T1_POW2[0]
    losses = {n: T[n][0].accuracy - pw[n]["accuracy_at_max_bits_needed"] for n in T}
    add("power of two, unbounded, loses a few points (loss; rule: within a factor 2 of the paper's, "
        f"{p_loss / 2:.1f}-{2 * p_loss:.1f})", f"{p_loss:.1f}",
        "; ".join(f"{n}: {v:.1f}" for n, v in losses.items()), "(per tensor only)",
        _verdict(all(p_loss / 2 <= v <= 2 * p_loss for v in losses.values()), "inside the range",
                 "outside the range on " + ", ".join(n for n, v in losses.items()
                                                     if not p_loss / 2 <= v <= 2 * p_loss)))
    levels = {n: r["average_bit_levels"] for n, r in pw.items()}
    add("power of two needs about 4 average bit-levels (rule: within 1 of the paper's 4)", str(paper.T1_POW2[1]),
        "; ".join(f"{n}: {v:.2f}" for n, v in levels.items()), "(a property of the float weights)",
        _verdict(all(abs(v - paper.T1_POW2[1]) <= 1 for v in levels.values()), "inside the rule",
                 "outside the rule on " + ", ".join(n for n, v in levels.items() if abs(v - paper.T1_POW2[1]) > 1)))
    for s, key in (("range", "asymmetric"), ("pow2", "pow2")):
        pf, pb, pa = paper.T2[key]
        mine = [g for g in groups if g["scheme"] == s and g["bits"] == 3]
        gains = {g["model"]: g["after_found_groups"] - g["before"] for g in mine}
        float_gains = ", ".join(f"{g['float_found_groups'] - g['float']:+.1f}" for g in mine)
        add(f"grouping confused classes raises {SHORT[s]} 3-bit accuracy (gain, points)", f"{pa - pb:+.1f}",
            "; ".join(f"{n}: {v:+.1f}" for n, v in gains.items()), "(per tensor only)",
            _verdict(bool(gains) and all(v > 0 for v in gains.values()),
                     f"a gain on every model (the float model gains {float_gains} from the same groups)",
                     "no gain on " + ", ".join(n for n, v in gains.items() if v <= 0)))
    b6 = 6 if 6 in bits else max(bits)
    sizes = {n: {r.scheme: r.sizes for r in rows if r.bits == b6} for n, rows in T.items()}
    sizes_c = {n: {r.scheme: r.sizes for r in rows if r.bits == b6} for n, rows in C.items()}
    p_u = [100 * (g - z) / g for (m, s), (b, g, z) in paper.T5.items() if s == "uniform"]
    p_p = [100 * (g - z) / g for (m, s), (b, g, z) in paper.T5.items() if s == "pow2"]
    lo, hi = min(p_u + p_p), max(p_u + p_p)
    fmt = lambda sz: "; ".join(f"{n}: ASYMM {lzma_saving(v['range']):.1f} %, pow2 {lzma_saving(v['pow2']):.1f} %"  # noqa: E731
                               for n, v in sz.items())
    inside = [lo <= lzma_saving(v[s]) <= hi for v in sizes.values() for s in ("range", "pow2")]
    add(f"LZMA (7-zip) saves {lo:.1f}-{hi:.1f} % over gzip on the {b6}-bit model stored as float (Table 5)",
        f"{lo:.1f}-{hi:.1f} %", fmt(sizes), fmt(sizes_c),
        _verdict(all(inside), "every saving inside the paper's range",
                 f"{sum(inside)} of {len(inside)} savings inside the paper's range"))
    more = [lzma_saving(v["pow2"]) > lzma_saving(v["range"]) for v in sizes.values()]
    add("7-zip helps power of two more than uniform (pow2 Δ − uniform Δ, points; paper: 2 of 3 models)",
        "; ".join(f"{a - b:+.1f}" for a, b in zip(p_p, p_u)),
        "; ".join(f"{n}: {lzma_saving(v['pow2']) - lzma_saving(v['range']):+.1f}" for n, v in sizes.items()),
        "; ".join(f"{n}: {lzma_saving(v['pow2']) - lzma_saving(v['range']):+.1f}" for n, v in sizes_c.items()),
        _verdict(all(more), "pow2 gains more on every model", "uniform gains more on " + ", ".join(
            n for n, m in zip(sizes, more) if not m)))
    ratio = {n: v["range"].float32 / v["range"].values_gzip for n, v in sizes.items()}
    ratio_c = {n: v["range"].float32 / v["range"].values_gzip for n, v in sizes_c.items()}
    p_r = [b / g for (m, s), (b, g, z) in paper.T5.items() if s == "uniform"]
    add(f"{b6}-bit uniform stored as float + gzip is 5-6x smaller than FP32 (float32 / gzip; rule: at least 5x)",
        ", ".join(f"{r:.1f}x" for r in p_r), "; ".join(f"{n}: {v:.1f}x" for n, v in ratio.items()),
        "; ".join(f"{n}: {v:.1f}x" for n, v in ratio_c.items()),
        _verdict(all(v >= 5 for v in ratio.values()), "at least 5x on every model",
                 "below 5x on " + ", ".join(n for n, v in ratio.items() if v < 5)))
    add("Table 1's model sizes (Mb) per bit width", "2 → 1.4 … 1.11 (ASYMM), 0.76 … 0.223 (SYMM)",
        "packed KiB in Table 1 above", "", "not testable here: the paper's sizes do not follow 32/b and it "
        "does not say how they were stored")
    add("ImageNet accuracy tables (3a-3c), object detection (Table 4), training-aware power of two (Table 6), "
        "bit-shift latency and energy on an i7 and a Raspberry Pi", "Tables 3-4, 6, Section IV.d", "", "",
        "not testable here: no ImageNet, VOC or COCO models, no Raspberry Pi, 2 CPU cores")
    return out


def claims_markdown(rows: List[dict]) -> List[str]:
    lines = ["## The paper's claims against this run", "",
             "Verdicts follow from the per-tensor numbers (the paper's granularity) by the rule in each "
             "claim; the per-channel column is for comparison.", "",
             "| claim (paper 004) | paper | ours, per tensor | ours, per channel | verdict |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['claim']} | {r['paper']} | {r['ours_per_tensor']} | {r['ours_per_channel']} | "
                     f"{r['verdict']} |")
    return lines + [""]


def efficiency(name: str, model: nn.Module, bits: int, out: Path, draw: bool) -> List[dict]:
    per_scheme = {s: A.bit_efficiency(model, lb.ptq(model, s, bits, GRANULARITIES[0])) for s in SCHEMES}
    if draw:
        plot_bit_efficiency(per_scheme, out / "repro_004_bit_efficiency.png",
                            title=f"{name}, {bits}-bit, per tensor, per layer")
    return [{"model": name, "bits": bits, "granularity": GRANULARITIES[0], "scheme": s, "layer": r.name,
             "range_per_bit": round(r.range_per_bit, 4), "density_per_bit": round(r.density_per_bit, 4),
             "levels_used": r.levels_used, "sqnr_db": round(r.sqnr_db, 2)}
            for s, rows in per_scheme.items() for r in rows]


def efficiency_markdown(rows: List[dict]) -> List[str]:
    lines = ["## Bit efficiency per layer (Section III.b)", "",
             "Per tensor. range/bit = share of each channel's float range the quantized values span, "
             "averaged over channels, divided by the bits; density/bit = entropy of the codes / bits "
             "(1 = every code equally used). Cells: range/bit, density/bit, SQNR dB.", ""]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        lines += [f"### {model}, {mine[0]['bits']} bits", "",
                  "| layer | " + " | ".join(NAMES[s] for s in SCHEMES) + " |", "|---" * (len(SCHEMES) + 1) + "|"]
        for layer in dict.fromkeys(r["layer"] for r in mine):
            cells = {r["scheme"]: f"{r['range_per_bit']:.3f}, {r['density_per_bit']:.3f}, {r['sqnr_db']:.1f}"
                     for r in mine if r["layer"] == layer}
            lines.append(f"| {layer} | " + " | ".join(cells[s] for s in SCHEMES) + " |")
        lines.append("")
    return lines


def figures(model: nn.Module, layer: str, out: Path) -> None:
    """Fig. 1 (per-channel quartiles) and Fig. 2 (histograms) for one layer, per tensor."""
    g = GRANULARITIES[0]
    w = A.layer_tensor(model, layer)
    at4 = {f"{SHORT[s]} 4-bit": A.layer_tensor(lb.ptq(model, s, 4, g), layer) for s in MAIN}
    A.channel_quartiles({"float32": w, **at4}, png=out / "repro_004_fig1_quartiles.png",
                        title=f"{layer}: per-channel quartiles (per-tensor quantizers)")
    A.weight_histograms({"float32": w, **at4}, png=out / "repro_004_fig2_hist_schemes.png",
                        title=f"{layer}: weights by scheme (4 bits, per tensor)")
    by_bits = {"float32": w, **{f"ASYMM {b}-bit": A.layer_tensor(lb.ptq(model, "range", b, g), layer)
                                for b in (8, 6, 4, 3, 2)}}
    A.weight_histograms(by_bits, png=out / "repro_004_fig2_hist_bits.png",
                        title=f"{layer}: weights by bit width (paper's ASYMM, per tensor)")


# ---- the run --------------------------------------------------------------------------------

def machine() -> str:
    return f"{cpu_model()}, {lb.kernel_isa()} kernels, torch {torch.__version__}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model and test set (for the test suite)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=0, help="torch and lowbit threads (default: lowbit's default)")
    args = ap.parse_args(argv)
    t0 = time.time()
    threads = set_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bits = (4, 3, 2) if args.quick else paper.T1_BITS
    x, y = lb.data.load_fashion_mnist("test", limit=500 if args.quick else None, normalize=True)
    evaluate = lambda m: lb.models.accuracy(m, x, y)  # noqa: E731
    models = load_models(args.quick)
    results: Dict[str, Dict[str, List[A.SweepRow]]] = {g: {} for g in GRANULARITIES}
    groups, pow2, eff = [], [], []
    for i, (name, model) in enumerate(models.items()):
        for g in GRANULARITIES:
            print(f"{name}: sweep per {g}", flush=True)
            results[g][name] = sweep(name, model, evaluate, bits, g, out)
        groups += grouping(name, model, x, y, out, draw=i == 0)
        pow2 += pow2_rows(name, model, evaluate)
        eff += efficiency(name, model, 4, out, draw=i == 0)
        if i == 0:
            figures(model, "features.3.weight", out)
    found = claims(results, groups, pow2, bits)
    sweep_rows = [{"model": n, "granularity": g, **r.as_dict()} for g in GRANULARITIES
                  for n, rows in results[g].items() for r in rows]
    for stem, rows in (("table1", sweep_rows), ("table2", groups), ("pow2_levels", pow2), ("bit_efficiency", eff),
                       ("claims", found)):
        atomic_write(out / f"repro_004_{stem}.csv", rows_to_csv(rows, float_format=None))

    command = ".venv/bin/python benchmarks/repro_004.py" + (" --quick" if args.quick else "")
    main_rows = results[GRANULARITIES[0]]
    float_acc = {n: rows[0].accuracy for n, rows in main_rows.items()}
    md = ["# Paper 004: small-scale reproduction", "",
          f"Command (from the repository root): `{command}`. Machine: {machine()}, {threads} thread(s). "
          f"Date: {datetime.date.today().isoformat()}. Run time {time.time() - t0:.0f} s.", "",
          "Data-free PTQ (`lowbit.ptq`) of every Conv / Linear weight and BatchNorm gamma and beta, the "
          "output layer included (as in the paper); biases and BN statistics stay float. The paper's "
          "formulas take the min / max (or max |w|) of the whole tensor, so the tables compared with the "
          "paper quantize **per tensor**; per output channel is the extra column (BatchNorm stays per "
          "tensor in both). ASYMM = the paper's formula code = round((w − min)(2^b − 1) / (max − min)), "
          "value = min + code (max − min) / (2^b − 1) (lowbit's `range` scheme, 2^b levels); lowbit's "
          "`asymmetric` (integer zero point, range widened to contain 0) is a further row; SYMM = max-abs "
          "step (2^b − 1 levels); power-of-2 = sign bit + 2^(b−1) − 1 exponents + zero. Test accuracy on "
          f"{len(y)} Fashion-MNIST test images. Models: "
          + ", ".join(f"{n} ({sum(p.numel() for p in m.parameters()):,} parameters, float {float_acc[n]:.2f} %)"
                      for n, m in models.items()) + ".", ""]
    md += claims_markdown(found) + ["## Accuracy and size (Table 1)", ""]
    for name in models:
        md += table1_markdown(name, {g: results[g][name] for g in GRANULARITIES}, bits)
    md += knee_markdown(results) + table2_markdown(groups) + pow2_markdown(pow2, float_acc)
    md += compression_markdown(main_rows, 6 if 6 in bits else bits[0]) + efficiency_markdown(eff)
    md += ["## Figures", "",
           "- `repro_004_sweep_<model>.png` (per tensor) and `repro_004_sweep_<model>_channel.png`: accuracy and "
           "file size against bits (Table 1, Fig. 4)",
           "- `repro_004_fig1_quartiles.png`: per-channel quartiles of LeNet-5's second conv layer, float and "
           "4-bit per tensor (Fig. 1)",
           "- `repro_004_fig2_hist_schemes.png`, `repro_004_fig2_hist_bits.png`: weight histograms by scheme and "
           "by bit width (Fig. 2)",
           "- `repro_004_grouping.png`: confusion matrix at 3-bit ASYMM per tensor and the class clustering tree "
           "(Fig. 3, Table 2)",
           "- `repro_004_bit_efficiency.png`: range/bit and density/bit per layer at 4 bits per tensor", ""]
    atomic_write(out / "repro_004.md", "\n".join(md) + "\n")
    print(f"wrote {out}/repro_004.md, .csv and .png files ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
