"""Argument checks shared by the references (the C++ adapters make the same checks).
Scheme facts come from the scheme table (lowbit.schemes), read at call time: the table
imports this package's grids, so this module must not use it while being imported."""
from typing import Optional, Tuple

import torch

from .. import schemes as _schemes


def check_scheme(scheme: str) -> None:
    _schemes.get(scheme)


def check_bits(bits: int, lo: int, hi: int, what: str) -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or not lo <= bits <= hi:
        raise ValueError(f"bits must be in [{lo}, {hi}] for {what}, got {bits!r}")


def check_weight(w: torch.Tensor, name: str = "w") -> None:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(w).__name__}")
    if w.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {w.dtype}")
    if w.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-dim tensor")
    if w.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(w.shape)})")


def check_finite(w: torch.Tensor) -> None:
    if not w.is_meta and not bool(torch.isfinite(w).all()):
        raise ValueError("w contains NaN or Inf; quantizers need finite weights")


def code_dtype(scheme: str) -> torch.dtype:
    return _schemes.get(scheme).code_dtype


def check_params(like: torch.Tensor, dtype: torch.dtype, scheme: str, bits: int,
                 p0: torch.Tensor, p1: Optional[torch.Tensor]) -> Tuple[int, torch.Tensor]:
    """Validates scheme parameters; returns (groups, p0 as [G] or [G, K])."""
    spec = _schemes.get(scheme)
    if like.dim() == 0 or like.numel() == 0:
        raise ValueError("w must be a non-empty tensor with at least one dimension, "
                         f"got shape {tuple(like.shape)}")
    name = spec.p0_name
    if p0.dtype != dtype:
        raise TypeError(f"{name} must be {dtype}, got {p0.dtype}")
    if p0.device != like.device:
        raise ValueError(f"{name} is on {p0.device} but the input is on {like.device}")
    data = not p0.is_meta
    check_bits(bits, spec.min_bits, spec.max_bits, f"the {scheme} scheme")
    rule = spec.params[0].rule
    if rule == "increasing":   # [K] or [G, K] sorted values
        cb = p0.unsqueeze(0) if p0.dim() == 1 else p0
        if cb.dim() != 2:
            raise ValueError(f"{name} must be [K] or [groups, K], got shape {tuple(p0.shape)}")
        K = cb.shape[1]
        if not 2 <= K <= 2 ** bits:
            raise ValueError(f"{name} must have between 2 and 2^bits = {2 ** bits} values, got {K}")
        if data and not bool(torch.isfinite(cb).all()):
            raise ValueError(f"{name} must be finite")
        if data and not bool((cb[:, 1:] > cb[:, :-1]).all()):
            raise ValueError(f"{name} must be strictly increasing (sorted, no duplicates)")
        p = cb
    else:                      # [G] positive values
        if p0.dim() != 1:
            raise ValueError(f"{name} must be 1-D [groups], got shape {tuple(p0.shape)}")
        p = p0
        if data and not bool((torch.isfinite(p) & (p > 0)).all()):
            raise ValueError(f"{name} must be positive and finite")
        if data and rule == "power_of_two" and not bool((torch.frexp(p)[0] == 0.5).all()):
            raise ValueError(f"{name} must be a power of two")
    groups = p.shape[0]
    if groups < 1 or like.shape[0] % groups != 0:
        raise ValueError(f"{name} has {groups} groups but w.size(0) = {like.shape[0]} "
                         "is not a multiple of it")
    if spec.has_zero_point:    # p1: an int32 code (zero point) or a finite float (offset)
        p1_name, is_code = spec.params[1].name, spec.params[1].dtype == "int32"
        if p1 is None:
            raise ValueError(f"the {scheme} scheme needs {p1_name} (p1)")
        if is_code and p1.dtype != torch.int32:
            raise TypeError(f"{p1_name} must be int32, got {p1.dtype}")
        if not is_code and p1.dtype != dtype:
            raise TypeError(f"{p1_name} must have the dtype of {name} ({dtype}), got {p1.dtype}")
        if p1.device != like.device:
            raise ValueError(f"{p1_name} is on {p1.device} but the input is on {like.device}")
        if p1.dim() != 1 or p1.numel() != groups:
            raise ValueError(f"{p1_name} must have shape [{groups}], got {tuple(p1.shape)}")
        if is_code and not p1.is_meta and not bool(((p1 >= 0) & (p1 < 2 ** bits)).all()):
            raise ValueError(f"{p1_name} must be in [0, {2 ** bits - 1}]")
        if not is_code and not p1.is_meta and not bool(torch.isfinite(p1).all()):
            raise ValueError(f"{p1_name} must be finite")
    elif p1 is not None:
        raise ValueError("p1 is only used by schemes with a second parameter, a zero point or an offset "
                         f"({', '.join(n for n, s in _schemes.SCHEMES.items() if s.has_zero_point)})")
    return groups, p
