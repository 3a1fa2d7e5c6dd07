"""Pure-PyTorch references of the quantizers (same signatures as torch.ops.lowbit.*).

They run on any device and define the results the C++ kernels must reproduce: codes
exactly, values to the last bit where the arithmetic is the same. Rounding is the
papers' floor(|x| + 0.5) with the sign restored (half away from zero), never
torch.round (half to even).
"""
from typing import Optional, Tuple

import torch

from ._checks import check_finite, check_params, check_scheme, check_weight, code_dtype

# Smallest float >= sqrt(1/2) in each dtype: round(log2 a) = E when the frexp mantissa
# of a reaches it, else E - 1 (a tie is impossible: sqrt(1/2) is irrational).
SQRT_HALF_UP = {torch.float32: 0.7071068286895752, torch.float64: 0.7071067811865476}
MAX_EXP = {torch.float32: 127, torch.float64: 1023}


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, -torch.floor(-x + 0.5), torch.floor(x + 0.5))


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


def _quantize(w, scheme, bits, p0, p1):
    """(codes, fake-quantized values, saturation mask) of w, all shaped like w."""
    check_weight(w)
    groups, p = check_params(w, w.dtype, scheme, bits, p0, p1)
    if w.is_meta:  # shapes only: many ATen ops have no meta kernel in torch 1.13
        return (torch.empty_like(w, dtype=code_dtype(scheme)), torch.empty_like(w),
                torch.empty_like(w, dtype=torch.bool))
    check_finite(w)
    x = w.reshape(groups, -1)
    if scheme == "symmetric":
        L = 2 ** (bits - 1) - 1
        D = p.reshape(groups, 1)
        t = x.abs() / D + 0.5
        mag = torch.clamp(torch.floor(t), max=L)
        q = torch.where(x < 0, -mag, mag)
        fq, mask = q * D, t < L + 1
    elif scheme == "asymmetric":
        qmax = 2 ** bits - 1
        s = p.reshape(groups, 1)
        zp = p1.reshape(groups, 1).to(w.dtype)
        r = round_half_away(torch.clamp(x / s, -(qmax + 1), qmax + 1)) + zp
        q = torch.clamp(r, 0, qmax)
        fq, mask = (q - zp) * s, r == q
    elif scheme == "pow2":
        level = p.reshape(groups, 1)
        emax = torch.frexp(level)[1].to(torch.int32) - 1
        emin = emax - (2 ** (bits - 1) - 1) + 1
        a = x.abs()
        nonzero = a > 0
        e = round_log2(torch.where(nonzero, a, torch.ones_like(a)))
        k = torch.where(e < emin, torch.zeros_like(e), torch.clamp(torch.minimum(e, emax) - emin + 1, min=0))
        k = torch.where(nonzero, k, torch.zeros_like(k))
        q = torch.where(x < 0, -k, k)
        mag = pow2_levels(level, bits, k)
        fq = torch.where(x < 0, -mag, mag)
        mask = ~(nonzero & (e > emax))
    else:  # codebook
        cb = p
        mid = cb[:, :-1] * 0.5 + cb[:, 1:] * 0.5
        q = torch.empty(x.shape, dtype=torch.int64, device=x.device)
        step = max(1, (1 << 22) // max(1, mid.shape[1]))  # bound the [G, chunk, K] temporary
        for s in range(0, x.shape[1], step):
            xs = x[:, s:s + step, None]
            m = mid[:, None, :]
            above = (xs > m) | ((xs == m) & (m >= 0))
            q[:, s:s + step] = above.sum(-1)
        fq = torch.gather(cb, 1, q)
        lo = (cb[:, 0] - (cb[:, 1] - cb[:, 0]) * 0.5).reshape(groups, 1)
        hi = (cb[:, -1] + (cb[:, -1] - cb[:, -2]) * 0.5).reshape(groups, 1)
        mask = (x >= lo) & (x <= hi)
    return (q.to(code_dtype(scheme)).reshape(w.shape), fq.reshape(w.shape),
            mask.reshape(w.shape))


def quantize(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
             p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Integer codes of w: int8 for symmetric / pow2, uint8 for asymmetric / codebook."""
    return _quantize(w, scheme, bits, p0, p1)[0]


def fake_quant(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
               p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """w rounded to the scheme's levels, in w's dtype."""
    return _quantize(w, scheme, bits, p0, p1)[1]


def fake_quant_mask(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
                    p1: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """fake_quant and a bool mask that is False where the quantizer saturates."""
    _, fq, mask = _quantize(w, scheme, bits, p0, p1)
    return fq, mask


def ste_fake_quant(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
                   p1: Optional[torch.Tensor] = None, clip_grad: bool = False) -> torch.Tensor:
    """fake_quant with a straight-through gradient (zeroed where saturated if clip_grad)."""
    fq, mask = fake_quant_mask(w, scheme, bits, p0, p1)
    g = w if not clip_grad else w * mask.to(w.dtype) + (w * ~mask).detach()
    return g + (fq - g).detach()


def dequantize(codes: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
               p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Values of integer codes, in the parameters' dtype."""
    check_scheme(scheme)
    if codes.dtype != code_dtype(scheme):
        raise TypeError(f"codes for the {scheme!r} scheme must be {code_dtype(scheme)}, got {codes.dtype}")
    if p0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"parameters must be float32 or float64, got {p0.dtype}")
    groups, p = check_params(codes, p0.dtype, scheme, bits, p0, p1)
    if codes.is_meta:
        return torch.empty_like(codes, dtype=p0.dtype)
    q = codes.reshape(groups, -1).to(torch.int64)
    if scheme == "symmetric":
        L = 2 ** (bits - 1) - 1
        bad = q.abs() > L
        out = q.to(p.dtype) * p.reshape(groups, 1)
    elif scheme == "asymmetric":
        bad = q > 2 ** bits - 1
        out = (q - p1.reshape(groups, 1)).to(p.dtype) * p.reshape(groups, 1)
    elif scheme == "pow2":
        bad = q.abs() > 2 ** (bits - 1) - 1
        mag = pow2_levels(p.reshape(groups, 1), bits, q.abs().clamp(max=127))
        out = torch.where(q < 0, -mag, mag)
    else:
        bad = q >= p.shape[1]
        out = torch.gather(p, 1, q.clamp(max=p.shape[1] - 1))
    if not codes.is_meta and bool(bad.any()):
        raise ValueError(f"codes hold a value outside the range of {bits}-bit {scheme!r} codes")
    return out.reshape(codes.shape)
