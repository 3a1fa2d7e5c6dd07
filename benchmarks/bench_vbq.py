"""VBQ speed (paper 003): native layer-output-MSE evaluations per second against PyTorch
implementations of the same objective in the same run, and the wall time of per-layer SA
with accuracy fitness on 1000 calibration images for LeNet-5.

    .venv/bin/python benchmarks/bench_vbq.py [--population 50] [--sa-iterations 80]

Targets (issue 6): native >= 20x the PyTorch objective; SA < 60 s on 2 cores.
Writes benchmarks/results/vbq.json and vbq.md.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lowbit as lb
from lowbit import reference as R

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, paired_times, set_threads, write_results  # noqa: E402


def torch_direct(W: torch.Tensor, X: torch.Tensor):
    """The objective as written, ||X W^T - X Q(W)^T||^2, with lowbit's PyTorch reference
    quantizer; float32 like the model (the native code accumulates in float64)."""
    def run(pop: np.ndarray):
        ref = X @ W.T
        return [float(((ref - X @ R.fake_quant(W, "codebook", 8, torch.as_tensor(g, dtype=W.dtype)[None]).T) ** 2).sum())
                for g in pop]
    return run


def torch_gram(W: torch.Tensor, X: torch.Tensor):
    """The same objective with the Gram trick the native code uses: trace(E X^T X E^T)."""
    G = (X.T @ X).double()
    Wd = W.double()

    def run(pop: np.ndarray):
        out = []
        for g in pop:
            E = Wd - R.fake_quant(Wd, "codebook", 8, torch.as_tensor(g, dtype=torch.float64)[None])
            out.append(float(((E @ G) * E).sum()))
        return out
    return run


def objective_rows(model, x, population: int):
    rows = []
    inputs = lb.vbq.layer_inputs(model, x, [n for n, _ in lb.vbq.quantizable_layers(model)])
    rng = np.random.default_rng(0)
    for name, m in lb.vbq.quantizable_layers(model):
        W = m.weight.detach().reshape(m.weight.shape[0], -1).float()
        X = inputs[name].contiguous()
        t0 = time.perf_counter()
        obj = lb.vbq.layer_output_mse(W, X)
        setup = time.perf_counter() - t0
        lim = float(W.abs().max())
        pop = np.sort(rng.uniform(-lim, lim, (population, 16)), 1)
        native = lambda: obj.evaluate(pop)
        direct, gram = torch_direct(W, X), torch_gram(W, X)
        np.testing.assert_allclose(native(), gram(pop), rtol=1e-4)   # torch forms X^T X in float32
        np.testing.assert_allclose(native(), direct(pop), rtol=2e-3)
        t_n, t_d, ratio_d = paired_times(native, lambda: direct(pop), repeat=3, warmup=1)
        _, t_g, ratio_g = paired_times(native, lambda: gram(pop), repeat=3, warmup=1)
        rows.append({"layer": name, "weight": list(W.shape), "rows": int(X.shape[0]),
                     "native_setup_s": setup, "native_evals_per_s": population / t_n,
                     "torch_direct_evals_per_s": population / t_d, "torch_gram_evals_per_s": population / t_g,
                     "speedup_vs_direct": ratio_d, "speedup_vs_gram": ratio_g})
        print(f"{name:14s} native {population / t_n:9.0f}/s  torch {population / t_d:7.1f}/s "
              f"({ratio_d:6.1f}x)  torch+Gram {population / t_g:7.1f}/s ({ratio_g:5.1f}x)", flush=True)
    return rows


def sa_row(model, x, y, iterations: int, bins: int = 16):
    ev = lb.vbq.ModelEvaluator(model, x, y)
    t0 = time.perf_counter()
    r, books = lb.vbq.sa_layers(ev, bins, seed=0, max_iterations=iterations)
    wall = time.perf_counter() - t0
    print(f"SA, {bins} values, {len(y)} images: {wall:.1f} s, {r.iterations} iterations, "
          f"{r.evaluations} evaluations, accuracy {100 * r.best_fitness:.2f} %", flush=True)
    return {"bins": bins, "calibration_images": len(y), "wall_s": wall, "iterations": r.iterations,
            "evaluations": r.evaluations, "converged_by_patience": r.converged,
            "best_calibration_accuracy": 100 * r.best_fitness,
            "float_calibration_accuracy": 100 * ev.accuracy([None] * ev.layers)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--sa-iterations", type=int, default=80)
    ap.add_argument("--images", type=int, default=1000)
    args = ap.parse_args(argv)
    threads = set_threads()
    model = lb.models.pretrained("lenet5")
    x, y = lb.data.load_fashion_mnist("train", limit=args.images, normalize=True)
    rows = objective_rows(model, x, args.population)
    sa = sa_row(model, x, y, args.sa_iterations)
    total_native = sum(r["native_evals_per_s"] ** -1 for r in rows)
    total_direct = sum(r["torch_direct_evals_per_s"] ** -1 for r in rows)
    md = ["# VBQ benchmark (paper 003)\n",
          f"Command: `.venv/bin/python benchmarks/bench_vbq.py` ({threads} threads for lowbit and torch, "
          f"ISA {lb.kernel_isa()}, population {args.population}, 16-value codebooks, "
          f"{args.images} calibration images of LeNet-5).\n",
          "## Layer-output MSE ||X W^T - X Q(W)^T||^2, evaluations per second\n",
          "torch: the formula as written (reference quantizer, float32 matmuls). torch+Gram: the "
          "same trick as the native code (G = X^T X once, then trace(E G E^T)); it shows how much "
          "of the speed-up is the algorithm and how much is C++/OpenMP.\n",
          "| layer | W | rows of X | native/s | torch/s | x | torch+Gram/s | x |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['layer']} | {r['weight'][0]}x{r['weight'][1]} | {r['rows']} | "
                  f"{r['native_evals_per_s']:.0f} | {r['torch_direct_evals_per_s']:.1f} | "
                  f"{r['speedup_vs_direct']:.1f} | {r['torch_gram_evals_per_s']:.1f} | {r['speedup_vs_gram']:.1f} |")
    md += ["", f"Whole network (one evaluation of every layer): {total_direct / total_native:.0f}x the "
           "torch formula. Target >= 20x.\n",
           "## Per-layer SA with accuracy fitness (LeNet-5)\n",
           f"{sa['wall_s']:.1f} s for {sa['iterations']} iterations ({sa['evaluations']} network "
           f"evaluations on {sa['calibration_images']} images; stopped by "
           f"{'the patience rule' if sa['converged_by_patience'] else 'max_iterations'}); calibration "
           f"accuracy {sa['best_calibration_accuracy']:.2f} % (float {sa['float_calibration_accuracy']:.2f} %). "
           "Target < 60 s.\n"]
    write_results("vbq", {"environment": environment(threads), "objective": rows,
                          "whole_network_speedup_vs_direct": total_direct / total_native, "sa": sa},
                  "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
