"""Turn a frozen (lb.freeze) or post-training-quantized model into packed inference modules.

Which layers, and into what, comes from the layer-kind table (lowbit.layers.KINDS): each
kind that convert packs has a builder here, keyed by the kind's name; a quantized layer
that stays float (an RNN, a Conv3d) is named in a warning, or an error with strict=True.
"""
import copy
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from .. import schemes
from ..layers import LayerKind, layers_of, owner_and_param, present_slots, unsupported_parameters
from ..qrecord import QPARAMS_ATTR
from ..quant import QParams, fake_quantize
from ..threads import kernel_isa
from . import int_modules, modules  # noqa: F401  (each registers its kernels in KERNELS)
from .attention import PackedMultiheadAttention
from .embedding import PackedEmbedding, PackedEmbeddingBag
from .kernel_table import KERNELS, PackedKernel

MODES = ("auto",) + tuple(KERNELS)


class LeftFloatWarning(UserWarning):
    """convert left a quantized layer as a float module (its values stay quantized)."""


def _kernel(scheme: str, mode: str, where: str) -> str:
    """The packed kernel for weights of `scheme`: under 'auto' the scheme's first (they are
    listed fastest first) that is fast on this CPU."""
    served_by = schemes.get(scheme).kernels
    if mode == "auto":
        isa = kernel_isa()
        fast = [k for k in served_by if KERNELS[k].fast_on is None or isa in KERNELS[k].fast_on]
        return (fast or served_by)[0]
    kernel = mode
    if kernel not in served_by:
        able = [n for n, s in schemes.SCHEMES.items() if kernel in s.kernels]
        raise ValueError(f"mode={mode!r} needs weights the {kernel} kernel serves ({', '.join(able)}), "
                         f"but {where} uses {scheme!r} (served by {', '.join(served_by)}); "
                         "use mode='auto' or 'lut'")
    return kernel


def _fitting(kernel: str, qp: QParams, features: int) -> PackedKernel:
    """The kernel's record, or its fallback's for weights it does not take (same arithmetic)."""
    record = KERNELS[kernel]
    while not record.fits(qp, features):
        record = KERNELS[record.fallback]
    return record


def _options(record: PackedKernel, opts: Dict) -> Dict:
    return {o: opts[o] for o in record.options}


def _linear_maker(mode: str, opts: Dict, where: str) -> Callable:
    def make(weight: torch.Tensor, qp: QParams, bias: Optional[torch.Tensor]) -> nn.Module:
        record = _fitting(_kernel(qp.scheme, mode, where), qp, weight.shape[1])
        return record.linear(weight, qp, bias, **_options(record, opts))
    return make


# Builders: (layer, {slot path: QParams}, mode, kernel options, name) -> (packed module or
# None, why not). One per kind whose table row names a packed module.
def _build_linear(m, qps, mode, opts, name):
    return _linear_maker(mode, opts, name)(m.weight, qps["weight"], m.bias), None


def _conv_types() -> List[type]:
    return sorted({t for k in KERNELS.values() for t in k.convs}, key=lambda t: t.__name__)


def _no_conv_kernel(m: nn.Module) -> str:
    names = ", ".join(t.__name__ for t in _conv_types())
    return f"no packed {type(m).__name__} kernel (packed convolutions: {names})"


def _build_conv(m, qps, mode, opts, name):
    if not any(isinstance(m, t) for t in _conv_types()):
        return None, _no_conv_kernel(m)
    qp = qps["weight"]
    record = _fitting(_kernel(qp.scheme, mode, name), qp, m.weight[0].numel())
    make = record.conv_module(m)
    if make is None:
        raise ValueError(f"the {record.name} kernel has no packed {type(m).__name__}")
    return make(m, qp, **_options(record, opts)), None


def _build_embedding(m, qps, mode, opts, name):
    # A look-up decodes its rows through the value table, whatever the scheme and mode.
    cls = PackedEmbeddingBag if isinstance(m, nn.EmbeddingBag) else PackedEmbedding
    return cls(m, qps["weight"]), None


def _build_attention(m, qps, mode, opts, name):
    return PackedMultiheadAttention(m, qps, _linear_maker(mode, opts, name)), None


BUILDERS: Dict[str, Callable] = {"linear": _build_linear, "conv": _build_conv,
                                 "embedding": _build_embedding, "attention": _build_attention}


def recorded_slots(layer: nn.Module, kind: LayerKind) -> Dict[str, QParams]:
    """{slot path: QParams} of the layer's tensors that hold recorded quantized values."""
    out = {}
    for slot in present_slots(layer, kind):
        owner, param, _ = owner_and_param(layer, slot.path)
        qp = (getattr(owner, QPARAMS_ATTR, None) or {}).get(param)
        if qp is not None:
            out[slot.path] = qp
    return out


def _check_on_grid(layer: nn.Module, qps: Dict[str, QParams], name: str) -> None:
    with torch.no_grad():
        for path, qp in qps.items():
            owner, param, _ = owner_and_param(layer, path)
            w = getattr(owner, param)
            if not torch.equal(fake_quantize(w, qp), w):
                raise ValueError(f"{name}.{path} is not on its recorded quantization grid; was it changed "
                                 "after lb.freeze / lb.ptq?")


