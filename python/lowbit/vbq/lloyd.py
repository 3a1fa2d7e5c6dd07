"""Lloyd-Max (1-D k-means) codebooks: the baseline every VBQ result is compared with."""
import numpy as np

from .._native import C
from ..quant import QParams, codebook
from ._checks import as_float64, check_codebook, int_in


def lloyd_max(w, bins: int, max_iter: int = 300, tol: float = 1e-9, init=None) -> np.ndarray:
    """The bins-level MSE-optimal codebook of the values in w (any shape), sorted.

    Starts from the quantiles (i + 1/2) / bins of w (or `init`), alternates nearest-value
    assignment (midpoint boundaries, the codebook quantizer's tie rule) and cell means,
    and stops when no value moves more than tol * (max w - min w) or after max_iter.
    """
    int_in("bins", bins, 2, 256)
    int_in("max_iter", max_iter, 0, 10 ** 7)
    x = as_float64("w", w).reshape(-1)
    if init is not None:
        init = check_codebook("init", init, bins)
    values, _ = C.vbq.lloyd_max(x, bins, max_iter, float(tol), init)
    return values


def lloyd_codebook(w, bits: int, **kwargs) -> QParams:
    """lb.codebook(...) of the 2^bits-level Lloyd-Max codebook of w."""
    int_in("bits", bits, 1, 8)
    return codebook(lloyd_max(w, 2 ** bits, **kwargs), bits=bits)
