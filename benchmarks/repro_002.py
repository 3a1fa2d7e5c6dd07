"""Small-scale reproduction of paper 002's Tables 1-4 and Fig. 2 (Shin, Boo, Sung 2017,
"Fixed-point optimization of deep neural networks with adaptive step size retraining").

    .venv/bin/python benchmarks/repro_002.py [--tables 1 2 3 4] [--seeds N] [--quick] [--out DIR]

The paper's data (TIMIT, SVHN, English Wikipedia) are not on this machine, so the FFDNN
and CNN tables use Fashion-MNIST and the language-model table the fortunes corpus, at
sizes that fit about one hour on 2 CPU cores (--quick: a couple of minutes, for the test).
Each float model is trained once per seed and cached under <out>/cache/; every quantized
variant starts from a deep copy of it. Writes <out>/repro_002_table{1..4}.csv and .md
(ours next to the paper's numbers) and <out>/repro_002_fig2.png.
"""
import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import lowbit as lb

import _repro_paper as paper
from _repro_report import (atomic_write, compare, degradation, draw_fig2, mean, pivot,
                           row_label, to_csv)
from _repro_train import (ImageExperiment, ImagePlan, Runner, TextExperiment, TextPlan,
                          text_corpus)
from _timing import set_threads

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
BASIC = ("Direct", "Conventional", "Adaptive")
METHODS_TEXT = ("Direct: the float weights quantized, no retraining. Conventional: the step is "
                "QStep of the float weights, fixed during retraining (without ref. [4]'s search "
                "over [Δ/2, 2Δ] on an evaluation set). Adaptive: the step is recomputed by QStep "
                "from the current float weights during retraining.")


@dataclass(frozen=True)
class Plan:
    """Every size of the run: which networks, how much data, how many epochs."""
    ffdnn: ImagePlan
    widths: Sequence[int]         # Table 1
    depth: int                    # hidden layers of the FFDNN
    t2_width: int                 # Table 2's network (paper: 512, no BN)
    fig2_width: int               # Fig. 2's network (paper: 256)
    cnn: ImagePlan
    cnn_widths: Dict[str, int]    # SmallVGG width of the 'C' and 'V' networks
    text: TextPlan
    lstm_sizes: Sequence[int]


# The default sizes: all four tables with --seeds 2 in about 45-50 minutes on this 2-core
# machine. Timed single runs (threads as in AUTO_THREADS) give, per seed: Table 1 ~400 s
# (the width-1024 FFDNN is ~250 s of it: float 26 s, each 3-epoch retraining 16 s), Table 2
# ~55 s (each gradual run 23 s), Table 3 ~490 s (V: float ~87 s, retraining ~34 s) and
# Table 4 ~420 s (size 256: float ~64 s, retraining ~24 s). The machine is shared and
# noisy: expect +-20 %.
FULL = Plan(
    ffdnn=ImagePlan(n_train=15000, n_val=5000, n_test=None, batch_size=128, float_epochs=6,
                    retrain_epochs=3, float_lr=0.05, retrain_lr=0.01),
    widths=(64, 128, 256, 512, 1024), depth=2, t2_width=512, fig2_width=256,
    cnn=ImagePlan(n_train=6000, n_val=2000, n_test=None, batch_size=128, float_epochs=8,
                  retrain_epochs=3, float_lr=0.05, retrain_lr=0.01),
    cnn_widths={"C": 8, "V": 16},
    text=TextPlan(max_chars=200_000, batch_size=64, seq_len=50, eval_batch_size=32,
                  eval_seq_len=100, embed=32, layers=1, float_epochs=6, retrain_epochs=2,
                  float_lr=1e-2, retrain_lr=2.5e-3),
    lstm_sizes=(64, 128, 256),
)

QUICK = Plan(
    ffdnn=ImagePlan(n_train=1000, n_val=500, n_test=1000, batch_size=100, float_epochs=2,
                    retrain_epochs=1, float_lr=0.05, retrain_lr=0.01),
    widths=(64, 256), depth=2, t2_width=64, fig2_width=256,
    cnn=ImagePlan(n_train=500, n_val=250, n_test=500, batch_size=100, float_epochs=1,
                  retrain_epochs=1, float_lr=0.05, retrain_lr=0.01),
    cnn_widths={"C": 4, "V": 8},
    text=TextPlan(max_chars=20_000, batch_size=16, seq_len=32, eval_batch_size=4,
                  eval_seq_len=32, embed=16, layers=1, float_epochs=1, retrain_epochs=1,
                  float_lr=1e-2, retrain_lr=2.5e-3),
    lstm_sizes=(32, 64),
)


