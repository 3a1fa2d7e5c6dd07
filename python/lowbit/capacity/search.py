"""Capacity search of paper 001 (section 3.1): C = max over N and hyper-parameters of the
mutual information N (1 - H(p)).

Four stages, each starting from the best point found so far:
  1. coarse N: double N (default hyper-parameters) until the accuracy drops below
     `threshold` (the paper's "largest N whose accuracy is slightly lower than 1");
  2. fine N: a geometric grid around that N, to find where the information peaks;
  3. grid: every combination of `grid_points` values per hyper-parameter, at the smallest
     N past the peak that the defaults do not store fully (below it settings tie at
     accuracy 1); each range then shrinks to the grid cells beside the best value (the
     paper's "boundary values");
  4. Bayesian: optuna's TPE over the shrunk ranges plus N, maximizing the information;
  5. refine: a finer grid of N around the best point, at its hyper-parameters.

`accuracy(n, hparams) -> p` is any callable, so the search runs on a synthetic curve as
well as on real trainings; `evaluate_batch(points) -> [p, ...]` lets a dask Sweep train a
batch of `batch` points in parallel.
"""
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..models._checks import positive_int
from ..optional import require
from .information import mutual_information
from .training import DEFAULT_HPARAMS, PAPER_SPACE

Point = Tuple[int, Dict]


@dataclass
class CapacityResult:
    capacity: float          # bits: the largest mutual information found
    n: int                   # the N where it was found
    accuracy: float
    hparams: Dict
    evaluations: List[Dict] = field(default_factory=list)  # stage, n, hparams, accuracy, mi

    def bits_per_parameter(self, params: int) -> float:
        positive_int("params", params)
        return self.capacity / params

    def curve(self, hparams: Optional[Dict] = None) -> List[Tuple[int, float, float]]:
        """(N, best accuracy, best information) per evaluated N, N ascending: Fig. 2(a).
        hparams: only the trainings that used exactly these (e.g. `self.hparams`), so that a
        failed trial of the search does not show as a dip of the curve."""
        best: Dict[int, Tuple[float, float]] = {}
        for e in self.evaluations:
            if hparams is not None and e["hparams"] != hparams:
                continue
            a, m = best.get(e["n"], (-1.0, -1.0))
            best[e["n"]] = (max(a, e["accuracy"]), max(m, e["mi"]))
        return [(n, *best[n]) for n in sorted(best)]


def _check_space(space: Dict) -> None:
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict name -> ('log'|'linear', low, high) or ('choice', [values]), got {space!r}")
    for name, spec in space.items():
        ok = isinstance(spec, tuple) and len(spec) >= 2 and spec[0] in ("log", "linear", "choice")
        if ok and spec[0] == "choice":
            ok = len(spec) == 2 and len(spec[1]) > 0
        elif ok:
            ok = len(spec) == 3 and spec[1] < spec[2] and (spec[0] == "linear" or spec[1] > 0)
        if not ok:
            raise ValueError(f"space[{name!r}] must be ('log', low > 0, high), ('linear', low, high) "
                             f"with low < high, or ('choice', [values]); got {spec!r}")


def _grid_values(spec, points: int) -> list:
    if spec[0] == "choice":
        return list(spec[1])
    if points == 1:
        return [math.sqrt(spec[1] * spec[2]) if spec[0] == "log" else (spec[1] + spec[2]) / 2]
    if spec[0] == "log":
        return np.geomspace(spec[1], spec[2], points).tolist()
    return np.linspace(spec[1], spec[2], points).tolist()


def _narrow(spec, values: list, best) -> tuple:
    """The range between the grid neighbours of the best value (a choice stays a choice)."""
    if spec[0] == "choice" or len(values) == 1:
        return spec
    i = values.index(best)
    return (spec[0], values[max(i - 1, 0)], values[min(i + 1, len(values) - 1)])


