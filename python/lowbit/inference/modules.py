"""Modules that hold only packed low-bit weights and run the native inference kernels.

ShiftLinear / ShiftConv2d: power-of-two weights, activations quantized to integers, the
products computed with shifts and adds (or the equivalent int8 multiply-add).
LUTLinear / LUTConv2d: any quantizer (codebook, uniform, power of two) with float
activations; codes are decoded through a per-group table inside the kernel.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops, schemes
from ..quant import QParams, dequantize, quantize
from ..reference.inference import lowest_exponent_code


def _group_of_rows(qp: QParams, rows: int) -> torch.Tensor:
    if rows % qp.groups:
        raise ValueError(f"{qp.groups} quantization groups do not split {rows} output rows")
    return torch.arange(rows) // (rows // qp.groups)


def _fields(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Codes as the unsigned fields pack stores (signed codes offset by 2^(bits-1))."""
    offset = schemes.get(qp.scheme).field_offset(qp.bits)
    return (codes.to(torch.int16) + offset).to(torch.uint8)


def lookup_tables(qp: QParams) -> torch.Tensor:
    """[groups, 2^bits] float32: the value of every field in every group (unused fields 0)."""
    spec = schemes.get(qp.scheme)
    T = 2 ** qp.bits
    code = torch.arange(T) - spec.field_offset(qp.bits)
    lo, hi = spec.code_range(qp.bits, qp.p0.shape[-1] if qp.p0.dim() == 2 else None)
    valid = (code >= lo) & (code <= hi)
    codes = torch.where(valid, code, torch.zeros_like(code)).to(spec.code_dtype)
    table = dequantize(codes.expand(qp.groups, T).contiguous(), qp).to(torch.float32)
    return torch.where(valid, table, torch.zeros_like(table))


class _Packed(nn.Module):
    """Shared bookkeeping: packed weight rows, bias, and the real bytes they take."""

    def _store(self, w2d: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor]) -> None:
        if qp.bits > 8 or qp.bits < 1:
            raise ValueError(f"bits must be in [1, 8], got {qp.bits}")
        codes = quantize(w2d.detach().contiguous(), qp)
        self.bits = qp.bits
        self.register_buffer("w_packed", ops.pack_rows(_fields(codes, qp), qp.bits))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    def model_size(self) -> int:
        """Bytes of every buffer this module holds (packed codes, scales or tables, bias)."""
        return sum(b.numel() * b.element_size() for b in self.buffers())

    @staticmethod
    def _check_input(x: torch.Tensor, features: int, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
            raise TypeError(f"{name} expects a float32 tensor, got "
                            f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.device.type != "cpu":
            raise ValueError(f"{name} runs the CPU kernels; got a tensor on {x.device}")
        if x.dim() < 1 or x.shape[-1] != features:
            raise ValueError(f"{name} expects inputs with {features} features in the last "
                             f"dimension, got shape {tuple(x.shape)}")


class ShiftLinear(_Packed):
    """y = x W^T + b with power-of-two W (sign + exponent codes, 2..8 bits) and x quantized
    to `act_bits` symmetric integers (dynamic per-tensor step unless `x_scale` is given)."""

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None,
                 act_bits: int = 8, x_scale: Optional[float] = None, method: str = "auto"):
        super().__init__()
        if qp.scheme != "pow2":
            raise ValueError(f"ShiftLinear needs power-of-two weights, got scheme {qp.scheme!r}")
        _check_act_bits(act_bits)
        self.out_features, self.in_features = weight.shape
        self._store(weight, qp, bias)
        L = 2 ** (qp.bits - 1) - 1
        max_level = qp.p0.detach().to(torch.float64)[_group_of_rows(qp, self.out_features)]
        self.register_buffer("w_scale", max_level * 2.0 ** (lowest_exponent_code(qp.bits) - L))
        self.act_bits, self.x_scale, self.method = act_bits, x_scale, method

    def forward(self, x: torch.Tensor, x_scale: Optional[float] = None) -> torch.Tensor:
        self._check_input(x, self.in_features, "ShiftLinear")
        return ops.shift_linear(x, self.w_packed, self.bits, self.w_scale, self.bias, self.act_bits,
                                self.x_scale if x_scale is None else x_scale, self.method)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"act_bits={self.act_bits}, method={self.method!r}")