@dataclass
class Context:
    plan: Plan
    runner: Runner
    seeds: List[int]
    out: Path
    command: Callable[[int], str]   # table number -> the command that regenerates it
    both_adaptive: bool             # CNN / LSTM: also the epoch-level adaptive variant


# ---- records -------------------------------------------------------------------------------

class Records:
    """Per-seed values gathered into one record per (setting, method, bits)."""

    def __init__(self):
        self._by_key: Dict[tuple, dict] = {}

    def add(self, setting: dict, method: str, bits: Optional[int], value: float,
            paper_value: Optional[float]) -> None:
        key = tuple(setting.items()) + (method, bits)
        rec = self._by_key.setdefault(key, {**setting, "method": method, "bits": bits,
                                            "values": [], "paper": paper_value})
        rec["values"].append(value)

    def all(self) -> List[dict]:
        return list(self._by_key.values())


def write_table(ctx: Context, n: int, records: List[dict], setting_columns: Sequence[str],
                markdown_lines: List[str], seconds: float) -> None:
    stem = ctx.out / f"repro_002_table{n}"
    header = [f"# Paper 002, Table {n}: small-scale reproduction", "",
              f"Regenerate (from the repository root): `{ctx.command(n)}`", "",
              f"Cells: ours, mean ± std over {len(ctx.seeds)} seed(s), then the paper's value "
              "in parentheses. Wall time of this table in this run: "
              f"{seconds:.0f} s (runs reused from an earlier table and cached float models "
              "count zero).", ""]
    atomic_write(stem.with_suffix(".csv"), to_csv(records, setting_columns))
    atomic_write(stem.with_suffix(".md"), "\n".join(header + markdown_lines) + "\n")
    print(f"table {n}: wrote {stem}.csv and .md ({seconds:.0f} s)", flush=True)


def epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def float_range(records: List[dict], unit: str, digits: int = 1) -> str:
    """'float models: ours a-b unit, the paper's c-d unit', from the Float records."""
    floats = [r for r in records if r["bits"] is None]
    ours = [mean(r["values"]) for r in floats]
    papers = [r["paper"] for r in floats if r["paper"] is not None]
    span = lambda v: (f"{min(v):.{digits}f}" if min(v) == max(v)  # noqa: E731
                      else f"{min(v):.{digits}f}-{max(v):.{digits}f}") + unit
    text = f"float models: ours {span(ours)}"
    return text + (f", the paper's {span(papers)}" if papers else "")


def image_setting_text(p: ImagePlan, what: str) -> str:
    return (f"{what} on Fashion-MNIST: {p.n_train} training images (a fixed random subset of "
            f"the 60k), {p.n_val} validation images carved from the rest of the training set "
            f"(they pick the best epoch, for float training and for every retraining), and "
            f"test error on {'the 10k test images' if p.n_test is None else f'{p.n_test} test images'}. "
            f"Float training: {epochs(p.float_epochs)} of SGD with Nesterov momentum 0.9, batch "
            f"{p.batch_size}, lr {p.float_lr:g} halved whenever validation does not improve. "
            f"Retraining: {epochs(p.retrain_epochs)} at lr {p.retrain_lr:g} for every method, "
            "from a copy of the same float model, with the same batches in the same order. "
            "One L2-optimal step (QStep) per layer, symmetric M = 2^b − 1 levels; biases and the "
            "output layer stay float. " + METHODS_TEXT + " Retraining also continues the short "
            "float training, so a retrained model can beat its float start.")


# ---- Table 1 -------------------------------------------------------------------------------

def ffdnn_experiment(plan: Plan, width: int, batch_norm: bool) -> ImageExperiment:
    name = f"ffdnn-w{width}-d{plan.depth}-{'bn' if batch_norm else 'nobn'}"
    build = lambda: lb.models.FFDNN(width=width, depth=plan.depth, batch_norm=batch_norm)  # noqa: E731
    return ImageExperiment(name, build, plan.ffdnn, adaptive_update="epoch")


