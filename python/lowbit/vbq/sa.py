"""Simulated annealing on the (a, b) of Eq. 2, per layer (paper 003, Sec. IV-B), in C++.

Each iteration visits every layer in turn: with temperature T it draws da in
[-aT/2, aT/2] and db in [-|b|T/2, |b|T/2], evaluates the three neighbours (a+da, b),
(a, b+db), (a+da, b+db) with the other layers at their current (a, b), and moves to the
best of them with probability 1 if e' >= e, else exp((e' - e) * scale / T) (the paper:
scale = 100 for accuracies in [0, 1]). After all layers T *= cooling. The run stops after
`patience` iterations in which no layer's (a, b) changed (the paper's rule), or after
max_iterations; `SAResult.stop` says which.

Eq. 2 is odd, so (a, b) and (a, -b) give the same values in opposite orders: a neighbour
takes the sign of b that lists them increasing, sign(a - 1). A move of a across 1 thus
goes from the a > 1 family (values dense near zero) to the a < 1 family (dense at the
ends) and back, instead of being skipped. Neighbours with a = 1 or b = 0 are never taken.

With an accuracy fitness, a move that keeps the accuracy is accepted (e' = e), so the
paper's rule fires only once the moves, at most a T / 2 relative, fall below float64
resolution: T < ~2e-16, about 700 iterations at cooling 0.95 (hence the large default cap).
"""
from dataclasses import dataclass
from typing import Callable, List, Sequence, Union

import numpy as np

from .._native import C
from ._checks import int_in, positive
from ._progress import progress_callback

SAFitness = Union[Callable[[int, np.ndarray, np.ndarray], Sequence[float]], List["C.vbq.Objective"]]
TRACE_FIELDS = ("iteration", "layer", "a", "b", "e", "e_new", "temperature", "u", "accepted")


@dataclass(frozen=True)
class SAResult:
    state: np.ndarray           # final (a, b) per layer, [layers, 2]
    best_state: np.ndarray      # the best state seen
    fitness: float
    best_fitness: float
    fitness_history: np.ndarray     # e after each iteration
    temperature_history: np.ndarray
    trace: list                 # one tuple per decision, fields TRACE_FIELDS
    iterations: int
    evaluations: int
    converged: bool             # stopped by `patience` (not max_iterations)
    stop: str = ""              # "patience" (the paper's rule) or "max_iterations"


def _per_layer(name: str, value, layers: int) -> List[float]:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (layers,))
    return [float(v) for v in arr]


def sa(fitness: SAFitness, layers: int, bins: int, *, a0=1.25, b0=0.05, t0: float = 1.0,
       cooling: float = 0.95, scale: float = 100.0, patience: int = 30, max_iterations: int = 5000,
       seed: int = 0, progress: bool = False) -> SAResult:
    """Anneal (a, b) of every layer; larger fitness is better.

    fitness(layer, ab [n, 2], state [layers, 2]) -> n values: the fitness with `layer` at
    each candidate (a, b) and the others at `state`; or a list of native objectives, one
    per layer (fitness = minus the sum of relative errors). a0, b0: a number or one per
    layer (paper: 1.25, 0.05). The same seed gives the same run.
    """
    int_in("layers", layers, 1, 100000)
    int_in("bins", bins, 2, 256)
    int_in("patience", patience, 1, 10 ** 7)
    int_in("max_iterations", max_iterations, 1, 10 ** 7)
    int_in("seed", seed, 0, 2 ** 64 - 1)
    if not (0 < float(cooling) < 1):
        raise ValueError(f"cooling must be in (0, 1), got {cooling}")
    if isinstance(fitness, (list, tuple)):
        fitness = list(fitness)
        if len(fitness) != layers or not all(isinstance(f, C.vbq.Objective) for f in fitness):
            raise ValueError("a native SA fitness needs one objective per layer")
    elif callable(fitness):
        user = fitness

        def fitness(layer, ab, state):
            out = np.asarray(user(layer, ab, state), dtype=np.float64).reshape(-1)
            if out.size != len(ab):
                raise ValueError(f"fitness must return {len(ab)} values (one per candidate), got {out.size}")
            if np.isnan(out).any():
                raise ValueError(f"fitness returned NaN for layer {layer}")
            return out
    else:
        raise TypeError("fitness must be a callable or a list of native objectives")
    step, close = progress_callback(progress, max_iterations, "VBQ SA")
    try:
        r = C.vbq.sa_run(fitness, layers, bins, _per_layer("a0", a0, layers), _per_layer("b0", b0, layers),
                         positive("t0", t0), float(cooling), positive("scale", scale), patience,
                         max_iterations, seed, step)
    finally:
        close()
    # The progress callback never stops the loop, so the cap is the only other way out.
    return SAResult(**r, stop="patience" if r["converged"] else "max_iterations")


def acceptance(e: float, e_new: float, temperature: float, scale: float = 100.0) -> float:
    """The paper's P(e, e', T): 1 if e' >= e, else exp((e' - e) * scale / T)."""
    return C.vbq.sa_acceptance(float(e), float(e_new), positive("temperature", temperature),
                               positive("scale", scale))
