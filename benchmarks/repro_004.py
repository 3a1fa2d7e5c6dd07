"""Small-scale reproduction of paper 004 (Nayak, Zhang, Chai, "Bit efficient quantization
for deep neural networks"): data-free PTQ sweeps (Table 1), class grouping (Table 2),
power-of-two bit-levels (Tables 1 and 3c), compressed sizes (Table 5), bit efficiency
and the weight plots (Figs. 1-2), and the knee bit width (Fig. 4).

    .venv/bin/python benchmarks/repro_004.py [--quick] [--out DIR]

The paper's ResNet-18/CIFAR-10 and ImageNet models are out of reach on 2 CPU cores, so
this runs on CNNs trained on Fashion-MNIST: the cached `lowbit.models.pretrained("lenet5")`
and a small VGG with BatchNorm (width 8, 20k training images; trained once and cached,
about two minutes). --quick trains a LeNet-5 on 3000 images for three epochs and tests on
1000 images, for the test suite. Writes <out>/repro_004.md, repro_004_*.csv and
repro_004_*.png.
"""
import argparse
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
from _repro_report import atomic_write, rows_to_csv

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SCHEMES = ("asymmetric", "symmetric", "pow2")
NAMES = {"asymmetric": "Uniform-ASYMM", "symmetric": "Uniform-SYMM (max-abs)", "pow2": "Power-of-2"}
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

def sweep(name: str, model: nn.Module, evaluate, bits: Sequence[int], out: Path) -> List[A.SweepRow]:
    return A.accuracy_size_table(model, evaluate, SCHEMES, bits, png=out / f"repro_004_sweep_{slug(name)}.png")


