"""Modules that hold only packed low-bit weights and run the native inference kernels.

ShiftLinear / ShiftConv2d / ShiftConv1d: power-of-two weights, activations quantized to
integers, exact integer sums. method='auto' stores the codes as bit-plane rows and runs the
pow2 kernel (ops.pow2_linear: each weight split into bands of 7 exponents, int8 multiply-add,
2..8 bits); 'literal', 'int8' and 'int16' keep row-packed codes on the shift kernel
(ops.shift_linear: shifts and adds, or the equivalent int8 / int16 multiply-add). Both give
the same integers and outputs.
LUTLinear / LUTConv2d / LUTConv1d: any quantizer (codebook, uniform, power of two) with float
activations; codes are decoded through a per-group table inside the kernel.
VLUTLinear / VLUTConv2d / VLUTConv1d: the same float-activation arithmetic on bit-plane rows
(2..8 bits) with in-register table look-ups (ops.vlut_linear), the codebook scheme's fast path.
IntLinear / IntConv2d / IntConv1d (int_modules.py): uniform weights, int8 activations per row.

Every module works eagerly, under torch.jit.script and under torch.jit.trace (errors raised
inside a scripted module surface as torch.jit.Error with the same message).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops, schemes
from ..quant import QParams, dequantize, quantize
from ..reference.inference import lowest_exponent_code
from ..reference.int_inference import MAX_K
from .kernel_table import PackedKernel, register


def _group_of_rows(qp: QParams, rows: int) -> torch.Tensor:
    if rows % qp.groups:
        raise ValueError(f"{qp.groups} quantization groups do not split {rows} output rows")
    return torch.arange(rows) // (rows // qp.groups)


def _fields(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Codes as the unsigned fields pack stores (signed codes offset by 2^(bits-1))."""
    offset = schemes.get(qp.scheme).field_offset(qp.bits)
    return (codes.to(torch.int16) + offset).to(torch.uint8)


