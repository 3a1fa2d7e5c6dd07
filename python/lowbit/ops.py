"""Typed wrappers over the torch.ops.lowbit operators.

On CPU the operators run the native kernels; on every other device (CUDA, meta, ...)
they run the pure-PyTorch references in lowbit.reference, registered here as the
operators' CompositeExplicitAutograd implementation. A GPU training loop therefore
works unchanged, only slower; the STE's autograd rule is native for every device.
"""
from typing import List, Optional, Tuple

import torch

from . import reference
from ._native import C  # noqa: F401  (registers the operators)

_ops = torch.ops.lowbit

_fallback = torch.library.Library("lowbit", "IMPL")
for _name in ("quantize", "dequantize", "fake_quant", "fake_quant_mask", "ste_fake_quant",
              "qparams", "pack", "unpack"):
    _fallback.impl(_name, getattr(reference, _name), "CompositeExplicitAutograd")


def quantize(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
             p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Integer codes of w (int8 for symmetric / pow2, uint8 for asymmetric / codebook)."""
    return _ops.quantize(w, scheme, bits, p0, p1)


def dequantize(codes: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
               p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The values of integer codes, in the parameters' dtype."""
    return _ops.dequantize(codes, scheme, bits, p0, p1)


def fake_quant(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
               p1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """w rounded to the scheme's levels (quantize then dequantize in one pass)."""
    return _ops.fake_quant(w, scheme, bits, p0, p1)


def fake_quant_mask(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
                    p1: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """fake_quant and a bool mask that is False where the quantizer saturates."""
    return _ops.fake_quant_mask(w, scheme, bits, p0, p1)


def ste_fake_quant(w: torch.Tensor, scheme: str, bits: int, p0: torch.Tensor,
                   p1: Optional[torch.Tensor] = None, clip_grad: bool = False) -> torch.Tensor:
    """fake_quant whose gradient passes straight through to w (zeroed where the
    quantizer saturates when clip_grad=True)."""
    return _ops.ste_fake_quant(w, scheme, bits, p0, p1, clip_grad)


def qparams(w: torch.Tensor, scheme: str, bits: int, groups: int, method: str) -> List[torch.Tensor]:
    """Per-group parameters: [step] (symmetric), [scale, zero_point] (asymmetric),
    [max_level] (pow2)."""
    return _ops.qparams(w, scheme, bits, groups, method)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack uint8 / int8 codes into a uint8 bit stream of ceil(n * bits / 8) bytes."""
    return _ops.pack(codes, bits)


def unpack(packed: torch.Tensor, bits: int, count: int, is_signed: bool) -> torch.Tensor:
    """Inverse of pack: `count` codes, int8 if is_signed else uint8 (1-D)."""
    return _ops.unpack(packed, bits, count, is_signed)
