"""Reference of torch.ops.lowbit.qparams: step sizes and ranges per group.

The L2 step follows the same algorithm as cpp/kernels/qstep.cpp but always on the exact
sorted data (the kernel sorts groups of up to 65536 values and summarizes larger ones with
a histogram, then certifies its answer against the grid): the grid of 1000 steps, Lloyd
iterations from the best local minima of the grid (at most three, within 1% of the grid's
best), and those results and the no-clipping step compared by their error in the
quantizer's own arithmetic (codes from |w| / D in the weight dtype, values k * D in it).
"""
from typing import List

import torch

from .. import schemes as _schemes
from ._checks import check_bits, check_finite, check_weight
from .grids import MAX_EXP, round_half_away, round_half_up, round_log2

# L2-optimal step / sigma of a unit Gaussian, b = 2..8 (mirrors cpp/kernels/params.cpp).
GAUSSIAN_STEP = {2: 1.22401, 3: 0.65077, 4: 0.35341, 5: 0.19325, 6: 0.10549, 7: 0.05726,
                 8: 0.03087}
GRID = 1000
STARTS = 3
LLOYD_ITERS = 30
NEAR = 1.01  # Lloyd starts from grid minima whose error is at most NEAR * the grid's best


def _moments(a: torch.Tensor, S1: torch.Tensor, D: torch.Tensor, L: int):
    """Sum k|w| and sum k^2 for steps D [m] on sorted |w| a (float64), S1 its prefix sums."""
    n = a.numel()
    k = torch.arange(1, L + 1, dtype=torch.float64)
    lo = torch.searchsorted(a, (k - 0.5)[None, :] * D[:, None])          # first index of level k
    hi = torch.cat([lo[:, 1:], torch.full((D.numel(), 1), n, dtype=lo.dtype)], 1)
    return (k * (S1[hi] - S1[lo])).sum(1), (k * k * (hi - lo).to(torch.float64)).sum(1)


def _exact_error(x: torch.Tensor, D: torch.Tensor, L: int) -> torch.Tensor:
    """Squared error of steps D [m] in the quantizer's own arithmetic: codes from |x| / D in
    x's dtype, rounded exactly, values k * D in x's dtype; summed in float64."""
    Dt = D.to(x.dtype)[:, None]
    k = round_half_up(torch.clamp(x.abs()[None, :] / Dt, max=L))
    return ((k * Dt).to(torch.float64) - x.abs().to(torch.float64)[None, :]).pow(2).sum(1)


def qstep_l2_group(x: torch.Tensor, bits: int) -> float:
    L = 2 ** (bits - 1) - 1
    a = torch.sort(x.abs().to(torch.float64)).values
    maxabs = float(a[-1])
    if maxabs == 0:
        return 1.0
    sumsq = float((a * a).sum())
    S1 = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(a, 0)])
    D_hi = maxabs / (L - 0.5)
    D = D_hi * torch.arange(1, GRID + 1, dtype=torch.float64) / GRID
    Sk1, Sk2 = _moments(a, S1, D, L)
    E = torch.clamp(sumsq - 2 * D * Sk1 + D * D * Sk2, min=0)  # >= 0 but for the rounding
    Ep = torch.cat([torch.tensor([float("inf")], dtype=torch.float64), E,
                    torch.tensor([float("inf")], dtype=torch.float64)])
    is_min = (E <= Ep[:-2]) & (E <= Ep[2:]) & (E <= NEAR * E.min())
    idx = torch.nonzero(is_min).flatten()
    idx = idx[torch.argsort(E[idx], stable=True)][:STARTS]
    cands = []
    for j in idx.tolist():
        d, best = float(D[j]), float(E[j])
        for _ in range(LLOYD_ITERS):
            s1, s2 = _moments(a, S1, torch.tensor([d], dtype=torch.float64), L)
            if float(s2) <= 0:
                break
            dn = float(s1) / float(s2)
            s1n, s2n = _moments(a, S1, torch.tensor([dn], dtype=torch.float64), L)
            en = sumsq - 2 * dn * float(s1n) + dn * dn * float(s2n)
            if not en < best or dn == d:
                break
            d, best = dn, en
        cands.append(d)
    fallback = torch.tensor([D_hi], dtype=torch.float64).to(x.dtype)
    if not fallback[0] > 0:  # subnormal group: max|w| itself is positive in x's dtype
        fallback = torch.tensor([maxabs], dtype=torch.float64).to(x.dtype)
    cand = torch.cat([fallback, torch.tensor(cands, dtype=torch.float64).to(x.dtype)])
    cand = cand[cand > 0]
    best_D, best_E = float(cand[0]), float("inf")
    Ex = _exact_error(x, cand, L)
    for c in range(cand.numel()):
        if float(Ex[c]) < best_E:
            best_E, best_D = float(Ex[c]), float(cand[c])
    return best_D


