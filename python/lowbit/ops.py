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


def discovered_ops() -> List[str]:
    """The names of the torch.ops.lowbit operators, read from the registered schemas
    (each cpp/ops/*_ops.cpp defines its own), so no Python list can fall out of step with C++."""
    return sorted({s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas()
                   if s.name.startswith("lowbit::")})


def _register_references() -> None:
    names = discovered_ops()
    missing = [n for n in names if not callable(getattr(reference, n, None))]
    if missing:
        raise RuntimeError(f"torch.ops.lowbit ops without a reference in lowbit.reference: {missing}; "
                           "every op needs a pure-PyTorch reference with the same signature")
    for name in names:
        _fallback.impl(name, getattr(reference, name), "CompositeExplicitAutograd")


_fallback = torch.library.Library("lowbit", "IMPL")
_register_references()


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


# ---- packed inference -----------------------------------------------------------------------

def pack_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """[O, K] codes -> [O, ceil(K / 8) * bits] uint8, each row packed on its own (signed
    int8 codes offset by 2^(bits-1), as in pack)."""
    return _ops.pack_rows(codes, bits)


def quantize_activations(x: torch.Tensor, act_bits: int = 8,
                         x_scale: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric integer codes of x (int8, |code| <= 2^(act_bits-1) - 1) and their step
    (max|x| / (2^(act_bits-1) - 1) unless x_scale is given; then larger values saturate)."""
    return _ops.quantize_activations(x, act_bits, x_scale)


def shift_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int,
                     method: str = "auto") -> torch.Tensor:
    """Exact int64 sums x_codes @ W.T for row-packed power-of-two codes, W = sign(c) *
    2^(|c| - k_lo) (k_lo = max(1, 2^(bits-1) - 31)); method 'literal', 'int8' (bits <= 4),
    'int16' (bits = 5) or 'auto' (the multiply-add that fits, else literal)."""
    return _ops.shift_matmul_int(x_codes, w_packed, bits, method)


def shift_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
                 bias: Optional[torch.Tensor] = None, act_bits: int = 8,
                 x_scale: Optional[float] = None, method: str = "auto") -> torch.Tensor:
    """x quantized to act_bits integers, multiplied by power-of-two weights with shifts and
    adds, rescaled by step * w_scale[o] (float64 [O]) and offset by bias. The operator
    checks x.size(-1) against the row byte count only (rows hold whole 8-code blocks):
    the modules (lowbit.inference.ShiftLinear) check the exact number of features."""
    return _ops.shift_linear(x, w_packed, bits, w_scale, bias, act_bits, x_scale, method)


def lut_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
               bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x @ W.T + bias where W[o, k] = tables[group of o, field] is decoded inside the kernel."""
    return _ops.lut_linear(x, w_packed, bits, tables, bias)


def pack_int_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """[O, K] codes -> [O, ceil(K / 64) * 8 * bits] uint8 bit-plane rows, the weight layout of
    the integer kernels (signed int8 codes offset by 2^(bits-1), as in pack; 2..8 bits)."""
    return _ops.pack_int_rows(codes, bits)


def int_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int,
                   zero_point: torch.Tensor) -> torch.Tensor:
    """Exact int64 sums x_codes @ (u - zero_point)^T of int8 activation codes and the fields u
    of bit-plane rows; zero_point (int32 [O]) is the field that stands for 0."""
    return _ops.int_matmul_int(x_codes, w_packed, bits, zero_point)


def int_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
               zero_point: torch.Tensor, bias: Optional[torch.Tensor] = None,
               act_bits: int = 8) -> torch.Tensor:
    """Each row of x quantized to act_bits symmetric integers with its own step
    (max|row| / (2^(act_bits-1) - 1)), multiplied in integers by uniform weights, rescaled
    by step[n] * w_scale[o] (float64 [O]) and offset by bias."""
    return _ops.int_linear(x, w_packed, bits, w_scale, zero_point, bias, act_bits)


def pow2_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int) -> torch.Tensor:
    """shift_matmul_int with the power-of-two codes on bit-plane rows (pack_int_rows of the
    int8 codes, 2..8 bits): the same exact int64 sums, on the integer kernels' SIMD path."""
    return _ops.pow2_matmul_int(x_codes, w_packed, bits)


def pow2_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
                bias: Optional[torch.Tensor] = None, act_bits: int = 8,
                x_scale: Optional[float] = None) -> torch.Tensor:
    """shift_linear (one activation step for the whole input, the same outputs) with the
    weights on bit-plane rows."""
    return _ops.pow2_linear(x, w_packed, bits, w_scale, bias, act_bits, x_scale)


def vlut_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
                bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """lut_linear with the codes on bit-plane rows (2..8 bits) and in-register table look-ups:
    x @ W.T + bias, float activations."""
    return _ops.vlut_linear(x, w_packed, bits, tables, bias)


def vlut_conv2d(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
                bias: Optional[torch.Tensor], c0: int, channels: int, kernel_size: List[int], stride: List[int],
                padding: List[int], dilation: List[int]) -> torch.Tensor:
    """A convolution of input channels [c0, c0 + channels) of x [N, C, H, W] with vlut_linear's
    weights (bit-plane codes, per-row tables, taps in unfold order), float activations, on
    the image itself: no im2col rows; at most 256 taps (channels x kernel)."""
    return _ops.vlut_conv2d(x, w_packed, bits, tables, bias, c0, channels, kernel_size, stride, padding, dilation)
