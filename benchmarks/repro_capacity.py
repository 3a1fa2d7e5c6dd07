"""Small-scale reproduction of papers 000/001 (Boo, Shin, Sung: memorization capacity of
DNNs under parameter quantization): bits per parameter of FCDNNs, a CNN of Table 1 and
an LSTM; the precision below which memorization drops at full and at half capacity;
loss surfaces of float and quantized networks on a real task.

    .venv/bin/python benchmarks/repro_capacity.py [--quick] [--workers 2] [--out DIR]
                                                  [--scheduler tcp://host:8786]

Every training runs on dask (a LocalCluster of --workers processes, one torch thread
each) and is appended to <out>/repro_capacity_runs.jsonl as it finishes: run the same
command again after an interruption and it picks up where it stopped. Writes
repro_capacity.md (tables, paper numbers beside ours), repro_capacity_*.csv and
repro_capacity_{curves,quantization,surface}.png. The sizes are far below the paper's
(see PLANS); README.md says what that changes.
"""
import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import torch

import lowbit as lb
import lowbit.capacity as cap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _repro_report import atomic_write, rows_to_csv as to_csv  # noqa: E402
from _repro_report import md_table as _md_table  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
PAPER = {  # papers 000/001, sections 4 and 5.1
    "fcdnn_bits": "1.7-2.5 bits/param, mean 2.3 (widths 32-256, depths 1-4)",
    "cnn_bits": "2.86-3.09 bits/conv param except model A (2.48); mean 3.0",
    "lstm_bits": "3.7 bits/param (LSTM(32)x1, 8,386 params, N = 32K, p = 99.52 %)",
    "threshold": {"fcdnn": 6, "cnn": 8, "lstm": 10},
    "half": "FCDNN(128)x3 at half capacity stores everything down to 4 bits; CNNs and RNNs "
            "are less sensitive at half capacity (no number given)",
    "surface": "quantized models' loss surfaces are wider; test data loses less than training "
               "data (CIFAR-10 CNNs, PTB LSTMs)",
}
PAPER_BITS_PER_PARAM = {"fcdnn": 2.3, "cnn": 3.0, "lstm": 3.7}


@dataclass(frozen=True)
class Plan:
    fcdnn: Sequence[tuple]          # (width, depth)
    cnn: Sequence[str]              # Table 1 model names
    cnn_input: int                  # input side (paper: 32)
    lstm: Sequence[int]             # hidden = n_in sizes (paper: 32)
    max_epochs_fc: int
    max_epochs_cnn: int
    max_epochs_lstm: int
    lstm_lr: float                  # the LSTM searches' starting learning rate
    batch_size: int
    fine_points: int
    grid_points: int
    trials: int
    trials_other: int               # CNN / LSTM searches are cut shorter (they are slower)
    quant_models: Sequence[str]     # which searched models are quantized ('fcdnn(16)x2', ...)
    retrain_epochs: int
    surface_train: int              # Fashion-MNIST images for the loss surfaces
    surface_draws: int
    surface_alphas: int
    lenet_epochs: int
    lenet_train: int


# FCDNN trainings stop on their own (accuracy 1, or the rate cut three times) well before
# 1000 epochs; at 250 most were cut off still learning. The LSTM learns slowly at the
# search's usual start (lr 0.02): at 0.05, the top of the paper's range, LSTM(8) stored all
# of N = 1000 in 513 epochs and 94 % of N = 2000 in 1020 (side runs).
FULL = Plan(fcdnn=((16, 1), (16, 2), (32, 1), (32, 2)), cnn=("A",), cnn_input=16, lstm=(8,),
            max_epochs_fc=1000, max_epochs_cnn=300, max_epochs_lstm=1500, lstm_lr=0.05, batch_size=32,
            fine_points=4, grid_points=2, trials=4, trials_other=2,
            quant_models=("FCDNN(32)x2", "CNN model A (16x16)", "LSTM(8)x1"),
            retrain_epochs=4, surface_train=2000, surface_draws=10, surface_alphas=11,
            lenet_epochs=8, lenet_train=None)
QUICK = Plan(fcdnn=((12, 1),), cnn=("A",), cnn_input=8, lstm=(4,), max_epochs_fc=15,
             max_epochs_cnn=5, max_epochs_lstm=5, lstm_lr=0.05, batch_size=32, fine_points=2,
             grid_points=0, trials=2, trials_other=1,
             quant_models=("FCDNN(12)x1", "CNN model A (8x8)", "LSTM(4)x1"),
             retrain_epochs=1, surface_train=200, surface_draws=2, surface_alphas=3,
             lenet_epochs=1, lenet_train=1000)