def _positive_step(step: torch.Tensor, maxabs: torch.Tensor) -> torch.Tensor:
    """1 for all-zero groups; max|w| where the rule underflowed (subnormal groups)."""
    step = torch.where(step > 0, step, maxabs)
    return torch.where(maxabs > 0, step, torch.ones_like(step))


def qparams(w: torch.Tensor, scheme: str, bits: int, groups: int, method: str) -> List[torch.Tensor]:
    check_weight(w)
    spec = _schemes.get(scheme)
    if not spec.calibrated:
        raise ValueError(f"qparams does not choose {scheme} parameters: {spec.step_note}")
    check_bits(bits, spec.min_bits, spec.max_bits, "qparams")
    if not isinstance(groups, int) or groups < 1 or w.shape[0] % groups != 0:
        raise ValueError(f"groups must divide w.size(0) = {w.shape[0]}, got {groups}")
    if method not in spec.step_rules:
        raise ValueError(f"method for {scheme!r} must be one of {spec.step_rules}, got {method!r}")
    if w.is_meta:
        shapes = [torch.empty(groups, dtype=w.dtype, device=w.device)]
        if spec.has_zero_point:   # p1: an int32 zero point or an offset in w's dtype
            p1_dtype = torch.int32 if spec.params[1].dtype == "int32" else w.dtype
            shapes.append(torch.empty(groups, dtype=p1_dtype, device=w.device))
        return shapes
    check_finite(w)
    return [p.to(w.device) for p in STEP_RULES[scheme, method](w.reshape(groups, -1), bits)]


def _symmetric_maxabs(x: torch.Tensor, bits: int):
    m = x.abs().amax(1)
    return [_positive_step(m / (2 ** (bits - 1) - 1), m)]


def _symmetric_meanstd(x: torch.Tensor, bits: int):
    m = x.abs().amax(1)
    rms = torch.sqrt((x.to(torch.float64) ** 2).sum(1) / x.shape[1])
    return [_positive_step((GAUSSIAN_STEP[bits] * rms).to(x.dtype), m)]


def _symmetric_l2(x: torch.Tensor, bits: int):
    return [torch.tensor([qstep_l2_group(x[g], bits) for g in range(x.shape[0])],
                         dtype=torch.float64).to(x.dtype)]


def _asymmetric_minmax(x: torch.Tensor, bits: int):
    qmax = 2 ** bits - 1
    lo = torch.clamp(x.amin(1), max=0)
    hi = torch.clamp(x.amax(1), min=0)
    s = hi / qmax - lo / qmax  # (hi - lo) / qmax without overflowing hi - lo
    s = torch.where(s > 0, s, torch.ones_like(s))
    zp = torch.clamp(round_half_away(-lo / s), 0, qmax).to(torch.int32)
    return [s, zp]


def _range_minmax(x: torch.Tensor, bits: int):
    """Paper 004's min/max: offset = min w, scale = (max w - min w) / (2^b - 1), no widening."""
    qmax = 2 ** bits - 1
    lo, hi = x.amin(1), x.amax(1)
    s = hi / qmax - lo / qmax  # (hi - lo) / qmax without overflowing hi - lo
    span = hi - lo             # a subnormal span; 1 for a constant group (every value code 0)
    s = torch.where(s > 0, s, torch.where(span > 0, span, torch.ones_like(s)))
    return [s, lo]


def _pow2_maxabs(x: torch.Tensor, bits: int):
    m = x.abs().amax(1)
    e = torch.where(m > 0, round_log2(torch.where(m > 0, m, torch.ones_like(m))),
                    torch.zeros_like(m, dtype=torch.int32))
    e = torch.clamp(e, max=MAX_EXP[x.dtype]).to(torch.float64)
    return [torch.ldexp(torch.ones_like(m, dtype=torch.float64), e).to(x.dtype)]


# (scheme, rule) -> the parameters of grouped weights [G, n]; the scheme table names the
# rules (SchemeSpec.step_rules) and a test checks that each one is here.
STEP_RULES = {
    ("symmetric", "l2"): _symmetric_l2,
    ("symmetric", "maxabs"): _symmetric_maxabs,
    ("symmetric", "meanstd"): _symmetric_meanstd,
    ("asymmetric", "minmax"): _asymmetric_minmax,
    ("pow2", "maxabs"): _pow2_maxabs,
    ("range", "minmax"): _range_minmax,
}
