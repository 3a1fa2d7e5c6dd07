"""Pure-PyTorch references of the quantizers (same signatures as torch.ops.lowbit.*).

They run on any device and define the results the C++ kernels must reproduce: codes
exactly, values to the last bit where the arithmetic is the same. Rounding is the
papers' floor(|x| + 0.5) with the sign restored (half away from zero), never
torch.round (half to even).
"""
from typing import Optional, Tuple

import torch

from .. import schemes as _schemes
from ._checks import check_finite, check_params, check_weight, code_dtype


def _quantize(w, scheme, bits, p0, p1):
    """(codes, fake-quantized values, saturation mask) of w, all shaped like w."""
    check_weight(w)
    groups, p = check_params(w, w.dtype, scheme, bits, p0, p1)
    if w.is_meta:  # shapes only: many ATen ops have no meta kernel in torch 1.13
        return (torch.empty_like(w, dtype=code_dtype(scheme)), torch.empty_like(w),
                torch.empty_like(w, dtype=torch.bool))
    check_finite(w)
    q, fq, mask = _schemes.get(scheme).quantize_ref(w.reshape(groups, -1), bits, p, p1)
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
    spec = _schemes.get(scheme)
    if codes.dtype != spec.code_dtype:
        raise TypeError(f"codes for the {scheme!r} scheme must be {spec.code_dtype}, got {codes.dtype}")
    if p0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"parameters must be float32 or float64, got {p0.dtype}")
    groups, p = check_params(codes, p0.dtype, scheme, bits, p0, p1)
    if codes.is_meta:
        return torch.empty_like(codes, dtype=p0.dtype)
    out, bad = spec.dequantize_ref(codes.reshape(groups, -1).to(torch.int64), bits, p, p1)
    if bool(bad.any()):
        raise ValueError(f"codes hold a value outside the range of {bits}-bit {scheme!r} codes")
    return out.reshape(codes.shape)