def collect_table1(ctx: Context) -> List[dict]:
    rec = Records()
    for bn in (False, True):
        for width in ctx.plan.widths:
            exp = ffdnn_experiment(ctx.plan, width, bn)
            setting = {"batch_norm": bn, "width": width}
            for seed in ctx.seeds:
                _, fl = ctx.runner.float_model(exp, seed)
                rec.add(setting, paper.FLOAT, None, fl.metric, paper.table1(bn, width, None, paper.FLOAT))
                for bits in (2, 3, 4):
                    for method in BASIC:
                        r = ctx.runner.quantized(exp, seed, method, bits)
                        rec.add(setting, method, bits, r.metric, paper.table1(bn, width, bits, method))
    return rec.all()


def markdown_table1(ctx: Context, records: List[dict]) -> List[str]:
    where = lambda r: f"{'BN' if r['batch_norm'] else 'no BN'}, width {r['width']}"  # noqa: E731
    layers = " → ".join(["784"] + ["w"] * ctx.plan.depth + ["10"])
    lines = []
    for bn in (False, True):
        lines += [f"## {'With' if bn else 'Without'} batch normalization (test error %)", ""]
        lines += pivot([r for r in records if r["batch_norm"] == bn], "width",
                       list(ctx.plan.widths), row_label, header="size of each layer") + [""]
    lines += ["## Does adaptive beat conventional?", ""]
    lines += compare(records, "Adaptive", "Conventional", where) + [""]
    lines += ["## Gap to the paper", "", "Loss against the float model of the same network "
              "(quantized minus float), averaged over the widths and both BN settings:", ""]
    lines += degradation(records, BASIC, where) + [""]
    lines += ["## Setting", "",
              image_setting_text(ctx.plan.ffdnn, f"FFDNN {layers} (ReLU, {ctx.plan.depth} hidden "
                                 "layers of width w, with and without BN)")
              + " 'Adaptive' is the epoch-level update (QStep after every epoch), as the paper "
              "uses for FFDNNs.", "",
              "The paper trains on TIMIT (11 frames of speech features, 61 labels scored as 39) "
              "to convergence with learning-rate halving; here the task is 10-class Fashion-MNIST "
              "with a few epochs on a subset, so absolute errors are not comparable "
              f"({float_range(records, '%')}). What carries over is the ordering of the methods "
              "and the size of the loss against float; both are computed above from the numbers "
              "of this run."]
    return lines


def draw_fig2_from_runs(ctx: Context) -> None:
    """Paper 002's Fig. 2: step per layer against retraining epoch, adaptive (epoch-level),
    FFDNN of width 256 (or the closest width run), no BN, first seed. Reuses Table 1's runs."""
    width = min(ctx.plan.widths, key=lambda w: abs(w - ctx.plan.fig2_width))
    exp = ffdnn_experiment(ctx.plan, width, False)
    epochs_run = ctx.plan.ffdnn.retrain_epochs
    curves = {}
    for bits in (2, 3, 4):
        steps = ctx.runner.quantized(exp, ctx.seeds[0], "Adaptive", bits).steps
        # history: attach, start (both from the float weights), then one entry per epoch
        curves[bits] = {name: values[-(epochs_run + 1):] for name, values in steps.items()}
    path = ctx.out / "repro_002_fig2.png"
    draw_fig2(path, curves, f"Adaptive step size per layer during retraining, FFDNN width {width}, "
              f"no BN, seed {ctx.seeds[0]} (output layer float, not shown)")
    print(f"fig 2: wrote {path}", flush=True)


# ---- Table 2 -------------------------------------------------------------------------------

T2_BITS = (6, 4, 3, 2)