def packing_of(layer: nn.Module, kind: LayerKind, scheme: str, mode: str = "auto"
               ) -> Tuple[Optional[str], Optional[str]]:
    """(kernel, None) if convert packs this layer's `scheme` weights, else (None, why it stays
    float)."""
    if kind.name not in BUILDERS:
        return None, kind.float_reason
    if kind.name == "conv" and not any(isinstance(layer, t) for t in _conv_types()):
        return None, _no_conv_kernel(layer)
    if kind.name == "embedding":
        return "lut", None
    return _kernel(scheme, mode, type(layer).__name__), None


def _leave_nested_tensor_path(model: nn.Module) -> None:
    """torch's TransformerEncoder decides on its nested-tensor fast path from the float
    layers it was built with (torch 2.x, when built; 1.13, per call) and then reads their
    weights itself; packed layers have none, so the encoders run their layers' forwards."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoder):
            for flag in ("enable_nested_tensor", "use_nested_tensor"):
                if hasattr(m, flag):
                    setattr(m, flag, False)


def convert(model: nn.Module, mode: str = "auto", act_bits: int = 8, x_scale: Optional[float] = None,
            method: str = "auto", inplace: bool = False, strict: bool = False) -> nn.Module:
    """Replace every frozen / PTQ layer by a packed module (lowbit.layers.KINDS says which).

    mode 'auto': each scheme's first kernel (lowbit.schemes): power-of-two layers become
    ShiftLinear / ShiftConv1d/2d (integer activations, `act_bits`, one step per call, or
    `x_scale`), symmetric and asymmetric layers IntLinear / IntConv1d/2d (each activation row
    rounded to `act_bits` integers with its own step, integer sums), codebook layers
    VLUTLinear / VLUTConv1d/2d (float activations, bit-plane codes, in-register tables; LUT
    modules for 1-bit codes); 'int', 'shift' and 'vlut' require the schemes those kernels serve;
    'lut' uses tables for everything (float activations, same outputs as the fake-quant
    model up to summation order). `x_scale` and `method` apply to shift layers only. MultiheadAttention becomes PackedMultiheadAttention (its projections packed the
    same way), Embedding / EmbeddingBag a packed table that decodes only the rows it looks
    up. Layers that were never quantized stay as they are; a quantized layer convert cannot
    pack (RNN, Conv3d) stays float with a LeftFloatWarning naming it. strict=True raises
    instead, and also for weights of module kinds no front end quantizes (a custom module's
    raw nn.Parameter; `lowbit.coverage` lists them). Returns a copy unless inplace=True.

        lb.freeze(model)                                # after retraining with lb.attach
        fast = lb.inference.convert(model)
        lb.inference.model_size(fast)                   # real bytes
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if hasattr(model, "_lowbit_state"):
        raise ValueError("the model still has lowbit hooks attached; call lb.freeze(model) first")
    out = model if inplace else copy.deepcopy(model)
    opts = {"act_bits": act_bits, "x_scale": x_scale, "method": method}
    modules = dict(out.named_modules())
    recorded, left_float, packed_any = 0, [], False
    for name, layer, kind in layers_of(out):
        qps = recorded_slots(layer, kind)
        if not qps:
            continue
        recorded += 1
        _check_on_grid(layer, qps, name)
        builder = BUILDERS.get(kind.name)
        if builder is None:
            packed, why = None, kind.float_reason
        elif kind.name != "attention" and "weight" not in qps:
            packed, why = None, f"only {', '.join(qps)} is quantized, not its weight"
        else:
            packed, why = builder(layer, qps, mode, opts, name)
        if packed is None:
            if not kind.float_is_exact:
                left_float.append((name, type(layer).__name__, why))
            continue
        parent_name, _, child = name.rpartition(".")
        if not name:
            raise ValueError("convert packs the layers inside a model; the model itself is a "
                             f"{type(layer).__name__}: wrap it, e.g. nn.Sequential(model)")
        setattr(modules[parent_name], child, packed)
        packed_any = True
    if recorded == 0:
        raise ValueError("no layer has recorded quantization parameters: convert needs a model frozen "
                         "with lb.freeze or quantized with lb.ptq")
    if packed_any:
        _leave_nested_tensor_path(out)
    if strict:
        left_float += [(n, t, "kind not supported: no front end quantizes it")
                       for n, t in unsupported_parameters(out)]
    if left_float:
        lines = "; ".join(f"{n} ({t}): {why}" for n, t, why in left_float)
        if strict:
            raise ValueError(f"convert(strict=True) cannot pack these quantized layers: {lines}")
        warnings.warn(f"convert left quantized layers float (their weights keep their quantized values): "
                      f"{lines}", LeftFloatWarning, stacklevel=2)
    return out.eval()


def model_size(model: nn.Module) -> int:
    """Real bytes of a model's parameters and buffers (packed modules count packed bytes)."""
    seen = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


__all__: List[str] = ["convert", "model_size", "MODES", "BUILDERS", "LeftFloatWarning", "packing_of",
                      "recorded_slots"]
