"""Packed modules for uniform weights (symmetric and asymmetric codes, 2..8 bits) on the
integer kernels: each row of activations is quantized to `act_bits` symmetric integers
with its own dynamic step, multiplied by the weight codes in integers (AVX-512 VNNI
vpdpbusd, AVX2 vpmaddubsw) and rescaled once per output. The results are exact integer
sums, so they differ from the float-activation fake-quant model only by the rounding of
the activations (use LUTLinear, convert(mode="lut"), to keep float activations).

IntLinear, IntConv2d and IntConv1d work eagerly, under torch.jit.script and torch.jit.trace.
"""
from typing import List, Optional

import torch
from torch import nn

from .. import ops, schemes
from ..quant import QParams
from .kernel_table import PackedKernel, register
from .modules import _Packed, _PackedConv, _check_act_bits, _check_input, _group_of_rows, _rows_qparams

KERNEL = "int"


def zero_fields(qp: QParams, rows: int) -> torch.Tensor:
    """int32 [rows]: the field that stands for 0 in each row. The integer kernel reads a
    weight as (field - zero field) * scale: the zero point of asymmetric codes, the field
    offset 2^(bits-1) of symmetric ones."""
    spec = schemes.get(qp.scheme)
    if spec.has_zero_point:
        return qp.p1.detach().to(torch.int32)[_group_of_rows(qp, rows)].contiguous()
    return torch.full((rows,), spec.field_offset(qp.bits), dtype=torch.int32)


class IntLinear(_Packed):
    """y = x W^T + b with uniform W (bit-plane rows, ops.pack_int_rows) and each row of x
    quantized to `act_bits` symmetric integers (step max|row| / (2^(act_bits-1) - 1))."""

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None, act_bits: int = 8):
        super().__init__()
        spec = schemes.get(qp.scheme)
        if KERNEL not in spec.kernels:
            able = [n for n, s in schemes.SCHEMES.items() if KERNEL in s.kernels]
            raise ValueError(f"IntLinear needs weights the {KERNEL} kernel serves ({', '.join(able)}), "
                             f"got scheme {qp.scheme!r}")
        if not 2 <= qp.bits <= 8:
            raise ValueError(f"IntLinear needs 2..8-bit weights, got bits={qp.bits}")
        _check_act_bits(act_bits)
        self.out_features, self.in_features = weight.shape
        rows = _group_of_rows(qp, self.out_features)
        self._store(weight, qp, bias, ops.pack_int_rows)
        self.register_buffer("w_scale", qp.p0.detach().to(torch.float64)[rows].contiguous())
        self.register_buffer("zero_point", zero_fields(qp, self.out_features))
        self.act_bits = act_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_features, "IntLinear")
        return ops.int_linear(x, self.w_packed, self.bits, self.w_scale, self.zero_point, self.bias, self.act_bits)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"act_bits={self.act_bits}")


class _IntConv(_PackedConv):
    """im2col columns, each quantized to integers with its own step, times uniform weights."""

    def __init__(self, conv: nn.Module, qp: QParams, act_bits: int = 8):
        _check_act_bits(act_bits)
        super().__init__(conv, lambda w, lo, hi, b: IntLinear(w, _rows_qparams(qp, conv.out_channels, lo, hi), b,
                                                              act_bits))
        self.act_bits = act_bits

    def _int_forward(self, x: torch.Tensor) -> torch.Tensor:
        cols, H, W = self._columns(x)
        outs: List[torch.Tensor] = []
        for g, part in enumerate(self.parts):
            outs.append(part(self._rows(cols, g)))
        return self._assemble(outs, x.shape[0], H, W)


class IntConv2d(_IntConv):
    """nn.Conv2d with uniform weights and int8 activations (one step per output position)."""

    def __init__(self, conv: nn.Conv2d, qp: QParams, act_bits: int = 8):
        super().__init__(conv, qp, act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "IntConv2d")
        return self._int_forward(x)


class IntConv1d(_IntConv):
    """nn.Conv1d with uniform weights and int8 activations (run as a height-1 Conv2d)."""

    def __init__(self, conv: nn.Conv1d, qp: QParams, act_bits: int = 8):
        super().__init__(conv, qp, act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "IntConv1d")
        return self._int_forward(x.unsqueeze(2)).squeeze(2)


register(PackedKernel(
    KERNEL, "integer",
    "symmetric and asymmetric codes, 2..8 bits, on bit-plane rows; each activation row rounded to "
    "`act_bits` integers with its own step; `sum x_q u - z sum x_q` in integers (AVX-512 VNNI `vpdpbusd`, "
    "AVX2 `vpmaddubsw`), rescaled once per output",
    IntLinear, {nn.Conv1d: IntConv1d, nn.Conv2d: IntConv2d}, options=("act_bits",), ops=("int_linear",)))
