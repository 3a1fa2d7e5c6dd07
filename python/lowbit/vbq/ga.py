"""Genetic algorithm over sorted codebooks (paper 003, Sec. III-B), run in C++.

One generation: the best genome is copied (elite), then R_r of the population in all
(elite included) are copies chosen by roulette among the rest (probability
proportional to fitness; fitness - min when some are negative), 2 R_c are children of
the centred crossover (the values nearest a random centre are swapped between two
random parents), and R_m are mutants (one value moved uniformly between its neighbours).
Copies keep their fitness, so each generation evaluates only the new genomes.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .._native import C
from ._checks import as_float64, int_in
from ._progress import progress_callback

Fitness = Union[Callable[[np.ndarray], Sequence[float]], "C.vbq.Objective"]


@dataclass(frozen=True)
class GAResult:
    best: np.ndarray            # [bins] sorted codebook
    best_fitness: float
    best_history: np.ndarray    # best fitness per generation (initial generation first)
    mean_history: np.ndarray    # mean fitness per generation
    population: np.ndarray      # final [population, bins]
    fitness: np.ndarray         # final [population]
    evaluations: int


def _checked(fitness: Callable) -> Callable:
    """The user's fitness with its answer checked: n finite numbers for n genomes."""
    def call(pop: np.ndarray) -> np.ndarray:
        out = np.asarray(fitness(pop), dtype=np.float64).reshape(-1)
        if out.size != len(pop):
            raise ValueError(f"fitness must return {len(pop)} values (one per genome), got {out.size}")
        bad = np.isnan(out) | (out == np.inf)
        if bad.any():
            raise ValueError(f"fitness returned NaN or +inf for genome(s) {np.flatnonzero(bad).tolist()} "
                             "(finite values expected; -inf rejects a genome)")
        return out
    return call


def ga(fitness: Fitness, bins: int, lo: float, hi: float, *, symmetric: bool = False,
       population: int = 50, generations: int = 100, rates=(0.3, 0.5, 0.2), seed: int = 0,
       init=None, progress: bool = False) -> GAResult:
    """Maximize fitness over sorted codebooks of `bins` values in [lo, hi].

    fitness: a callable taking a [n, bins] float64 array (a batch of genomes) and returning
    n numbers (larger is better, e.g. accuracy; -inf rejects a genome), or a native objective (`weight_mse`,
    `layer_output_mse`), whose negative is maximized entirely in C++.
    symmetric: v[bins-1-i] = -v[i] within [-max(|lo|, |hi|), max(|lo|, |hi|)].
    rates: (R_r, 2 R_c, R_m), summing to 1. init: optional [n, bins] starting genomes.
    The same seed gives the same run.
    """
    int_in("bins", bins, 2, 256)
    int_in("population", population, 2, 100000)
    int_in("generations", generations, 0, 10 ** 7)
    int_in("seed", seed, 0, 2 ** 64 - 1)
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be finite with lo < hi, got lo={lo}, hi={hi}")
    rates = tuple(float(r) for r in rates)
    if len(rates) != 3 or min(rates) < 0 or abs(sum(rates) - 1) > 1e-9:
        raise ValueError(f"rates must be 3 numbers >= 0 summing to 1 (R_r, 2R_c, R_m), got {rates}")
    if init is not None:
        init = as_float64("init", init, 2)
    if not isinstance(fitness, C.vbq.Objective):
        if not callable(fitness):
            raise TypeError("fitness must be a callable or a native objective")
        fitness = _checked(fitness)
    step, close = progress_callback(progress, generations + 1, "VBQ GA")
    try:
        r = C.vbq.ga_run(fitness, bins, population, generations, lo, hi, bool(symmetric),
                         list(rates), seed, init, step)
    finally:
        close()
    return GAResult(**r)