class LUTLinear(_Packed):
    """y = x W^T + b with W stored as packed codes and decoded through per-group tables."""

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        _group_of_rows(qp, self.out_features)
        self._store(weight, qp, bias)
        self.register_buffer("tables", lookup_tables(qp))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, self.in_features, "LUTLinear")
        return ops.lut_linear(x, self.w_packed, self.bits, self.tables, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


def _check_act_bits(act_bits) -> None:
    if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 8:
        raise ValueError(f"act_bits must be an integer in [2, 8], got {act_bits!r}")


class _PackedConv2d(nn.Module):
    """A 2-D convolution as im2col + one packed linear kernel per group."""

    def __init__(self, conv: nn.Conv2d, make_linear):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("packed convolutions support numeric zero padding only, got "
                             f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size: Tuple[int, int] = conv.kernel_size
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        w = conv.weight.detach()
        og = self.out_channels // self.groups
        self.parts = nn.ModuleList(
            make_linear(w[g * og:(g + 1) * og].reshape(og, -1), g * og, (g + 1) * og,
                        None if conv.bias is None else conv.bias.detach()[g * og:(g + 1) * og])
            for g in range(self.groups))

    def _columns(self, x: torch.Tensor, name: str) -> Tuple[torch.Tensor, int, int]:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name} expects a float32 [N, {self.in_channels}, H, W] tensor, got "
                             f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}")
        kh, kw = self.kernel_size
        H = (x.shape[2] + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        W = (x.shape[3] + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # [N, C*kh*kw, H*W]
        return cols, H, W

    def _run(self, x: torch.Tensor, name: str, **kwargs) -> torch.Tensor:
        cols, H, W = self._columns(x, name)
        N, kg = x.shape[0], cols.shape[1] // self.groups
        outs = []
        for g, part in enumerate(self.parts):
            rows = cols[:, g * kg:(g + 1) * kg, :].transpose(1, 2).reshape(-1, kg)
            outs.append(part(rows, **kwargs).reshape(N, H * W, -1))
        return torch.cat(outs, 2).transpose(1, 2).reshape(N, self.out_channels, H, W)

    def model_size(self) -> int:
        return sum(p.model_size() for p in self.parts)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, bits={self.parts[0].bits}")


def _rows_qparams(qp: QParams, out_channels: int, lo: int, hi: int) -> QParams:
    """The parameters of output rows [lo, hi) (per-channel groups are sliced)."""
    if qp.groups == 1:
        return qp
    per = out_channels // qp.groups
    if lo % per or hi % per:
        raise ValueError(f"{qp.groups} quantization groups do not align with the convolution groups")
    p1 = None if qp.p1 is None else qp.p1[lo // per:hi // per]
    return QParams(qp.scheme, qp.bits, qp.p0[lo // per:hi // per], p1)


class ShiftConv2d(_PackedConv2d):
    """Conv2d with power-of-two weights and integer activations (one dynamic step per call
    for the whole input, shared by every group)."""

    def __init__(self, conv: nn.Conv2d, qp: QParams, act_bits: int = 8, x_scale: Optional[float] = None,
                 method: str = "auto"):
        _check_act_bits(act_bits)
        self.act_bits, self.x_scale = act_bits, x_scale
        super().__init__(conv, lambda w, lo, hi, b: ShiftLinear(
            w, _rows_qparams(qp, conv.out_channels, lo, hi), b, act_bits, x_scale, method))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.x_scale
        if scale is None:  # one step for the whole input; zero padding quantizes to 0
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
                raise TypeError(f"ShiftConv2d expects a float32 tensor, got {getattr(x, 'dtype', type(x).__name__)}")
            # the kernels' own dynamic step (max|x| / L, 1 for all zeros), without the codes
            scale = float(ops.qparams(x.reshape(1, -1), "symmetric", self.act_bits, 1, "maxabs")[0])
        return self._run(x, "ShiftConv2d", x_scale=scale)


class LUTConv2d(_PackedConv2d):
    """Conv2d with packed codes decoded through per-group tables, float activations."""

    def __init__(self, conv: nn.Conv2d, qp: QParams):
        super().__init__(conv, lambda w, lo, hi, b: LUTLinear(w, _rows_qparams(qp, conv.out_channels, lo, hi), b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, "LUTConv2d")
