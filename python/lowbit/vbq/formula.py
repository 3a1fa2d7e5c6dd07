"""Paper 003's representative-value formula, its regression and the (a~, log b) heat map.

    V(x) = sign(x - d) * b * (a^|x - d| - 1) + c          (Eq. 1)
    V(x) = sign(x) * b * (a^|x| - 1)                        (Eq. 2, symmetric)

x is the bin index normalized to [-1/2, 1/2]: x_i = i / (N - 1) - 1/2. a ~ 1 gives a
fixed-point-like (linear) codebook, a >> 1 a floating-point-like (exponential) one.
"""
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .._native import C
from ._checks import as_float64, int_in, positive


def formula(a: float, b: float, bins: int, c: float = 0.0, d: float = 0.0) -> np.ndarray:
    """The N = bins values V(x_i) of Eq. 1 (Eq. 2 with c = d = 0)."""
    int_in("bins", bins, 2, 256)
    return C.vbq.formula_values(positive("a", a), float(b), float(c), float(d), bins)


@dataclass(frozen=True)
class FormulaFit:
    a: float
    b: float
    c: float
    d: float
    r2: float   # coefficient of determination of the fit
    sse: float  # residual sum of squares

    def values(self, bins: int) -> np.ndarray:
        return formula(self.a, self.b, bins, self.c, self.d)


def fit_formula(values, symmetric: bool = True) -> FormulaFit:
    """Nonlinear least squares of sorted representative values onto Eq. 2 (symmetric)
    or Eq. 1, with R^2 (paper 003, Fig. 8)."""
    v = as_float64("values", values, 1)
    if v.size < 3:
        raise ValueError(f"values must hold at least 3 entries, got {v.size}")
    return FormulaFit(*C.vbq.fit_formula(v, bool(symmetric)))


def a_from_tilde(a_tilde, bins: int):
    """The paper's heat-map axis a~ = a^(1/N), back to a."""
    return np.asarray(a_tilde, dtype=np.float64) ** bins


def heatmap(fitness: Callable[[np.ndarray], Sequence[float]], bins: int, a_tilde, b_values,
            batch: int = 64) -> np.ndarray:
    """fitness of the Eq. 2 codebook at every (a~, b) of a grid, [len(a_tilde), len(b_values)].

    fitness takes a [n, bins] array of codebooks and returns n values; points whose
    codebook does not strictly increase (a = 1, or (a - 1) * b <= 0) are NaN.
    """
    int_in("bins", bins, 2, 256)
    a_values = a_from_tilde(as_float64("a_tilde", a_tilde, 1), bins)
    b_values = as_float64("b_values", b_values, 1)
    grid = np.full((a_values.size, b_values.size), np.nan)
    cells, books = [], []
    for i, a in enumerate(a_values):
        for j, b in enumerate(b_values):
            if a > 0 and b != 0:
                v = formula(a, b, bins)
                if np.all(np.diff(v) > 0):
                    cells.append((i, j))
                    books.append(v)
    for s in range(0, len(books), batch):
        out = np.asarray(fitness(np.stack(books[s:s + batch])), dtype=np.float64).reshape(-1)
        for (i, j), value in zip(cells[s:s + batch], out):
            grid[i, j] = value
    return grid
