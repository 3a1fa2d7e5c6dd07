"""The value grid of every scheme as plain PyTorch math, one quantize / dequantize pair
per scheme. Inputs are already checked and grouped: x is [G, n] (float), p0 is [G] (or
[G, K] for a codebook), p1 the int32 zero point [G], the float offset [G] or None. Quantizers return (codes as
int64, fake-quantized values, mask: False where the quantizer saturates); dequantizers
return (values, bad: True where a code is outside the scheme's range).

Rounding is the papers' floor(|x| + 0.5) with the sign restored (half away from zero),
never torch.round (half to even), and it is exact: |x| + 0.5 itself would round in
floating point (0.49999997 + 0.5 is 1.0 in float32), so round_half_up takes
r = floor(|x|) and adds 1 when |x| - r >= 0.5, a subtraction without rounding. This module imports nothing from lowbit: the scheme
table (lowbit.schemes) points at these functions, and the checked references
(reference/quantize.py) dispatch through that table.
"""
import torch

# Smallest float >= sqrt(1/2) in each dtype: round(log2 a) = E when the frexp mantissa
# of a reaches it, else E - 1 (a tie is impossible: sqrt(1/2) is irrational).
SQRT_HALF_UP = {torch.float32: 0.7071068286895752, torch.float64: 0.7071067811865476}
MAX_EXP = {torch.float32: 127, torch.float64: 1023}


def round_half_up(t: torch.Tensor) -> torch.Tensor:
    """floor(t + 1/2) for t >= 0, exactly: t - floor(t) has no rounding error (t < 1: it
    is t; t >= 1: floor(t) <= t < 2 floor(t), Sterbenz; huge t are integers)."""
    r = torch.floor(t)
    return r + (t - r >= 0.5).to(t.dtype)


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Half away from zero, exactly (Inf and NaN pass through)."""
    return torch.copysign(round_half_up(x.abs()), x)


def round_log2(a: torch.Tensor) -> torch.Tensor:
    """round(log2(a)) for a > 0 as int32, from the exact frexp decomposition."""
    m, e = torch.frexp(a)
    return torch.where(m >= SQRT_HALF_UP[a.dtype], e, e - 1).to(torch.int32)


def pow2_levels(max_level: torch.Tensor, bits: int, k: torch.Tensor) -> torch.Tensor:
    """Magnitude of power-of-two code k (0 -> 0) for each group's max_level [G, 1]."""
    emax = torch.frexp(max_level)[1].to(torch.int64) - 1
    nexp = 2 ** (bits - 1) - 1
    emin = emax - nexp + 1
    k64 = k.to(torch.int64)
    exact = torch.ldexp(torch.ones(k.shape, dtype=torch.float64, device=k.device),
                        (emin + k64 - 1).to(torch.float64))
    return torch.where(k64 > 0, exact, torch.zeros_like(exact)).to(max_level.dtype)


# ---- symmetric M-level fixed point (paper 002) ----------------------------------------------

def symmetric_quantize(x, bits, p0, p1):
    L = 2 ** (bits - 1) - 1
    D = p0.reshape(-1, 1)
    t = x.abs() / D
    mag = round_half_up(torch.clamp(t, max=L))
    q = torch.where(x < 0, -mag, mag)
    return q.to(torch.int64), q * D, t < L + 0.5


def symmetric_dequantize(q, bits, p0, p1):
    L = 2 ** (bits - 1) - 1
    return q.to(p0.dtype) * p0.reshape(-1, 1), q.abs() > L


# ---- uniform asymmetric with zero point (paper 004) -----------------------------------------

def asymmetric_quantize(x, bits, p0, p1):
    qmax = 2 ** bits - 1
    s = p0.reshape(-1, 1)
    zp = p1.reshape(-1, 1).to(x.dtype)
    r = round_half_away(torch.clamp(x / s, -(qmax + 1), qmax + 1)) + zp
    q = torch.clamp(r, 0, qmax)
    return q.to(torch.int64), (q - zp) * s, r == q