def specs(plan: Plan) -> List[Dict]:
    out = [{"model": "fcdnn", "width": w, "depth": d} for w, d in plan.fcdnn]
    out += [{"model": "cnn", "name": n, "input_size": plan.cnn_input} for n in plan.cnn]
    out += [{"model": "lstm", "hidden": h, "n_in": h, "n_seq": 5} for h in plan.lstm]
    return out


def family(spec: Dict) -> str:
    return spec["model"]


def md_table(rows: List[dict], cols: Sequence[str]) -> str:
    return _md_table(rows, cols, float_format=".3g")


# ---- 1. capacity --------------------------------------------------------------------------

def max_epochs(spec: Dict, plan: Plan) -> int:
    limits = {"fcdnn": plan.max_epochs_fc, "cnn": plan.max_epochs_cnn, "lstm": plan.max_epochs_lstm}
    return limits[spec["model"]]


def search(sweep: cap.Sweep, spec: Dict, plan: Plan, workers: int) -> cap.CapacityResult:
    fc = spec["model"] == "fcdnn"
    return cap.measure_capacity(spec, sweep, max_epochs=max_epochs(spec, plan),
                                batch_size=plan.batch_size, fine_points=plan.fine_points,
                                grid_points=plan.grid_points if fc else 0,
                                trials=plan.trials if fc else plan.trials_other, seed=0, batch=workers,
                                defaults={"lr": plan.lstm_lr} if spec["model"] == "lstm" else None)


def capacity_rows(results: Dict[str, tuple]) -> List[dict]:
    rows = []
    for name, (spec, res) in results.items():
        model = cap.build(spec)
        params = cap.count_parameters(model)
        split = cap.parameter_split(model)
        per_param = res.bits_per_parameter(params)
        conv = (cap.conv_bits_per_parameter(res.capacity, split["conv"], split["fc"])
                if spec["model"] == "cnn" else None)
        rows.append({"model": name, "params": params, "conv_params": split["conv"] or None,
                     "n_star": res.n, "accuracy": res.accuracy, "capacity_bits": res.capacity,
                     "bits_per_param": per_param, "conv_bits_per_param": conv,
                     "paper_bits_per_param": PAPER_BITS_PER_PARAM[spec["model"]],
                     "trainings": len(res.evaluations), "lr": res.hparams["lr"],
                     "momentum": res.hparams["momentum"], "decay": res.hparams["decay"]})
    return rows


def plot_curves(results: Dict[str, tuple], png: Path) -> None:
    from lowbit.analysis._plot import pyplot, save_png
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, (spec, res)) in enumerate(results.items()):
        curve = res.curve(res.hparams)  # lines: the chosen settings; dots: every other trial
        params = cap.count_parameters(cap.build(spec))
        others = [e for e in res.evaluations if e["hparams"] != res.hparams]
        axes[0].plot([c[0] / params for c in curve], [c[2] / params for c in curve], "o-", ms=3,
                     color=f"C{i}", label=name)
        axes[0].scatter([e["n"] / params for e in others], [e["mi"] / params for e in others], s=6,
                        color=f"C{i}", alpha=0.3)
        axes[1].plot([c[0] / params for c in curve], [c[1] for c in curve], "o-", ms=3, color=f"C{i}")
        axes[1].scatter([e["n"] / params for e in others], [e["accuracy"] for e in others], s=6,
                        color=f"C{i}", alpha=0.3)
    for fam, bits in PAPER_BITS_PER_PARAM.items():
        axes[0].axhline(bits, ls=":", lw=1, color="gray")
        axes[0].text(axes[0].get_xlim()[0] if False else 0.02, bits, f" paper {fam} {bits}",
                     fontsize=7, va="bottom", transform=axes[0].get_yaxis_transform())
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("N / parameters")
    axes[0].set_ylabel("mutual information / parameter (bits)")
    axes[1].set_ylabel("training accuracy")
    axes[0].legend(fontsize=7)
    fig.suptitle("Memorization against samples per parameter (paper 001, Fig. 2a): lines use the "
                 "search's chosen settings, dots its other trials", fontsize=10)
    save_png(fig, png)


# ---- 2. quantization under capacity -----------------------------------------------------

