"""Units of repro_003 (paper 003's protocol), each a JSON job that one dask worker runs on
its own: `run_job(job) -> dict`.

    {"kind": "float",   "setting": {...}, "seed": 0, "bits": [3, 4, 5]}
    {"kind": "search",  "setting": {...}, "seed": 0, "bits": 3, "method": "VBQ-SA", "n_calib": 1000, "search": {...}}
    {"kind": "heatmap", "setting": {...}, "seed": 0, "bits": 3, "n_calib": 1000, "grid": 12}
    {"kind": "network_ga", "setting": {...}, "seed": 0, "bits": 4, "mode": "symmetric", ...}

- The float model of a seed is `lb.models.pretrained(model, seed=seed, train_size=...)`:
  trained on the first `train_size` training images, so the calibration images, drawn
  (seeded) from the rest of the training split, are images it never saw, as the paper's
  ILSVRC2012 validation images are. The first n of one seeded permutation are the
  n-image set, so smaller sets are subsets of larger ones.
- Held-out: the Fashion-MNIST test split (all 10k unless `n_test`).
- Every weight layer is quantized per tensor; biases and activations stay float.
- A result holds calibration and held-out accuracy and, for the paired tests, which
  held-out images the model got right (packed bits, base64).
"""
import base64
import functools
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

import lowbit as lb

PROTOCOL = "003-v2"   # part of every job, so results of another protocol are never reused
SA, GA = "VBQ-SA", "VBQ-GA"
BASELINES = ("Lloyd-Max", "uniform symmetric", "power of two")


# ---- data and models -----------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _train_split():
    return lb.data.load_fashion_mnist("train", normalize=True)


def calibration(setting: dict, seed: int, n: int):
    """n training images the float model was not trained on, drawn with `seed`."""
    x, y = _train_split()
    start = setting["train_size"]
    if n > len(y) - start:
        raise ValueError(f"n_calib = {n} exceeds the {len(y) - start} training images left "
                         f"after the first train_size = {start}")
    order = torch.randperm(len(y) - start, generator=torch.Generator().manual_seed(seed))
    idx = start + order[:n]
    return x[idx], y[idx]


@functools.lru_cache(maxsize=1)
def held_out(n_test: Optional[int]):
    return lb.data.load_fashion_mnist("test", limit=n_test, normalize=True)


def float_model(setting: dict, seed: int) -> nn.Module:
    """Trained the first time (minutes), then read from the lowbit model cache."""
    return lb.models.pretrained(setting["model"], seed=seed, train_size=setting["train_size"],
                                epochs=setting["epochs"], progress=False)


# ---- evaluation ----------------------------------------------------------------------------

@torch.no_grad()
def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> np.ndarray:
    """Per image: does the model's top-1 class match the label."""
    model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) == y[i:i + batch]
                      for i in range(0, len(y), batch)]).numpy()


def pack(bits: np.ndarray) -> str:
    return base64.b64encode(np.packbits(bits.astype(np.uint8)).tobytes()).decode()


def unpack(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8))[:n].astype(bool)


def quantized(model: nn.Module, names: Sequence[str], weights: Sequence[torch.Tensor]) -> nn.Module:
    """A copy of model with the named layers' weights replaced."""
    import copy
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    with torch.no_grad():
        for name, w in zip(names, weights):
            modules[name].weight.copy_(w)
    return out


def scores(model: nn.Module, setting: dict, xc, yc) -> dict:
    """Calibration and held-out accuracy (%) and the held-out outcomes."""
    xt, yt = held_out(setting["n_test"])
    held = correct(model, xt, yt, setting["batch"])
    return {"calib": 100 * float(correct(model, xc, yc, setting["batch"]).mean()),
            "held_out": 100 * float(held.mean()), "held_correct": pack(held), "n_held_out": len(yt)}


def codebook_model(model: nn.Module, names: Sequence[str], books) -> nn.Module:
    """A copy with each named layer on its codebook (None: float)."""
    return lb.vbq.apply(model, [None if b is None else np.asarray(b, np.float64) for b in books], names)