def lookup_tables(qp: QParams, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[groups, 2^bits] `dtype`: the value of every field in every group (unused fields 0)."""
    spec = schemes.get(qp.scheme)
    T = 2 ** qp.bits
    code = torch.arange(T) - spec.field_offset(qp.bits)
    lo, hi = spec.code_range(qp.bits, qp.p0.shape[-1] if qp.p0.dim() == 2 else None)
    valid = (code >= lo) & (code <= hi)
    codes = torch.where(valid, code, torch.zeros_like(code)).to(spec.code_dtype)
    table = dequantize(codes.expand(qp.groups, T).contiguous(), qp).to(dtype)
    return torch.where(valid, table, torch.zeros_like(table))


def _dtype_name(x: torch.Tensor) -> str:
    """x.dtype as eager torch prints it (TorchScript formats a dtype as its enum number)."""
    if not torch.jit.is_scripting():
        return str(x.dtype)
    for d, name in ((torch.float32, "float32"), (torch.float64, "float64"), (torch.float16, "float16"),
                    (torch.bfloat16, "bfloat16"), (torch.complex64, "complex64"),
                    (torch.int64, "int64"), (torch.int32, "int32"), (torch.int16, "int16"),
                    (torch.int8, "int8"), (torch.uint8, "uint8"), (torch.bool, "bool")):
        if x.dtype == d:
            return "torch." + name
    return "another dtype"


def _check_input(x: torch.Tensor, features: int, name: str) -> None:
    if not isinstance(x, torch.Tensor):  # statically true under TorchScript: not compiled
        raise TypeError(f"{name} expects a float32 tensor, got {type(x).__name__}")
    if x.dtype != torch.float32:
        raise TypeError(f"{name} expects a float32 tensor, got {_dtype_name(x)}")
    if x.device.type != "cpu":
        raise ValueError(f"{name} runs the CPU kernels; got a tensor on {x.device}")
    # Sizes are tensors while tracing (comparing them warns and freezes the answer); the
    # kernels still check the packed row length.
    if not torch.jit.is_tracing() and (x.dim() < 1 or x.shape[-1] != features):
        raise ValueError(f"{name} expects inputs with {features} features in the last "
                         f"dimension, got shape {list(x.shape)}")


# Taps per group up to which codebook convolutions run on ops.vlut_conv2d (the kernel's limit).
DIRECT_MAX_TAPS = 256


class _Packed(nn.Module):
    """Shared bookkeeping: packed weight rows, bias, and the real bytes they take."""

    def _store(self, w2d: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor], pack=ops.pack_rows) -> None:
        if qp.bits > 8 or qp.bits < 1:
            raise ValueError(f"bits must be in [1, 8], got {qp.bits}")
        codes = quantize(w2d.detach().contiguous(), qp)
        self.bits = qp.bits
        self.register_buffer("w_packed", pack(_fields(codes, qp), qp.bits))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    def model_size(self) -> int:
        """Bytes of every buffer this module holds (packed codes, scales or tables, bias)."""
        return sum(b.numel() * b.element_size() for b in self.buffers())


class ShiftLinear(_Packed):
    """y = x W^T + b with power-of-two W (sign + exponent codes, 2..8 bits) and x quantized
    to `act_bits` symmetric integers (dynamic per-tensor step unless `x_scale` is given)."""

    x_scale: Optional[float]  # for TorchScript: None and a float are both valid

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None,
                 act_bits: int = 8, x_scale: Optional[float] = None, method: str = "auto",
                 layout: Optional[str] = None):
        super().__init__()
        if qp.scheme != "pow2":
            raise ValueError(f"ShiftLinear needs power-of-two weights, got scheme {qp.scheme!r}")
        _check_act_bits(act_bits)
        self.out_features, self.in_features = weight.shape
        # layout None: bit-plane rows on the pow2 kernel for method 'auto', row-packed codes on
        # the shift kernel for a named method; 'rows' forces the shift kernel ('auto' method).
        if layout not in (None, "planes", "rows"):
            raise ValueError(f"layout must be None, 'planes' or 'rows', got {layout!r}")
        if layout == "planes" and str(method) != "auto":
            raise ValueError(f"layout='planes' runs the pow2 kernel, which takes method='auto', got {method!r}")
        if layout is None:
            layout = "planes" if str(method) == "auto" and self.in_features <= MAX_K else "rows"
        self.layout = layout
        self._store(weight, qp, bias, ops.pack_int_rows if self.layout == "planes" else ops.pack_rows)
        L = 2 ** (qp.bits - 1) - 1
        max_level = qp.p0.detach().to(torch.float64)[_group_of_rows(qp, self.out_features)]
        self.register_buffer("w_scale", max_level * 2.0 ** (lowest_exponent_code(qp.bits) - L))
        self.act_bits, self.method = act_bits, str(method)
        self.x_scale = None if x_scale is None else float(x_scale)

    def forward(self, x: torch.Tensor, x_scale: Optional[float] = None) -> torch.Tensor:
        _check_input(x, self.in_features, "ShiftLinear")
        if self.layout == "planes":
            return ops.pow2_linear(x, self.w_packed, self.bits, self.w_scale, self.bias, self.act_bits,
                                   self.x_scale if x_scale is None else x_scale)
        return ops.shift_linear(x, self.w_packed, self.bits, self.w_scale, self.bias, self.act_bits,
                                self.x_scale if x_scale is None else x_scale, self.method)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"act_bits={self.act_bits}, method={self.method!r}, layout={self.layout!r}")


class LUTLinear(_Packed):
    """y = x W^T + b with W stored as packed codes and decoded through per-group tables."""

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        _group_of_rows(qp, self.out_features)
        self._store(weight, qp, bias)
        self.register_buffer("tables", lookup_tables(qp))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_features, "LUTLinear")
        return ops.lut_linear(x, self.w_packed, self.bits, self.tables, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


class VLUTLinear(_Packed):
    """y = x W^T + b as LUTLinear (float activations, per-group tables), with the codes on
    bit-plane rows (ops.pack_int_rows, 2..8 bits) decoded by in-register table look-ups."""

    def __init__(self, weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor] = None):
        super().__init__()
        if not 2 <= qp.bits <= 8:
            raise ValueError(f"VLUTLinear needs 2..8-bit codes, got bits={qp.bits}; use LUTLinear")
        self.out_features, self.in_features = weight.shape
        if self.in_features > MAX_K:
            raise ValueError(f"VLUTLinear takes at most {MAX_K} input features, got {self.in_features}; "
                             "use LUTLinear")
        _group_of_rows(qp, self.out_features)
        self._store(weight, qp, bias, ops.pack_int_rows)
        self.register_buffer("tables", lookup_tables(qp))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_features, "VLUTLinear")
        return ops.vlut_linear(x, self.w_packed, self.bits, self.tables, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


def _check_act_bits(act_bits) -> None:
    if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 8:
        raise ValueError(f"act_bits must be an integer in [2, 8], got {act_bits!r}")


def _rows_qparams(qp: QParams, out_channels: int, lo: int, hi: int) -> QParams:
    """The parameters of output rows [lo, hi) (per-channel groups are sliced)."""
    if qp.groups == 1:
        return qp
    per = out_channels // qp.groups
    if lo % per or hi % per:
        raise ValueError(f"{qp.groups} quantization groups do not align with the convolution groups")
    p1 = None if qp.p1 is None else qp.p1[lo // per:hi // per]
    return QParams(qp.scheme, qp.bits, qp.p0[lo // per:hi // per], p1)


class _PackedConv(nn.Module):
    """A convolution as im2col + one packed linear kernel per group. A Conv1d runs as a
    Conv2d of height 1 ([N, C, L] viewed as [N, C, 1, L]), so the 2-D fields hold (1, k) etc."""

    def __init__(self, conv: nn.Module, make_linear):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("packed convolutions support numeric zero padding only, got "
                             f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self._one_d = one_d = isinstance(conv, nn.Conv1d)
        self._layout = f"[N, {conv.in_channels}, L]" if one_d else f"[N, {conv.in_channels}, H, W]"
        self.kernel_size: Tuple[int, int] = (1, conv.kernel_size[0]) if one_d else tuple(conv.kernel_size)
        self.stride: Tuple[int, int] = (1, conv.stride[0]) if one_d else tuple(conv.stride)
        self.padding: Tuple[int, int] = (0, conv.padding[0]) if one_d else tuple(conv.padding)
        self.dilation: Tuple[int, int] = (1, conv.dilation[0]) if one_d else tuple(conv.dilation)
        self.groups = conv.groups
        w = conv.weight.detach()
        og = self.out_channels // self.groups
        self.parts = nn.ModuleList(
            make_linear(w[g * og:(g + 1) * og].reshape(og, -1), g * og, (g + 1) * og,
                        None if conv.bias is None else conv.bias.detach()[g * og:(g + 1) * og])
            for g in range(self.groups))

    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor):  # statically true under TorchScript: not compiled
            raise TypeError(f"{name} expects a float32 {self._layout} tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise TypeError(f"{name} expects a float32 {self._layout} tensor, got {_dtype_name(x)}")
        if x.dim() != (3 if self._one_d else 4) or (not torch.jit.is_tracing() and x.shape[1] != self.in_channels):
            raise ValueError(f"{name} expects a float32 {self._layout} tensor, got shape {list(x.shape)}")

    def _columns(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        kh, kw = self.kernel_size
        H = (x.shape[2] + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        W = (x.shape[3] + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # [N, C*kh*kw, H*W]
        return cols, H, W

    def _rows(self, cols: torch.Tensor, g: int) -> torch.Tensor:
        kg = cols.shape[1] // self.groups
        return cols[:, g * kg:(g + 1) * kg, :].transpose(1, 2).reshape(-1, kg)

    def _assemble(self, outs: List[torch.Tensor], N: int, H: int, W: int) -> torch.Tensor:
        outs = [y.reshape(N, H * W, -1) for y in outs]
        return torch.cat(outs, 2).transpose(1, 2).reshape(N, self.out_channels, H, W)

    def model_size(self) -> int:
        return sum(p.model_size() for p in self.parts)

    def extra_repr(self) -> str:
        if self._one_d:
            return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size[1]}, "
                    f"stride={self.stride[1]}, padding={self.padding[1]}, dilation={self.dilation[1]}, "
                    f"groups={self.groups}, bits={self.parts[0].bits}")
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, bits={self.parts[0].bits}")


class _ShiftConv(_PackedConv):
    """Power-of-two weights and integer activations (one dynamic step per call for the
    whole input, shared by every group)."""

    x_scale: Optional[float]

    def __init__(self, conv: nn.Module, qp: QParams, act_bits: int = 8, x_scale: Optional[float] = None,
                 method: str = "auto"):
        _check_act_bits(act_bits)
        # Up to 4 bits the codes stay row-packed: the fused plan then runs the 4-tap column
        # kernel (shift_conv2d); wider codes take bit-plane rows and the pow2 kernel.
        layout = "rows" if qp.bits <= 4 or str(method) != "auto" else None
        super().__init__(conv, lambda w, lo, hi, b: ShiftLinear(
            w, _rows_qparams(qp, conv.out_channels, lo, hi), b, act_bits, x_scale, method, layout))
        self.act_bits = act_bits
        self.x_scale = None if x_scale is None else float(x_scale)

    def _shift_forward(self, x: torch.Tensor) -> torch.Tensor:
        cols, H, W = self._columns(x)
        scale = self.x_scale
        extra: Optional[torch.Tensor] = None
        if scale is None:
            if torch.jit.is_tracing():
                # A float step would be frozen into the trace: append one row holding max|x|
                # instead, so the kernel's own dynamic step is the whole input's, bit for bit.
                extra = x.abs().amax().reshape(1, 1)
            else:
                # the kernels' own dynamic step (max|x| / L, 1 for all zeros), without the codes
                if not bool(torch.isfinite(x).all()):  # qparams's own message would speak of weights
                    raise ValueError("x contains NaN or Inf; shift layers need finite inputs")
                scale = float(ops.qparams(x.reshape(1, -1), "symmetric", self.act_bits, 1, "maxabs")[0])
        outs: List[torch.Tensor] = []
        for g, part in enumerate(self.parts):
            rows = self._rows(cols, g)
            if extra is not None:
                padded = torch.cat([rows, F.pad(extra, (0, rows.shape[1] - 1))])
                outs.append(part(padded, None)[:-1])
            else:
                outs.append(part(rows, scale))
        return self._assemble(outs, x.shape[0], H, W)


class _LUTConv(_PackedConv):
    """Packed codes decoded through per-group tables, float activations."""

    def __init__(self, conv: nn.Module, qp: QParams):
        super().__init__(conv, lambda w, lo, hi, b: LUTLinear(w, _rows_qparams(qp, conv.out_channels, lo, hi), b))

    def _lut_forward(self, x: torch.Tensor) -> torch.Tensor:
        cols, H, W = self._columns(x)
        outs: List[torch.Tensor] = []
        for g, part in enumerate(self.parts):
            outs.append(part(self._rows(cols, g)))
        return self._assemble(outs, x.shape[0], H, W)


class ShiftConv2d(_ShiftConv):
    """nn.Conv2d with power-of-two weights and integer activations."""

    def __init__(self, conv: nn.Conv2d, qp: QParams, act_bits: int = 8, x_scale: Optional[float] = None,
                 method: str = "auto"):
        super().__init__(conv, qp, act_bits, x_scale, method)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "ShiftConv2d")
        return self._shift_forward(x)


class LUTConv2d(_LUTConv):
    """nn.Conv2d with packed codes decoded through per-group tables, float activations."""

    def __init__(self, conv: nn.Conv2d, qp: QParams):
        super().__init__(conv, qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "LUTConv2d")
        return self._lut_forward(x)


class ShiftConv1d(_ShiftConv):
    """nn.Conv1d with power-of-two weights and integer activations (run as a height-1 Conv2d)."""

    def __init__(self, conv: nn.Conv1d, qp: QParams, act_bits: int = 8, x_scale: Optional[float] = None,
                 method: str = "auto"):
        super().__init__(conv, qp, act_bits, x_scale, method)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "ShiftConv1d")
        return self._shift_forward(x.unsqueeze(2)).squeeze(2)


class LUTConv1d(_LUTConv):
    """nn.Conv1d with packed codes decoded through per-group tables (run as a height-1 Conv2d)."""

    def __init__(self, conv: nn.Conv1d, qp: QParams):
        super().__init__(conv, qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "LUTConv1d")
        return self._lut_forward(x.unsqueeze(2)).squeeze(2)


class _VLUTConv(_PackedConv):
    """Bit-plane codes decoded by in-register table look-ups, float activations."""

    def __init__(self, conv: nn.Module, qp: QParams):
        super().__init__(conv, lambda w, lo, hi, b: VLUTLinear(w, _rows_qparams(qp, conv.out_channels, lo, hi), b))
        # Up to DIRECT_MAX_TAPS taps per group, ops.vlut_conv2d reads the image itself (no
        # im2col rows), as the fused plan does: the two give the same sums.
        self._channels = self.in_channels // self.groups
        self._direct = self._channels * self.kernel_size[0] * self.kernel_size[1] <= DIRECT_MAX_TAPS

    def _vlut_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._direct:
            outs = [ops.vlut_conv2d(x, part.w_packed, part.bits, part.tables, part.bias, g * self._channels,
                                    self._channels, list(self.kernel_size), list(self.stride), list(self.padding),
                                    list(self.dilation)) for g, part in enumerate(self.parts)]
            return outs[0] if len(outs) == 1 else torch.cat(outs, 1)
        cols, H, W = self._columns(x)
        outs: List[torch.Tensor] = []
        for g, part in enumerate(self.parts):
            outs.append(part(self._rows(cols, g)))
        return self._assemble(outs, x.shape[0], H, W)


class VLUTConv2d(_VLUTConv):
    """nn.Conv2d with bit-plane codes decoded by in-register table look-ups, float activations."""

    def __init__(self, conv: nn.Conv2d, qp: QParams):
        super().__init__(conv, qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "VLUTConv2d")
        return self._vlut_forward(x)


class VLUTConv1d(_VLUTConv):
    """nn.Conv1d with bit-plane codes and in-register table look-ups (run as a height-1 Conv2d)."""

    def __init__(self, conv: nn.Conv1d, qp: QParams):
        super().__init__(conv, qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "VLUTConv1d")
        return self._vlut_forward(x.unsqueeze(2)).squeeze(2)


def _vlut_fits(qp: QParams, features: int) -> bool:
    """The vlut kernel takes 2..8-bit codes and at most MAX_K features; else the lut kernel
    (the same float-activation arithmetic) runs them."""
    return 2 <= qp.bits <= 8 and features <= MAX_K


# The kernels these modules run, for convert (lowbit.inference.kernel_table).
register(PackedKernel(
    "shift", "integer",
    "power-of-two codes, 2..8 bits; activations rounded to `act_bits` integers with one step per call "
    "(or a given `x_scale`). `method='auto'`: bit-plane rows on the pow2 kernel (each weight split into "
    "bands of 7 exponents, int8 multiply-adds); a named method: row-packed codes on the shift kernel "
    "(shifts and adds, or int8 / int16 multiply-adds). Exact integer sums, rescaled once per output",
    ShiftLinear, {nn.Conv1d: ShiftConv1d, nn.Conv2d: ShiftConv2d},
    options=("act_bits", "x_scale", "method"), ops=("pow2_linear", "shift_linear")))
# 'auto' takes vlut on AVX-512 only: its AVX2 path took 5.0-18.2 ms at batch 1 where lut took
# 2.4-4.8 ms (4096 x 4096, 2-4-bit per-channel codebooks, one thread, CPU time; AVX-512 vlut
# 1.0-1.2 ms).
register(PackedKernel(
    "vlut", "float",
    "any scheme's 2..8-bit codes on bit-plane rows, decoded to float values by in-register table "
    "look-ups, float FMA; 1-bit codes and layers of more than 2^19 inputs go to `lut`",
    VLUTLinear, {nn.Conv1d: VLUTConv1d, nn.Conv2d: VLUTConv2d},
    fits=_vlut_fits, fallback="lut", fast_on=("avx512",), ops=("vlut_linear",)))
register(PackedKernel(
    "lut", "float",
    "any scheme's 1..8-bit codes, row-packed, decoded through per-group tables into an L1 float tile, "
    "float FMA",
    LUTLinear, {nn.Conv1d: LUTConv1d, nn.Conv2d: LUTConv2d}, ops=("lut_linear",)))
