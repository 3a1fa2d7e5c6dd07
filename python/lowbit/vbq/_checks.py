"""Argument checks shared by the VBQ entry points: clear errors naming the argument."""
import numbers

import numpy as np
import torch


def int_in(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def positive(name: str, value) -> float:
    value = float(value)
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def as_float64(name: str, values, ndim=None) -> np.ndarray:
    """A float64 NumPy copy of a tensor / array / list, finite, with the expected ndim."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.array(values, dtype=np.float64)
    if ndim is not None and arr.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return arr


def check_codebook(name: str, values, bins=None) -> np.ndarray:
    cb = as_float64(name, values, 1)
    if bins is not None and cb.size != bins:
        raise ValueError(f"{name} must hold {bins} values, got {cb.size}")
    if cb.size < 2 or not (np.diff(cb) > 0).all():
        raise ValueError(f"{name} must hold at least 2 strictly increasing values")
    return cb