def collect_table2(ctx: Context) -> List[dict]:
    exp = ffdnn_experiment(ctx.plan, ctx.plan.t2_width, False)
    rec = Records()
    setting = {"width": ctx.plan.t2_width}
    for seed in ctx.seeds:
        _, fl = ctx.runner.float_model(exp, seed)
        rec.add(setting, paper.FLOAT, None, fl.metric, paper.table2(None, paper.FLOAT))
        for method in ("Conventional", "Adaptive"):
            for bits in T2_BITS:
                r = ctx.runner.quantized(exp, seed, method, bits)
                rec.add(setting, method, bits, r.metric, paper.table2(bits, method))
        for adaptive, method in ((False, "Gradual"), (True, "Adaptive & Gradual")):
            stages = ctx.runner.gradual(exp, seed, T2_BITS, adaptive)
            for bits in T2_BITS:
                rec.add(setting, method, bits, stages[bits].metric, paper.table2(bits, method))
    return rec.all()


def markdown_table2(ctx: Context, records: List[dict]) -> List[str]:
    float_rec = next(r for r in records if r["bits"] is None)
    quant = [r for r in records if r["bits"] is not None]
    where = lambda r: f"width {r['width']}"  # noqa: E731
    p = ctx.plan.ffdnn
    lines = [f"## FFDNN, width {ctx.plan.t2_width}, no BN (test error %)", "",
             f"Float: {mean(float_rec['values']):.2f} (paper: {paper.T2_FLOAT}).", ""]
    lines += pivot(quant, "method", list(paper.T2_METHODS), lambda r: f"{r['bits']}-bit",
                   header="precision") + [""]
    lines += ["## Comparisons the paper makes", ""]
    for better, baseline in (("Adaptive", "Conventional"), ("Gradual", "Conventional"),
                             ("Adaptive & Gradual", "Adaptive")):
        lines += compare(records, better, baseline, where) + [""]
    lines += ["## Setting", "",
              image_setting_text(p, f"The Table 1 FFDNN with width {ctx.plan.t2_width}")
              + " Conventional and Adaptive start from the float model at each precision (the "
              "Adaptive runs are Table 1's: epoch-level update). Gradual goes "
              f"{' → '.join(map(str, T2_BITS))} bits with {epochs(p.retrain_epochs)} at each "
              "precision, re-quantizing the current float weights when the precision drops; "
              "Adaptive & Gradual also recomputes the step after every epoch within a precision. "
              "A stage's number is the test error at its best validation epoch; each stage's last "
              "epoch is evaluated before the precision drops. So Gradual at 2 bits has had "
              f"{len(T2_BITS)}x the retraining epochs of Conventional at 2 bits, as in the "
              "paper's scheme.", "",
              "The paper's 6-bit row is one number for all four methods; here each method is run "
              "at 6 bits (Gradual's 6-bit stage is Conventional at 6 bits, Adaptive & Gradual's is "
              "Adaptive at 6 bits, up to evaluation order). Absolute errors are not comparable "
              "with TIMIT's; compare the ordering of the columns."]
    return lines


# ---- Table 3 -------------------------------------------------------------------------------

def cnn_experiments(ctx: Context) -> Dict[str, ImageExperiment]:
    """'L' = LeNet-5 (as in the paper); 'C' and 'V' = small VGG-style CNNs (BN, ReLU) of
    growing width standing in for the paper's cuda-convnet and VGG-style networks."""
    w = ctx.plan.cnn_widths
    builds = {"L": ("lenet5", lb.models.LeNet5),
              "C": (f"vgg-w{w['C']}", lambda: lb.models.SmallVGG(width=w["C"])),
              "V": (f"vgg-w{w['V']}", lambda: lb.models.SmallVGG(width=w["V"]))}
    return {label: ImageExperiment(name, build, ctx.plan.cnn, adaptive_update="first")
            for label, (name, build) in builds.items()}


def methods_run(ctx: Context) -> tuple:
    """Tables 3-4: the basic methods, plus the epoch-level adaptive variant on request."""
    return BASIC + (("Adaptive (epoch)",) if ctx.both_adaptive else ())


def collect_table3(ctx: Context) -> List[dict]:
    rec = Records()
    for net, exp in cnn_experiments(ctx).items():
        setting = {"network": net}
        for seed in ctx.seeds:
            _, fl = ctx.runner.float_model(exp, seed)
            rec.add(setting, paper.FLOAT, None, fl.metric, paper.table3(net, None, paper.FLOAT))
            for bits in (2, 3, 4):
                for method in methods_run(ctx):
                    r = ctx.runner.quantized(exp, seed, method, bits)
                    rec.add(setting, method, bits, r.metric, paper.table3(net, bits, method))
    return rec.all()