def table1_markdown(name: str, rows: List[A.SweepRow], bits: Sequence[int]) -> List[str]:
    base = rows[0]
    by = {(r.scheme, r.bits): r for r in rows}
    lines = [f"### {name}: accuracy % (packed file KiB)", "",
             "| scheme | FP32 | " + " | ".join(f"{b}-bit" for b in bits) + " |",
             "|---" * (len(bits) + 2) + "|"]
    for s in SCHEMES:
        cells = [f"{by[s, b].accuracy:.2f} ({kib(by[s, b].sizes.packed)})" for b in bits]
        lines.append(f"| {NAMES[s]} | {base.accuracy:.2f} ({kib(base.sizes.float32)}) | " + " | ".join(cells) + " |")
    for s in ("asymmetric", "symmetric"):
        cells = [f"{paper.T1[s][b][0]:.2f} ({paper.T1[s][b][1]})" if b in paper.T1[s] else "" for b in bits]
        lines.append(f"| paper, ResNet-18 CIFAR-10, {NAMES[s]} (Mb) | {paper.T1_FLOAT} ({paper.T1_FLOAT_SIZE}) | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Sizes of {name} in KiB, real bytes of lowbit's file format: float32 "
              f"{kib(base.sizes.float32)}; packed = codes at their bit width + scales, then that file "
              "compressed; 'as float' = the quantized values stored as float32 and compressed "
              "(paper 004's way of storing quantized models).", "",
              "| scheme | bits | packed | packed+gzip | packed+LZMA | as float+gzip | as float+LZMA | float32 / packed |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows[1:]:
        s = r.sizes
        lines.append(f"| {r.scheme} | {r.bits} | {kib(s.packed)} | {kib(s.packed_gzip)} | {kib(s.packed_lzma)} | "
                     f"{kib(s.values_gzip)} | {kib(s.values_lzma)} | {s.float32 / s.packed:.1f}x |")
    return lines + [""]


def paper_rows() -> List[A.SweepRow]:
    """Paper 004's Table 1 as sweep rows, so its knee comes from the same rule as ours."""
    z = A.ModelSizes(0, 0, 0, 0, 0, 0)
    return [A.SweepRow("float32", 32, paper.T1_FLOAT, z)] + [
        A.SweepRow(s, b, acc, z) for s, table in paper.T1.items() for b, (acc, _) in table.items()]


def knee_markdown(results: Dict[str, List[A.SweepRow]]) -> List[str]:
    lines = ["## The knee (Fig. 4)", "",
             "Knee = the lowest bit width whose accuracy, and that of every wider width, stays "
             "within the given drop of float (`lowbit.analysis.knee_bits`). The paper sees the knee "
             f"at {paper.KNEE_BITS} bits for every ImageNet model (ASYMM); its Table 1 (ResNet-18, "
             "CIFAR-10) gives the values in the last rows by the same rule.", "",
             "| model | scheme | knee, 1-point drop | knee, 4-point drop | largest single-step drop |",
             "|---|---|---|---|---|"]
    named = dict(results)
    named["paper: ResNet-18 CIFAR-10"] = paper_rows()
    for name, rows in named.items():
        for s in SCHEMES:
            rs = sorted((r for r in rows if r.scheme == s), key=lambda r: -r.bits)
            if not rs:
                continue
            drops = [(a.accuracy - b.accuracy, b.bits) for a, b in zip(rs, rs[1:])]
            worst = max(drops) if drops else (0.0, None)
            knees = [A.knee_bits(rows, s, d) for d in (1.0, 4.0)]
            knees = ["none (the widest already loses more)" if k is None else k for k in knees]
            lines.append(f"| {name} | {NAMES[s]} | {knees[0]} | {knees[1]} | "
                         f"{worst[0]:.1f} points, to {worst[1]} bits |")
    return lines + [""]


# ---- Table 2: class grouping ----------------------------------------------------------------

def grouping(name: str, model: nn.Module, x, y, out: Path, draw: bool) -> List[dict]:
    classes = list(lb.data.FASHION_MNIST_CLASSES)
    cm_float = A.confusion_matrix(model, x, y, num_classes=10)
    rows = []
    for scheme in SCHEMES:
        for bits in GROUP_BITS:
            cm = A.confusion_matrix(lb.ptq(model, scheme, bits), x, y, num_classes=10)
            png = out / "repro_004_grouping.png" if draw and scheme == "asymmetric" and bits == 3 else None
            found = A.class_grouping(cm, classes, threshold=0.05, max_group_size=MAX_GROUP, png=png,
                                     title=f"{name}, {bits}-bit {NAMES[scheme]}: confusions and clustering")
            fixed = A.class_grouping(cm, classes, groups=[UPPER_BODY])
            rows.append({"model": name, "scheme": scheme, "bits": bits,
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
             "Groups found by average-linkage clustering of the quantized model's confusion matrix "
             "(merge while the two groups' mutual confusion rate is at least 5 %, groups of at most "
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
              + "; ".join(f"{NAMES[s]}: float {f}, before {b}, after {a}" for s, (f, b, a) in paper.T2.items())
              + " (its power-of-two row is the unbounded quantizer, not 3 bits).", ""]
    return lines


# ---- power-of-two bit-levels, compression, bit efficiency -----------------------------------

def pow2_rows(name: str, model: nn.Module, evaluate) -> List[dict]:
    rows = []
    for coverage in (1.0, 0.99):
        s = A.pow2_bit_levels(model, coverage=coverage)
        need = max(r.bits_needed for r in s.layers)
        acc = evaluate(lb.ptq(model, "pow2", min(8, need)))
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
             "flushed to zero. The accuracy column quantizes every layer at the largest bits needed, "
             "which equals unbounded power-of-two rounding for coverage 1.", "",
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


def compression_markdown(results: Dict[str, List[A.SweepRow]], bits: int) -> List[str]:
    lines = [f"## Compression at {bits} bits (Table 5)", "",
             "KiB. 'as float' stores the quantized values as float32 (as the paper does) and compresses "
             "the file; 'packed' stores codes at their bit width. Δ = (gzip − LZMA) / gzip of the 'as float' "
             "file, the paper's last column (its 7-zip is LZMA).", "",
             "| model | scheme | float32 | as float+gzip | as float+LZMA | Δ | packed | packed+gzip | packed+LZMA |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        by = {(r.scheme, r.bits): r.sizes for r in rows}
        for s in ("asymmetric", "pow2"):
            if (s, bits) not in by:
                continue
            z = by[s, bits]
            delta = 100 * (z.values_gzip - z.values_lzma) / z.values_gzip
            lines.append(f"| {name} | {'uniform (asym)' if s == 'asymmetric' else 'pow2'} | {kib(z.float32)} | "
                         f"{kib(z.values_gzip)} | {kib(z.values_lzma)} | {delta:.1f} % | {kib(z.packed)} | "
                         f"{kib(z.packed_gzip)} | {kib(z.packed_lzma)} |")
    for (m, s), (b, g, z) in paper.T5.items():
        lines.append(f"| paper: {m} (MB) | {s} | {b} | {g} | {z} | {100 * (g - z) / g:.1f} % | | | |")
    return lines + [""]


def verdicts_markdown(results: Dict[str, List[A.SweepRow]], groups: List[dict]) -> List[str]:
    """Paper 004's claims next to what this run measured (computed from the numbers)."""
    lines = ["## The paper's claims against this run", "",
             "| claim (paper 004) | paper | ours |", "|---|---|---|"]
    loss = lambda rows, s, b: next(r.accuracy for r in rows if r.scheme == "float32") - next(  # noqa: E731
        (r.accuracy for r in rows if r.scheme == s and r.bits == b), float("nan"))
    p_loss = {(s, b): paper.T1_FLOAT - paper.T1[s][b][0] for s in paper.T1 for b in paper.T1[s]}
    for b in (3, 2):
        ours = "; ".join(f"{n}: " + ", ".join(f"{NAMES[s]} {loss(rows, s, b):.1f}" for s in SCHEMES)
                         for n, rows in results.items())
        lines.append(f"| loss at {b} bits (points) | ASYMM {p_loss['asymmetric', b]:.1f}, SYMM "
                     f"{p_loss['symmetric', b]:.1f} | {ours} |")
    ours = "; ".join(f"{n}: " + ", ".join(f"{b} bits {loss(rows, 'asymmetric', b) - loss(rows, 'symmetric', b):+.1f}"
                                          for b in (3, 2)) for n, rows in results.items())
    lines.append("| SYMM beats ASYMM at low bits (ASYMM loss − SYMM loss) | 3 bits "
                 f"{p_loss['asymmetric', 3] - p_loss['symmetric', 3]:+.1f}, 2 bits "
                 f"{p_loss['asymmetric', 2] - p_loss['symmetric', 2]:+.1f} | {ours} |")
    widest = {n: max(r.bits for r in rows if r.scheme != "float32") for n, rows in results.items()}
    ours = "; ".join(f"{n}: {loss(rows, 'pow2', widest[n]):.1f} at {widest[n]} bits" for n, rows in results.items())
    lines.append(f"| power of two loses a few points at any width (unbounded) | "
                 f"{paper.T1_FLOAT - paper.T1_POW2[0]:.1f} | {ours} |")
    for s in ("asymmetric", "pow2"):
        pf, pb, pa = paper.T2[s]
        ours = "; ".join(f"{g['model']}: {g['after_found_groups'] - g['before']:+.1f}" for g in groups
                         if g["scheme"] == s and g["bits"] == 3)
        lines.append(f"| grouping confused classes raises {NAMES[s]} 3-bit accuracy (points) | {pa - pb:+.1f} | {ours} |")
    return lines + [""]


def efficiency(name: str, model: nn.Module, bits: int, out: Path, draw: bool) -> List[dict]:
    per_scheme = {s: A.bit_efficiency(model, lb.ptq(model, s, bits)) for s in SCHEMES}
    if draw:
        plot_bit_efficiency(per_scheme, out / "repro_004_bit_efficiency.png",
                            title=f"{name}, {bits}-bit, per layer")
    return [{"model": name, "bits": bits, "scheme": s, "layer": r.name, "range_per_bit": round(r.range_per_bit, 4),
             "density_per_bit": round(r.density_per_bit, 4), "levels_used": r.levels_used,
             "sqnr_db": round(r.sqnr_db, 2)} for s, rows in per_scheme.items() for r in rows]


def efficiency_markdown(rows: List[dict]) -> List[str]:
    lines = ["## Bit efficiency per layer (Section III.b)", "",
             "range/bit = share of each channel's float range the quantized values span, averaged over "
             "channels, divided by the bits; density/bit = entropy of the codes / bits (1 = every code "
             "equally used). Cells: range/bit, density/bit, SQNR dB.", ""]
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
    """Fig. 1 (per-channel quartiles) and Fig. 2 (histograms) for one layer."""
    w = A.layer_tensor(model, layer)
    at4 = {f"{s} 4-bit": A.layer_tensor(lb.ptq(model, s, 4), layer) for s in SCHEMES}
    A.channel_quartiles({"float32": w, **at4}, png=out / "repro_004_fig1_quartiles.png",
                        title=f"{layer}: per-channel quartiles")
    A.weight_histograms({"float32": w, **at4}, png=out / "repro_004_fig2_hist_schemes.png",
                        title=f"{layer}: weights by scheme (4 bits)")
    by_bits = {"float32": w, **{f"asymmetric {b}-bit": A.layer_tensor(lb.ptq(model, "asymmetric", b), layer)
                                for b in (8, 6, 4, 3, 2)}}
    A.weight_histograms(by_bits, png=out / "repro_004_fig2_hist_bits.png",
                        title=f"{layer}: weights by bit width (asymmetric)")


# ---- the run --------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model and test set (for the test suite)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bits = (8, 4, 3, 2) if args.quick else paper.T1_BITS
    x, y = lb.data.load_fashion_mnist("test", limit=1000 if args.quick else None, normalize=True)
    evaluate = lambda m: lb.models.accuracy(m, x, y)  # noqa: E731
    models = load_models(args.quick)
    results, groups, pow2, eff = {}, [], [], []
    for i, (name, model) in enumerate(models.items()):
        print(f"{name}: sweep", flush=True)
        results[name] = sweep(name, model, evaluate, bits, out)
        groups += grouping(name, model, x, y, out, draw=i == 0)
        pow2 += pow2_rows(name, model, evaluate)
        eff += efficiency(name, model, 4, out, draw=i == 0)
        if i == 0:
            figures(model, "features.3.weight", out)
    sweep_rows = [{"model": n, **r.as_dict()} for n, rows in results.items() for r in rows]
    for stem, rows in (("table1", sweep_rows), ("table2", groups), ("pow2_levels", pow2), ("bit_efficiency", eff)):
        atomic_write(out / f"repro_004_{stem}.csv", rows_to_csv(rows, float_format=None))

    command = ".venv/bin/python benchmarks/repro_004.py" + (" --quick" if args.quick else "")
    float_acc = {n: rows[0].accuracy for n, rows in results.items()}
    md = ["# Paper 004: small-scale reproduction", "",
          f"Regenerate (from the repository root): `{command}` ({time.time() - t0:.0f} s here, "
          f"{torch.get_num_threads()} torch thread(s)).", "",
          "Data-free PTQ (`lowbit.ptq`): every Conv / Linear weight per output channel, BatchNorm gamma and "
          "beta per tensor, the output layer included (as in the paper); biases and BN statistics float. "
          "ASYMM = min/max with zero point (2^b levels); SYMM = max-abs step (2^b − 1 levels); power-of-2 "
          "= sign bit + 2^(b−1) − 1 exponents + zero. Test accuracy on "
          f"{len(y)} Fashion-MNIST test images. Models: "
          + ", ".join(f"{n} ({sum(p.numel() for p in m.parameters()):,} parameters, float {float_acc[n]:.2f} %)"
                      for n, m in models.items()) + ".", "", "## Accuracy and size (Table 1)", ""]
    for name, rows in results.items():
        md += table1_markdown(name, rows, bits)
    md += knee_markdown(results) + table2_markdown(groups) + pow2_markdown(pow2, float_acc)
    md += compression_markdown(results, 6 if 6 in bits else bits[0]) + efficiency_markdown(eff)
    md += verdicts_markdown(results, groups)
    md += ["## Figures", "", "- `repro_004_sweep_<model>.png`: accuracy and file size against bits (Table 1, Fig. 4)",
           "- `repro_004_fig1_quartiles.png`: per-channel quartiles of LeNet-5's second conv layer, float and 4-bit (Fig. 1)",
           "- `repro_004_fig2_hist_schemes.png`, `repro_004_fig2_hist_bits.png`: weight histograms by scheme and by bit width (Fig. 2)",
           "- `repro_004_grouping.png`: confusion matrix at 3-bit ASYMM and the class clustering tree (Fig. 3, Table 2)",
           "- `repro_004_bit_efficiency.png`: range/bit and density/bit per layer at 4 bits", ""]
    atomic_write(out / "repro_004.md", "\n".join(md) + "\n")
    print(f"wrote {out}/repro_004.md, .csv and .png files ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