class _Search:
    def __init__(self, evaluate_batch, batch):
        self.evaluate_batch, self.batch = evaluate_batch, batch
        self.evaluations: List[Dict] = []
        self.seen: Dict[str, Dict] = {}

    def run(self, stage: str, points: List[Point]) -> List[Dict]:
        """Evaluate points (each once per search), in batches; return their records."""
        out, todo = [], []
        for n, h in points:
            key = repr((n, sorted(h.items())))
            if key not in self.seen:
                self.seen[key] = {"stage": stage, "n": n, "hparams": dict(h)}
                todo.append(self.seen[key])
            out.append(self.seen[key])
        for i in range(0, len(todo), self.batch):
            chunk = todo[i:i + self.batch]
            accs = list(self.evaluate_batch([(r["n"], r["hparams"]) for r in chunk]))
            if len(accs) != len(chunk):
                raise ValueError(f"evaluate_batch returned {len(accs)} accuracies for {len(chunk)} points")
            for r, p in zip(chunk, accs):
                r["accuracy"] = float(p)
                r["mi"] = mutual_information(float(p), r["n"])
                self.evaluations.append(r)
        return out

    def best(self) -> Dict:
        return max(self.evaluations, key=lambda r: r["mi"])


def capacity_search(accuracy: Optional[Callable[[int, Dict], float]] = None, n_start: int = 256,
                    space: Optional[Dict] = None, defaults: Optional[Dict] = None,
                    threshold: float = 0.99, fine_points: int = 5, grid_points: int = 2,
                    trials: int = 10, n_max: Optional[int] = None, seed: int = 0,
                    evaluate_batch: Optional[Callable[[Sequence[Point]], Sequence[float]]] = None,
                    batch: int = 1, fine_range: Tuple[float, float] = (0.5, 4.0)) -> CapacityResult:
    """Maximize N (1 - H(p)) over N and hyper-parameters; see the module docstring.

    accuracy: callable(n, hparams) -> training accuracy in [0, 1] (or give evaluate_batch).
    space: hyper-parameters to tune, name -> ('log'|'linear', low, high) or
        ('choice', [values]); defaults to paper 001's ranges of lr, momentum and decay.
    defaults: hyper-parameters of the N stages, and fixed values of names not in space.
    n_max: largest N tried (e.g. 2^n_in distinct inputs).
    trials: Bayesian trials (0 skips the stage); grid_points: values per range (0 skips).
    fine_range: the fine stage's N grid spans these factors of the coarse stage's N (the
        first N below the threshold); a narrower top saves the slowest trainings.
    """
    if (accuracy is None) == (evaluate_batch is None):
        raise ValueError("give exactly one of accuracy= (callable(n, hparams)) or evaluate_batch=")
    if evaluate_batch is None:
        evaluate_batch = lambda points: [accuracy(n, h) for n, h in points]  # noqa: E731
    positive_int("n_start", n_start)
    positive_int("batch", batch)
    positive_int("fine_points", fine_points)
    for name, value in (("grid_points", grid_points), ("trials", trials), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if not (isinstance(threshold, (int, float)) and 0.5 < threshold <= 1.0):
        raise ValueError(f"threshold must be an accuracy in (0.5, 1], got {threshold!r}")
    if (not isinstance(fine_range, (tuple, list)) or len(fine_range) != 2
            or not all(isinstance(f, (int, float)) and f > 0 for f in fine_range) or not fine_range[0] < fine_range[1]):
        raise ValueError(f"fine_range must be two factors 0 < low < high, got {fine_range!r}")
    if n_max is not None and positive_int("n_max", n_max) < n_start:
        raise ValueError(f"n_max ({n_max}) must be >= n_start ({n_start})")
    space = dict(PAPER_SPACE if space is None else space)
    _check_space(space)
    base = {**DEFAULT_HPARAMS, **(defaults or {})}
    cap = n_max or 2 ** 40
    s = _Search(evaluate_batch, batch)

    # 1. coarse: doubling (in batches) until the accuracy falls below the threshold; halving
    # instead when even n_start is too many
    n_hi = n_start
    if s.run("coarse", [(n_start, base)])[0]["accuracy"] < threshold:
        while n_hi > 1 and s.run("coarse", [(n_hi // 2, base)])[0]["accuracy"] < threshold:
            n_hi //= 2
    else:
        n, n_hi = n_start, None
        while n_hi is None and n < cap:
            ns = sorted({min(n * 2 ** k, cap) for k in range(1, batch + 1)})
            n_hi = next((r["n"] for r in s.run("coarse", [(m, base) for m in ns])
                         if r["accuracy"] < threshold), None)
            n = ns[-1]
        n_hi = n_hi or cap

    # 2. fine: where between N/2 and 4N (fine_range) the information peaks (extended while it
    # is at the edge)
    f_lo, f_hi = fine_range
    lo, hi = max(int(n_hi * f_lo), 1), min(int(round(n_hi * f_hi)), cap)
    for _ in range(4):
        ns = sorted({int(round(v)) for v in np.geomspace(lo, hi, fine_points)})
        s.run("fine", [(m, base) for m in ns])
        n_star = s.best()["n"]
        if n_star < hi or hi >= cap:
            break
        lo, hi = hi, min(int(round(hi * f_hi)), cap)

    # 3. grid over the hyper-parameters at the best N; ranges shrink around the best
    if grid_points and space:
        grids = {k: _grid_values(v, grid_points) for k, v in space.items()}
        combos = [dict(zip(grids, vals)) for vals in itertools.product(*grids.values())]
        # At an N the defaults do not fully store: there the settings differ (below it many
        # store everything and tie).
        above = [r["n"] for r in s.evaluations if r["n"] > n_star and r["accuracy"] < threshold]
        n_grid = min(above) if above else n_star
        records = s.run("grid", [(n_grid, {**base, **c}) for c in combos])
        best_grid = max(records, key=lambda r: (r["mi"], r["accuracy"]))["hparams"]
        space = {k: _narrow(v, grids[k], best_grid[k]) for k, v in space.items()}

    # 4. Bayesian (TPE) over the shrunk ranges plus N around the best N
    if trials and space:
        _bayesian(s, space, base, trials, seed, cap, batch)

    # 5. refine N at the best hyper-parameters (the peak in N is narrow next to p = 1)
    best = s.best()
    ns = np.geomspace(best["n"] / 1.25, min(best["n"] * 1.25, cap), fine_points + 2)
    s.run("refine", [(max(int(round(m)), 1), best["hparams"]) for m in ns])
    best = s.best()
    return CapacityResult(best["mi"], best["n"], best["accuracy"], best["hparams"], s.evaluations)


def _bayesian(s: _Search, space: Dict, base: Dict, trials: int, seed: int, cap: int, batch: int) -> None:
    optuna = require("optuna", "python3-optuna", "optuna", "the Bayesian (TPE) step of capacity_search",
                     "or pass trials=0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = s.best()
    n_lo, n_hi = max(best["n"] // 2, 1), min(best["n"] * 2, cap)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(5, trials // 2)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    # Start from the best point so far, so TPE refines rather than rediscovers it.
    study.enqueue_trial({"n": best["n"], **{k: best["hparams"][k] for k in space
                                             if space[k][0] != "choice" or best["hparams"][k] in space[k][1]}})
    done = 0
    while done < trials:
        asked = [study.ask() for _ in range(min(batch, trials - done))]
        points = []
        for t in asked:
            h = dict(base)
            for k, spec in space.items():
                if spec[0] == "choice":
                    h[k] = t.suggest_categorical(k, list(spec[1]))
                else:
                    h[k] = t.suggest_float(k, spec[1], spec[2], log=spec[0] == "log")
            n = t.suggest_int("n", n_lo, n_hi, log=True) if n_hi > n_lo else n_lo
            points.append((n, h))
        for t, r in zip(asked, s.run("bayes", points)):
            study.tell(t, r["mi"])
        done += len(asked)


def plot_capacity_curve(result: CapacityResult, png, title: str = "", params: Optional[int] = None):
    """Fig. 2(a) of paper 001: accuracy and information against N with the hyper-parameters
    the search chose (lines), and every other training of the search (faint dots)."""
    from ..analysis._plot import pyplot, save_png
    plt = pyplot()
    curve = result.curve(result.hparams)
    ns = [c[0] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.scatter([e["n"] for e in result.evaluations], [e["mi"] for e in result.evaluations], s=8,
               color="tab:blue", alpha=0.25, label="every training of the search")
    ax.plot(ns, [c[2] for c in curve], "o-", color="tab:blue", label="mutual information (bits)")
    ax.axhline(result.capacity, color="tab:blue", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("N (random samples)")
    ax.set_ylabel("I = N (1 - H(p)) bits", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(ns, [c[1] for c in curve], "s--", color="tab:red", label="training accuracy")
    ax2.set_ylabel("accuracy", color="tab:red")
    ax2.set_ylim(0.45, 1.02)
    label = f"C = {result.capacity:.0f} bits at N = {result.n}"
    if params:
        label += f" ({result.capacity / params:.2f} bits/param)"
    ax.set_title((title + "\n" if title else "") + label, fontsize=9)
    return save_png(fig, png)
