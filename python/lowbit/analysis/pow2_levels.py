"""Average bit-levels of power-of-two quantization (paper 004, Table 1 and Table 3c).

Unbounded power-of-two rounding maps every nonzero weight to sign * 2^e with
e = round(log2 |w|). A layer whose exponents run from e_lo to e_max needs
n = e_max - e_lo + 1 exponent codes plus a zero code and a sign bit:

    bit_levels = 1 + log2(n + 1)          (bits_needed = 1 + ceil(log2(n + 1)))

which is exactly the `bits` at which lowbit's bounded pow2 scheme (max level 2^e_max,
2^(bits-1) - 1 exponents) loses nothing to its exponent range. `coverage` < 1 lets the
rarest, smallest exponents go (flushed to zero): e_lo is the largest exponent with at
least `coverage` of the nonzero weights at or above it. The model average is over
layers, as in the paper, and also weighted by parameter count.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import nn

from ..ptq import plan
from ..reference.grids import round_log2


@dataclass(frozen=True)
class Pow2Levels:
    name: str
    numel: int
    max_exponent: int
    min_exponent: int        # e_lo after `coverage`
    exponents: int           # n = max_exponent - min_exponent + 1
    bit_levels: float        # 1 + log2(n + 1)
    bits_needed: int         # 1 + ceil(log2(n + 1))


@dataclass(frozen=True)
class Pow2Summary:
    layers: List[Pow2Levels]
    average_bit_levels: float    # mean over layers
    weighted_bit_levels: float   # weighted by parameters
    average_bits_needed: float


def tensor_pow2_levels(w: torch.Tensor, coverage: float = 1.0, name: str = "") -> Optional[Pow2Levels]:
    """Bit-levels of one tensor (None if it is all zeros)."""
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    a = w.detach().abs().reshape(-1)
    a = a[a > 0]
    if a.numel() == 0:
        return None
    e = round_log2(a.to(torch.float64) if a.dtype not in (torch.float32, torch.float64) else a)
    values, counts = torch.unique(e, return_counts=True)           # ascending exponents
    from_top = torch.cumsum(counts.flip(0), 0).to(torch.float64) / a.numel()
    keep = int((from_top < coverage - 1e-12).sum()) + 1              # exponents from the top
    e_max, e_lo = int(values[-1]), int(values.flip(0)[min(keep, values.numel()) - 1])
    n = e_max - e_lo + 1
    return Pow2Levels(name, w.numel(), e_max, e_lo, n, 1 + math.log2(n + 1),
                      1 + math.ceil(math.log2(n + 1)))


def pow2_bit_levels(model: nn.Module, coverage: float = 1.0, layers: Optional[Sequence[str]] = None,
                    **ptq_kwargs) -> Pow2Summary:
    """Bit-levels of every tensor `lowbit.ptq(model, 'pow2', ...)` would quantize (same
    layer selection arguments), and their averages."""
    modules = dict(model.named_modules())
    rows = []
    for t in plan(model, "pow2", 8, layers=layers, **ptq_kwargs):
        r = tensor_pow2_levels(getattr(modules[t.owner], t.param), coverage, t.name)
        if r is not None:
            rows.append(r)
    if not rows:
        raise ValueError("every selected tensor is all zeros: no power-of-two levels to count")
    total = sum(r.numel for r in rows)
    return Pow2Summary(rows, sum(r.bit_levels for r in rows) / len(rows),
                       sum(r.bit_levels * r.numel for r in rows) / total,
                       sum(r.bits_needed for r in rows) / len(rows))