# ---- units ---------------------------------------------------------------------------------

def float_unit(job: dict) -> dict:
    """Trains (or loads) the seed's float model; float and baseline accuracies per bits."""
    setting, seed = job["setting"], job["seed"]
    model = float_model(setting, seed)
    xc, yc = calibration(setting, seed, job["n_calib"])
    names = [n for n, _ in lb.vbq.quantizable_layers(model)]
    weights = [m.weight.detach().clone() for _, m in lb.vbq.quantizable_layers(model)]
    out = {"float": scores(model, setting, xc, yc), "layers": names, "baselines": {}}
    for bits in job["bits"]:
        methods = {
            "Lloyd-Max": [lb.fake_quantize(w, lb.vbq.lloyd_codebook(w, bits)) for w in weights],
            "uniform symmetric": [lb.fake_quantize(w, lb.calibrate(w, "symmetric", bits)) for w in weights],
            "power of two": [lb.fake_quantize(w, lb.calibrate(w, "pow2", bits)) for w in weights],
        }
        out["baselines"][str(bits)] = {m: scores(quantized(model, names, q), setting, xc, yc)
                                       for m, q in methods.items()}
    return out


def progressive_ga(ev: lb.vbq.ModelEvaluator, bins: int, seed: int, params: dict) -> tuple:
    """One symmetric GA per layer, input to output: layer l is searched with the layers
    before it at their GA codebooks and the layers after it float (for layer 0 this is
    the paper's Fig. 6 setting: one layer VBQ, the others FP32)."""
    books: List[Optional[np.ndarray]] = [None] * ev.layers
    layers = []
    for l, w in enumerate(ev.float_weights):
        r = lb.vbq.ga(ev.layer_fitness(l, books), bins, float(w.min()), float(w.max()), symmetric=True,
                      population=params["population"], generations=params["generations"],
                      rates=params["rates"], seed=1000 * seed + l)
        books[l] = r.best
        fit = lb.vbq.fit_formula(r.best, symmetric=True)
        layers.append({"name": ev.names[l], "search_calib": 100 * r.best_fitness,
                       "evaluations": r.evaluations, "generations": len(r.best_history) - 1,
                       "best_every_10": (100 * r.best_history[::10]).tolist(),
                       "fit_a": fit.a, "fit_b": fit.b, "fit_r2": fit.r2})
    return books, layers


def search_unit(job: dict) -> dict:
    """One VBQ search (SA on Eq. 2, or the progressive GA) on the seed's calibration set."""
    setting, seed, bits, p = job["setting"], job["seed"], job["bits"], job["search"]
    model = float_model(setting, seed)
    xc, yc = calibration(setting, seed, job["n_calib"])
    ev = lb.vbq.ModelEvaluator(model, xc, yc, batch_size=setting["batch"])
    bins = 2 ** bits
    out: Dict[str, object] = {"layers": ev.names}
    if job["method"] == SA:
        r, books = lb.vbq.sa_layers(ev, bins, seed=seed, patience=p["patience"],
                                    max_iterations=p["max_iterations"])
        out["sa"] = {"iterations": r.iterations, "stop": r.stop, "evaluations": r.evaluations,
                     "final_temperature": float(r.temperature_history[-1]),
                     "search_calib": 100 * r.best_fitness, "best_state": r.best_state.tolist(),
                     "fitness_every_10": (100 * r.fitness_history[::10]).tolist(),
                     "a_below_1": [bool(a < 1) for a, _ in r.best_state]}
    elif job["method"] == GA:
        books, layers = progressive_ga(ev, bins, seed, p)
        out["ga"] = {"layers": layers}
        # Fig. 6 for layer 0: the one layer searched with every other layer float.
        first = [books[0]] + [None] * (ev.layers - 1)
        out["ga"]["layer0_alone"] = scores(codebook_model(model, ev.names, first), setting, xc, yc)
        # Fig. 8: every layer at the Eq. 2 fit of its GA codebook.
        fitted = [lb.vbq.formula(L["fit_a"], L["fit_b"], bins) for L in layers]
        flat = [L["name"] for L, f in zip(layers, fitted) if not np.all(np.diff(f) > 0)]
        if flat:   # a fit with b = 0 or a = 1 has no distinct values to evaluate
            out["ga"]["fitted_unusable"] = flat
        else:
            out["ga"]["fitted"] = scores(codebook_model(model, ev.names, fitted), setting, xc, yc)
    else:
        raise ValueError(f"unknown search method {job['method']!r}; expected {SA!r} or {GA!r}")
    out.update(scores(codebook_model(model, ev.names, books), setting, xc, yc))
    out["codebooks"] = [np.asarray(b).tolist() for b in books]
    return out