def markdown_table3(ctx: Context, records: List[dict]) -> List[str]:
    exps = cnn_experiments(ctx)
    params = {net: sum(p.numel() for p in exp.build().parameters()) for net, exp in exps.items()}
    described = ", ".join(f"{n} = {exps[n].name} ({params[n] / 1e3:.0f}k parameters)" for n in exps)
    where = lambda r: f"network {r['network']}"  # noqa: E731
    lines = ["## CNNs (test error %)", ""]
    lines += pivot(records, "network", list(exps), row_label, header="network") + [""]
    lines += ["## Does adaptive beat conventional?", ""]
    lines += compare(records, "Adaptive", "Conventional", where) + [""]
    if ctx.both_adaptive:
        lines += compare(records, "Adaptive", "Adaptive (epoch)", where) + [""]
    lines += ["## Gap to the paper", ""] + degradation(records, BASIC, where) + [""]
    lines += ["## Setting", "", image_setting_text(ctx.plan.cnn, f"CNNs {described}")
              + " Here 'Adaptive' is '1 epoch update & fix' (QStep after the first retraining "
              "epoch, then frozen), which the paper recommends for CNNs"
              + ("; 'Adaptive (epoch)' is the epoch-level update." if ctx.both_adaptive else "."), "",
              "The paper uses SVHN (32x32 colour house numbers, 600k images) and networks of 60k, "
              "84k and 435k parameters; here the images are 28x28 grey Fashion-MNIST and the "
              "largest network is smaller, to fit the CPU budget. Absolute errors differ "
              f"({float_range(records, '%')}); compare the ordering of the methods and the loss "
              "against float."]
    return lines


# ---- Table 4 -------------------------------------------------------------------------------

T4_BITS = (2, 3, 4, 6)


def collect_table4(ctx: Context) -> List[dict]:
    rec = Records()
    for size in ctx.plan.lstm_sizes:
        exp = TextExperiment(f"lstm-h{size}", size, ctx.plan.text, adaptive_update="first")
        setting = {"hidden": size}
        for seed in ctx.seeds:
            _, fl = ctx.runner.float_model(exp, seed)
            rec.add(setting, paper.FLOAT, None, fl.metric, paper.table4(size, None, paper.FLOAT))
            for bits in T4_BITS:
                for method in methods_run(ctx):
                    r = ctx.runner.quantized(exp, seed, method, bits)
                    rec.add(setting, method, bits, r.metric, paper.table4(size, bits, method))
    return rec.all()


def markdown_table4(ctx: Context, records: List[dict]) -> List[str]:
    p = ctx.plan.text
    corpus = text_corpus(p.max_chars)
    where = lambda r: f"size {r['hidden']}"  # noqa: E731
    lines = ["## Character LSTM (test bits per character)", ""]
    lines += pivot(records, "hidden", list(ctx.plan.lstm_sizes), row_label, digits=3,
                   header="size of each layer") + [""]
    lines += ["## Does adaptive beat conventional?", ""]
    lines += compare(records, "Adaptive", "Conventional", where, digits=3) + [""]
    if ctx.both_adaptive:
        lines += compare(records, "Adaptive", "Adaptive (epoch)", where, digits=3) + [""]
    lines += ["## Gap to the paper", ""] + degradation(records, BASIC, where, digits=3) + [""]
    lines += ["## Setting", "",
              f"CharLSTM (embedding {p.embed}, {p.layers} LSTM layer(s) of the given size, linear "
              f"decoder) on the fortunes corpus: {len(corpus.train):,} training, "
              f"{len(corpus.valid):,} validation and {len(corpus.test):,} test characters "
              f"({corpus.vocab_size} symbols). Training: {p.batch_size} parallel streams, "
              f"truncated BPTT over {p.seq_len} characters, Adam with gradient-norm clipping 1; "
              f"float {epochs(p.float_epochs)} at lr {p.float_lr:g} (halved when validation BPC "
              f"does not improve), retraining {epochs(p.retrain_epochs)} at lr {p.retrain_lr:g} "
              "for every method from a copy of the same float model; the best-validation epoch "
              "is kept. BPC on the test split. All LSTM weight matrices (input-hidden and "
              "hidden-hidden, one step each) are quantized; the embedding, biases and the "
              "decoder stay float. " + METHODS_TEXT + " Here 'Adaptive' is '1 epoch update & "
              "fix', as in the paper.", "",
              "The paper trains 3-layer LSTMs on 100 MB of English Wikipedia with one-hot inputs "
              "(so its first-layer input weights, our embedding, are quantized too) and AdaDelta; "
              "our corpus is far smaller and training far shorter, so our float BPC is higher "
              f"({float_range(records, ' BPC', 3)}) and the gaps need not match. Compare the "
              "ordering of the methods. Retraining also continues the short float training, so "
              "a retrained model can beat its float start."]
    return lines