def asymmetric_dequantize(q, bits, p0, p1):
    out = (q - p1.reshape(-1, 1)).to(p0.dtype) * p0.reshape(-1, 1)
    return out, q > 2 ** bits - 1


# ---- min/max range with a float offset (paper 004's formula) ----------------------------------

def _range_ratio(x, s, o):
    """(x - o) / s, or x / s - o / s where x - o overflows (as the C++ kernel)."""
    d = x - o
    return torch.where(torch.isfinite(d), d / s, x / s - o / s)


def range_value(q, s, o):
    """o + q s, or 2 (o / 2 + q (s / 2)) where that overflows (q in the dtype of s)."""
    v = o + q * s
    return torch.where(torch.isfinite(v), v, (o * 0.5 + q * (s * 0.5)) * 2)


def range_quantize(x, bits, p0, p1):
    qmax = 2 ** bits - 1
    s = p0.reshape(-1, 1)
    o = p1.reshape(-1, 1)
    r = round_half_away(torch.clamp(_range_ratio(x, s, o), -(qmax + 1), qmax + 1))
    q = torch.clamp(r, 0, qmax)
    return q.to(torch.int64), range_value(q, s, o), r == q


def range_dequantize(q, bits, p0, p1):
    return range_value(q.to(p0.dtype), p0.reshape(-1, 1), p1.reshape(-1, 1)), q > 2 ** bits - 1


# ---- power of two: sign + exponents, with a zero code ---------------------------------------

def pow2_quantize(x, bits, p0, p1):
    level = p0.reshape(-1, 1)
    emax = torch.frexp(level)[1].to(torch.int32) - 1
    emin = emax - (2 ** (bits - 1) - 1) + 1
    a = x.abs()
    nonzero = a > 0
    e = round_log2(torch.where(nonzero, a, torch.ones_like(a)))
    k = torch.where(e < emin, torch.zeros_like(e), torch.clamp(torch.minimum(e, emax) - emin + 1, min=0))
    k = torch.where(nonzero, k, torch.zeros_like(k))
    q = torch.where(x < 0, -k, k)
    mag = pow2_levels(level, bits, k)
    return q.to(torch.int64), torch.where(x < 0, -mag, mag), ~(nonzero & (e > emax))


def pow2_dequantize(q, bits, p0, p1):
    mag = pow2_levels(p0.reshape(-1, 1), bits, q.abs().clamp(max=127))
    return torch.where(q < 0, -mag, mag), q.abs() > 2 ** (bits - 1) - 1


# ---- codebook / VBQ: nearest of K sorted values ---------------------------------------------

def codebook_quantize(x, bits, p0, p1):
    cb = p0
    mid = cb[:, :-1] * 0.5 + cb[:, 1:] * 0.5
    q = torch.empty(x.shape, dtype=torch.int64, device=x.device)
    step = max(1, (1 << 22) // max(1, mid.shape[1]))  # bound the [G, chunk, K] temporary
    for s in range(0, x.shape[1], step):
        xs = x[:, s:s + step, None]
        m = mid[:, None, :]
        above = (xs > m) | ((xs == m) & (m >= 0))   # a midpoint goes to the value farther from 0
        q[:, s:s + step] = above.sum(-1)
    fq = torch.gather(cb, 1, q)
    lo = (cb[:, 0] - (cb[:, 1] - cb[:, 0]) * 0.5).reshape(-1, 1)
    hi = (cb[:, -1] + (cb[:, -1] - cb[:, -2]) * 0.5).reshape(-1, 1)
    return q, fq, (x >= lo) & (x <= hi)


def codebook_dequantize(q, bits, p0, p1):
    return torch.gather(p0, 1, q.clamp(max=p0.shape[1] - 1)), q >= p0.shape[1]
