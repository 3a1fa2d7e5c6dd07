"""Turn a frozen (lb.freeze) or post-training-quantized model into packed inference modules."""
import copy
from typing import Optional

import torch
from torch import nn

from .. import schemes
from ..qrecord import QPARAMS_ATTR
from ..quant import fake_quantize
from .modules import LUTConv2d, LUTLinear, ShiftConv2d, ShiftLinear

MODES = ("auto", "shift", "lut")


def _packed_module(name: str, module: nn.Module, mode: str, act_bits: int, x_scale: Optional[float],
                   method: str) -> nn.Module:
    qp = (getattr(module, QPARAMS_ATTR, None) or {}).get("weight")
    if qp is None:
        return None
    with torch.no_grad():
        if not torch.equal(fake_quantize(module.weight, qp), module.weight):
            raise ValueError(f"{name}.weight is not on its recorded quantization grid; was it changed "
                             "after lb.freeze / lb.ptq?")
    served_by = schemes.get(qp.scheme).kernels
    kernel = served_by[0] if mode == "auto" else mode
    if kernel not in served_by:
        able = [n for n, s in schemes.SCHEMES.items() if kernel in s.kernels]
        raise ValueError(f"mode={mode!r} needs weights the {kernel} kernel serves ({', '.join(able)}), "
                         f"but {name} uses {qp.scheme!r} (served by {', '.join(served_by)}); "
                         "use mode='auto' or 'lut'")
    shift = kernel == "shift"
    if isinstance(module, nn.Linear):
        if shift:
            return ShiftLinear(module.weight, qp, module.bias, act_bits, x_scale, method)
        return LUTLinear(module.weight, qp, module.bias)
    if isinstance(module, nn.Conv2d):
        return ShiftConv2d(module, qp, act_bits, x_scale, method) if shift else LUTConv2d(module, qp)
    return None  # other layer types keep their float (quantized-valued) weights


def convert(model: nn.Module, mode: str = "auto", act_bits: int = 8, x_scale: Optional[float] = None,
            method: str = "auto", inplace: bool = False) -> nn.Module:
    """Replace every frozen / PTQ Linear and Conv2d by a packed module.

    mode 'auto': power-of-two layers become ShiftLinear / ShiftConv2d (integer activations,
    `act_bits`), every other scheme LUTLinear / LUTConv2d; 'shift' requires power of two;
    'lut' uses tables for everything (float activations, same outputs as the fake-quant
    model up to summation order). Layers that were never quantized stay as they are.
    Returns a copy unless inplace=True.

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
    replaced = 0
    for name, module in list(out.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            packed = _packed_module(full, child, mode, act_bits, x_scale, method)
            if packed is not None:
                setattr(module, child_name, packed)
                replaced += 1
    if replaced == 0:
        raise ValueError("no Linear or Conv2d layer has recorded quantization parameters: convert "
                         "needs a model frozen with lb.freeze or quantized with lb.ptq")
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