# ---- running a table -----------------------------------------------------------------------

# table -> (collect the records, lay them out as Markdown, the CSV's setting columns)
TABLES = {1: (collect_table1, markdown_table1, ["batch_norm", "width"]),
          2: (collect_table2, markdown_table2, ["width"]),
          3: (collect_table3, markdown_table3, ["network"]),
          4: (collect_table4, markdown_table4, ["hidden"])}
# Threads per table when --threads is not given. Measured on this 2-core machine: torch's
# Linear and LSTM layers at these sizes train 1.3-5x FASTER on one thread than on two
# (thread synchronization dominates the small matrix products), while the VGG-style
# CNNs gain about 1.5x from the second core. 0 means all CPUs.
AUTO_THREADS = {1: 1, 2: 1, 3: 0, 4: 1}


def run_table(ctx: Context, n: int) -> None:
    collect, markdown, setting_columns = TABLES[n]
    t0 = time.perf_counter()
    records = collect(ctx)
    write_table(ctx, n, records, setting_columns, markdown(ctx, records), time.perf_counter() - t0)
    if n == 1:
        draw_fig2_from_runs(ctx)


# ---- command line --------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3, 4], choices=sorted(TABLES))
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a couple of minutes (for the test)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per setting; mean and std reported")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch and lowbit threads for every table; 0: all CPUs; "
                         "default: the fastest measured here (see AUTO_THREADS)")
    ap.add_argument("--both-adaptive", action="store_true",
                    help="Tables 3-4: also run the epoch-level adaptive variant")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="tqdm bars for the epochs (default: when stderr is a terminal)")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    return args


def regenerate_command(args: argparse.Namespace) -> Callable[[int], str]:
    def command(n: int) -> str:
        parts = [".venv/bin/python benchmarks/repro_002.py", f"--tables {n}", f"--seeds {args.seeds}"]
        if args.quick:
            parts.append("--quick")
        if args.both_adaptive:
            parts.append("--both-adaptive")
        if Path(args.out).resolve() != DEFAULT_OUT:
            parts.append(f"--out {args.out}")
        return " ".join(parts)
    return command


def print_timing_summary(runner: Runner) -> None:
    """Runs actually executed in this process, grouped by kind and network: what a full
    run costs, per run kind (for planning the sizes)."""
    groups: Dict[str, List[float]] = {}
    for kind, seconds in runner.timings:
        groups.setdefault(kind, []).append(seconds)
    if groups:
        print("time per run kind (runs executed here):")
    for kind, times in groups.items():
        print(f"  {kind:<34} {len(times):3d} run(s), {sum(times) / len(times):7.1f} s each, "
              f"{sum(times):7.0f} s in all")


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = Path(args.out)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    runner = Runner(out / "cache", progress=progress,
                    log=lambda line: print(line, flush=True))
    ctx = Context(plan, runner, list(range(args.seeds)), out, regenerate_command(args),
                  args.both_adaptive)
    print(f"repro_002: tables {args.tables}, {'quick' if args.quick else 'full'} sizes, "
          f"{args.seeds} seed(s), out {out}", flush=True)
    t0 = time.perf_counter()
    for n in sorted(set(args.tables)):
        threads = set_threads(AUTO_THREADS[n] if args.threads is None else args.threads)
        print(f"table {n}: {threads} thread(s)", flush=True)
        run_table(ctx, n)
    print_timing_summary(runner)
    print(f"repro_002: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