def heatmap_unit(job: dict) -> dict:
    """Fig. 9: calibration accuracy with one layer on Eq. 2 at each grid point, the others
    float. a~ = a^(1/N) spans both families (b < 0 where a < 1, by the sign rule)."""
    setting, seed, bits, n = job["setting"], job["seed"], job["bits"], job["grid"]
    model = float_model(setting, seed)
    xc, yc = calibration(setting, seed, job["n_calib"])
    ev = lb.vbq.ModelEvaluator(model, xc, yc, batch_size=setting["batch"])
    bins = 2 ** bits
    a_tilde = np.linspace(job["a_tilde"][0], job["a_tilde"][1], n)
    beta = np.geomspace(job["beta"][0], job["beta"][1], n)   # |b| in units of max |w|
    layers = []
    for l, w in enumerate(ev.float_weights):
        scale = float(w.abs().max())
        fit = lambda books, l=l: [ev.accuracy_with(l, b, [None] * ev.layers) for b in books]  # noqa: E731
        grid = np.full((n, n), np.nan)
        for sign, rows in ((1.0, a_tilde > 1), (-1.0, a_tilde < 1)):
            if rows.any():
                grid[rows] = lb.vbq.heatmap(fit, bins, a_tilde[rows], sign * beta * scale)
        layers.append({"name": ev.names[l], "grid": (100 * grid).tolist()})
    return {"a_tilde": a_tilde.tolist(), "beta": beta.tolist(), "layers": layers,
            "float_calib": 100 * ev.accuracy([None] * ev.layers)}


def network_ga_unit(job: dict) -> dict:
    """Fig. 5: one GA codebook shared by every layer, symmetric or asymmetric mode."""
    setting, seed, p = job["setting"], job["seed"], job["search"]
    model = float_model(setting, seed)
    xc, yc = calibration(setting, seed, job["n_calib"])
    ev = lb.vbq.ModelEvaluator(model, xc, yc, batch_size=setting["batch"])
    r = lb.vbq.ga_network(ev, 2 ** job["bits"], symmetric=job["mode"] == "symmetric",
                          population=p["population"], generations=p["generations"],
                          rates=p["rates"], seed=seed)
    out = scores(codebook_model(model, ev.names, [r.best] * ev.layers), setting, xc, yc)
    out.update({"best_history": (100 * r.best_history).tolist(),
                "mean_every_10": (100 * r.mean_history[::10]).tolist(),
                "search_calib": 100 * r.best_fitness, "evaluations": r.evaluations,
                "codebook": r.best.tolist()})
    return out


UNITS = {"float": float_unit, "search": search_unit, "heatmap": heatmap_unit, "network_ga": network_ga_unit}


def run_job(job: dict) -> dict:
    if job.get("protocol") != PROTOCOL:
        raise ValueError(f"job of protocol {job.get('protocol')!r}, this code runs {PROTOCOL!r}")
    if job["kind"] not in UNITS:
        raise ValueError(f"unknown unit kind {job['kind']!r}; expected one of {sorted(UNITS)}")
    t0, c0 = time.perf_counter(), time.process_time()
    out = UNITS[job["kind"]](job)
    # Wall time depends on what else shares the cores; CPU time is what the estimate needs.
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
    out["threads"] = torch.get_num_threads()
    return out


def job(kind: str, setting: dict, seed: int, **extra) -> dict:
    return {"protocol": PROTOCOL, "kind": kind, "setting": setting, "seed": seed, **extra}