def quantization(sweep: cap.Sweep, results: Dict[str, tuple], plan: Plan) -> List[dict]:
    jobs, labels = [], []
    for name in plan.quant_models:
        spec, res = results[name]
        for regime, n in (("full", res.n), ("half", max(res.n // 2, 1))):
            jobs.append({"spec": spec, "n": n, "hparams": res.hparams, "seed": 0,
                         "max_epochs": max_epochs(spec, plan),
                         "bits": list(cap.PAPER_BITS), "retrain_epochs": plan.retrain_epochs,
                         "keep_direct": True})
            labels.append((name, spec, regime, n))
    rows = []
    for (name, spec, regime, n), out in zip(labels, sweep.map(cap.quantize_job, jobs, desc="quantization")):
        for r in out["records"]:
            rows.append({"model": name, "family": family(spec), "capacity": regime, "n": n,
                         "bits": "float" if r["bits"] is None else r["bits"],
                         "accuracy_direct": r["accuracy_direct"], "accuracy": r["accuracy"],
                         "threshold_bits": out["threshold"],
                         "paper_threshold_bits": PAPER["threshold"][family(spec)] if regime == "full" else None})
    return rows


def plot_quantization(rows: List[dict], png: Path) -> None:
    from lowbit.analysis._plot import pyplot, save_png
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    order = ["float"] + list(cap.PAPER_BITS)
    for ax, regime in zip(axes, ("full", "half")):
        models = list(dict.fromkeys(r["model"] for r in rows if r["capacity"] == regime))
        for i, m in enumerate(models):
            acc = {r["bits"]: r["accuracy"] for r in rows if r["model"] == m and r["capacity"] == regime}
            ax.plot(range(len(order)), [acc[b] for b in order], "o-", color=f"C{i}", label=m)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([str(b) if b == "float" else f"{b}-bit" for b in order])
        ax.set_title(f"{regime} capacity", fontsize=9)
        ax.set_ylabel("training accuracy")
        ax.legend(fontsize=7)
    fig.suptitle("Quantization in sequence with retraining (paper 001, Fig. 3)", fontsize=10)
    save_png(fig, png)


# ---- 3. loss surfaces on Fashion-MNIST ----------------------------------------------------

def surfaces(plan: Plan, out: Path, quick: bool) -> List[dict]:
    kwargs = {"epochs": plan.lenet_epochs, "progress": False}
    if quick:
        kwargs.update(train_size=plan.lenet_train, cache=str(out / "cache"))
    model = lb.models.pretrained("lenet5", **kwargs)
    x_tr, y_tr = lb.data.load_fashion_mnist("train", normalize=True, limit=max(plan.surface_train, 5000))
    x_te, y_te = lb.data.load_fashion_mnist("test", normalize=True, limit=plan.surface_train)
    retrain_x, retrain_y = x_tr[:5000], y_tr[:5000]
    alphas = torch.linspace(-1, 1, plan.surface_alphas).tolist()
    x_s, y_s = x_tr[:plan.surface_train], y_tr[:plan.surface_train]
    train_s, test_s, rows = {}, {}, []
    for bits in (None, 8, 6, 4, 2):
        label = "float" if bits is None else f"{bits}-bit"
        m = model
        if bits is not None:
            import copy
            m = copy.deepcopy(model)
            lb.attach(m, bits=bits, granularity="channel", step="l2")
            lb.retrain(m, cap.epoch_fn(retrain_x, retrain_y, 64, 0), lb.Gradual([bits], 1),
                       optimizer=torch.optim.SGD(m.parameters(), lr=0.005, momentum=0.9), progress=False)
        train_s[label] = cap.loss_surface(m, x_s, y_s, alphas, draws=plan.surface_draws, seed=0)
        test_s[label] = cap.loss_surface(m, x_te, y_te, alphas, draws=plan.surface_draws, seed=0)
        for split, s in (("train", train_s[label]), ("test", test_s[label])):
            for a, l, acc in zip(s["alpha"], s["loss"], s["accuracy"]):
                rows.append({"model": label, "data": split, "alpha": a, "loss": l, "accuracy": acc})
    cap.plot_loss_surfaces(train_s, out / "repro_capacity_surface.png", test=test_s,
                           title=f"LeNet-5 on Fashion-MNIST: f(alpha) = L(theta + alpha d), "
                                 f"filter-normalized noise, {plan.surface_draws} draws (paper 001, Fig. 5)")
    return rows


# ---- report -------------------------------------------------------------------------------

def report(cap_rows, quant_rows, surf_rows, plan: Plan, argv, seconds: float, workers: int) -> str:
    cmd = "OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/repro_capacity.py " + " ".join(argv)
    fam_rows = {}
    for r in cap_rows:
        fam_rows.setdefault(r["model"].split("(")[0].split(" ")[0], []).append(r)
    thresholds = sorted({(r["model"], r["capacity"], r["threshold_bits"], r["paper_threshold_bits"])
                         for r in quant_rows if r["bits"] == "float"}, key=lambda t: (t[0], t[1]))
    def nearest(target):  # the grid point closest to alpha = target, per (model, data)
        best = {}
        for r in surf_rows:
            key = (r["model"], r["data"])
            if key not in best or abs(r["alpha"] - target) < abs(best[key]["alpha"] - target):
                best[key] = r
        return best
    s_at, s_0 = nearest(1.0), nearest(0.0)
    surf = [{"model": m, "data": d, "loss_at_0": s_0[(m, d)]["loss"], "loss_at_1": s_at[(m, d)]["loss"],
             "accuracy_at_0": s_0[(m, d)]["accuracy"], "accuracy_at_1": s_at[(m, d)]["accuracy"]}
            for (m, d) in s_at]
    return "\n\n".join([
        "# Papers 000/001: memorization capacity under quantization (small-scale reproduction)",
        f"Regenerate: `{cmd}` ({seconds / 60:.1f} min wall, {workers} dask worker(s), one torch "
        "thread each; resumes from `repro_capacity_runs.jsonl`).",
        "## Capacity (bits per parameter)\n\nPaper: FCDNN " + PAPER["fcdnn_bits"] + "; CNN " +
        PAPER["cnn_bits"] + "; LSTM " + PAPER["lstm_bits"] + ".\n\n" +
        md_table(cap_rows, ["model", "params", "n_star", "accuracy", "capacity_bits", "bits_per_param",
                            "conv_bits_per_param", "paper_bits_per_param", "trainings"]),
        "![curves](repro_capacity_curves.png)",
        "## Precision below which memorization drops (accuracy within 1 point of float)\n\n"
        "Paper (full capacity): 6 / 8 / 10 bits for FCDNN / CNN / RNN; " + PAPER["half"] + ".\n\n" +
        md_table([{"model": m, "capacity": c, "lowest_bits_without_drop": t, "paper": p}
                  for m, c, t, p in thresholds], ["model", "capacity", "lowest_bits_without_drop", "paper"]) +
        "\n\n" + md_table(quant_rows, ["model", "capacity", "n", "bits", "accuracy_direct", "accuracy"]),
        "![quantization](repro_capacity_quantization.png)",
        "## Loss surfaces (Fashion-MNIST LeNet-5)\n\nPaper: " + PAPER["surface"] + ".\n\n" +
        md_table(surf, ["model", "data", "loss_at_0", "loss_at_1", "accuracy_at_0", "accuracy_at_1"]),
        "![surface](repro_capacity_surface.png)",
    ]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in about a minute")
    p.add_argument("--workers", type=int, default=2, help="dask worker processes (default 2)")
    p.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    p.add_argument("--threads", action="store_true", help="dask workers as threads (tests)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--max-epochs-cnn", type=int, default=None,
                   help="epoch limit of the CNN trainings (default: the plan's, 300 in full)")
    args = p.parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    plan = QUICK if args.quick else FULL
    if args.max_epochs_cnn is not None:
        plan = dataclasses.replace(plan, max_epochs_cnn=args.max_epochs_cnn)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.set_num_threads(1)
    with cap.Sweep(out / "repro_capacity_runs.jsonl", scheduler=args.scheduler, n_workers=args.workers,
                   processes=not args.threads) as sweep:
        results = {}
        for spec in specs(plan):
            res = search(sweep, spec, plan, args.workers)
            results[cap.spec_name(spec)] = (spec, res)
            print(f"{cap.spec_name(spec)}: C = {res.capacity:.0f} bits at N = {res.n} "
                  f"(p = {res.accuracy:.4f}), {res.capacity / cap.count_parameters(cap.build(spec)):.2f} "
                  "bits/param", flush=True)
        cap_rows = capacity_rows(results)
        atomic_write(out / "repro_capacity_capacity.csv", to_csv(cap_rows))
        plot_curves(results, out / "repro_capacity_curves.png")
        quant_rows = quantization(sweep, results, plan)
        atomic_write(out / "repro_capacity_quantization.csv", to_csv(quant_rows))
        plot_quantization(quant_rows, out / "repro_capacity_quantization.png")
    surf_rows = surfaces(plan, out, args.quick)
    atomic_write(out / "repro_capacity_surface.csv", to_csv(surf_rows))
    seconds = time.perf_counter() - start
    atomic_write(out / "repro_capacity.md", report(cap_rows, quant_rows, surf_rows, plan, argv, seconds,
                                                  args.workers))
    print(f"wrote {out}/repro_capacity.md in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
