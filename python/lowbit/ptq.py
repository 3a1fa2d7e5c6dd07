"""Data-free post-training quantization of a whole model (paper 004).

`ptq` returns a deep copy of a float model whose Conv / Linear / RNN weights and
BatchNorm parameters hold quantized values, with no data and no retraining, and records
each quantized tensor's QParams on its module (`lowbit.qrecord`), so that
`save_quantized` can pack it and an inference converter knows its grid.

What is quantized (paper 004 quantizes "convolution kernels, batch norm layers, and
dense layers", every layer, in its PTQ results):
- weights of Linear, Conv1d/2d/3d and RNN/LSTM/GRU (each weight_ih/hh on its own) at
  `granularity` ("channel" by default: one quantizer per output channel);
- BatchNorm weight (gamma) and bias (beta), per tensor: one quantizer for the layer's
  whole gamma vector and one for beta (per channel would give every value its own
  quantizer, i.e. no quantization). Running mean / variance are statistics and stay
  float, like every other buffer;
- biases of Linear / Conv / RNN only with quantize_bias=True (per tensor): they are few
  and the usual integer pipelines keep them at high precision;
- the output layer too by default (quantize_output=True), as the paper does.
"""
import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from . import schemes
from .config import _check_layer_fields, check_override_fields, last_module_of, matches
from .hooks import _STATE_ATTR, _weight_names
from .qrecord import record_qparams
from .quant import QParams, calibrate, codebook as make_codebook, fake_quantize, num_groups

WEIGHT_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase)
BATCHNORM_MODULES = (nn.modules.batchnorm._BatchNorm,)
_OVERRIDABLE = ("bits", "scheme", "granularity", "groups", "method", "codebook")

CodebookSpec = Union[Sequence[float], torch.Tensor, Callable[[torch.Tensor, int], Any], None]


@dataclass(frozen=True)
class PTQTarget:
    """One tensor ptq quantizes and how. kind: 'weight', 'bias' or 'batchnorm'."""
    module: str
    param: str
    kind: str
    scheme: str
    bits: int
    granularity: str
    groups: Optional[int]
    method: Optional[str]
    codebook: CodebookSpec

    @property
    def name(self) -> str:
        return f"{self.module}.{self.param}" if self.module else self.param


def _candidates(model: nn.Module, quantize_bias: bool, batchnorm: bool) -> List[Tuple[str, str, str]]:
    """(module name, parameter, kind) of every tensor ptq could quantize, in module order."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_MODULES):
            for param in _weight_names(module, quantize_bias):
                out.append((name, param, "bias" if param.startswith("bias") else "weight"))
        elif batchnorm and isinstance(module, BATCHNORM_MODULES) and module.affine:
            out += [(name, p, "batchnorm") for p in ("weight", "bias")
                    if isinstance(module._parameters.get(p), nn.Parameter)]
    return out


def _check_patterns(patterns: Sequence[str], what: str) -> List[str]:
    if isinstance(patterns, str):
        raise TypeError(f"{what} must be a list of glob patterns, not a single string")
    patterns = list(patterns)
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"{what} must hold glob pattern strings, got {type(p).__name__}")
    return patterns


def _check_codebook(spec: CodebookSpec, bits: int, where: str) -> None:
    if callable(spec):
        return
    if spec is None:
        raise ValueError(f"{where}: scheme='codebook' needs codebook= (sorted values, or a "
                         "function (weight, bits) -> values)")
    values = torch.as_tensor(spec, dtype=torch.float64)
    if values.dim() != 1:
        raise ValueError(f"{where}: codebook must be a 1-D list of values (or a function), "
                         f"got shape {tuple(values.shape)}")
    _check_layer_fields(bits, "codebook", "tensor", None, None, values.tolist(), where)


def plan(model: nn.Module, scheme: str, bits: int, granularity: str = "channel", *,
         groups: Optional[int] = None, method: Optional[str] = None, codebook: CodebookSpec = None,
         layers: Optional[Sequence[str]] = None, skip: Sequence[str] = (),
         overrides: Optional[Dict[str, Dict[str, Any]]] = None, quantize_output: bool = True,
         quantize_bias: bool = False, batchnorm: bool = True) -> List[PTQTarget]:
    """The tensors `ptq` would quantize with these arguments, and how (see `ptq`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _STATE_ATTR, None) is not None:
        raise ValueError("model has lowbit training hooks; call lowbit.freeze(model) or "
                         "lowbit.detach(model) before ptq")
    # Placeholder values: the codebook itself is checked per tensor below.
    placeholder = [0.0, 1.0] if scheme == "codebook" else None
    _check_layer_fields(bits, scheme, granularity, groups, None, placeholder, "ptq")
    if scheme != "codebook" and codebook is not None:
        raise ValueError(f"codebook= is only used with scheme='codebook', got scheme={scheme!r}")
    overrides = dict(overrides or {})
    layers_p = None if layers is None else _check_patterns(layers, "layers")
    skip_p = _check_patterns(skip, "skip")
    base = {"bits": bits, "scheme": scheme, "granularity": granularity, "groups": groups,
            "method": method, "codebook": codebook}
    for pattern, values in overrides.items():
        check_override_fields(pattern, values, _OVERRIDABLE)

    candidates = _candidates(model, quantize_bias, batchnorm)
    if not candidates:
        raise ValueError("model has no quantizable tensor (Linear, Conv1d/2d/3d, RNN/LSTM/GRU "
                         "weights or BatchNorm parameters)")
    for what, patterns in (("layers", layers_p or []), ("skip", skip_p), ("overrides", list(overrides))):
        for p in patterns:
            if not any(matches(p, n, q) for n, q, _ in candidates):
                raise ValueError(f"{what} pattern {p!r} matches no quantizable module or tensor; "
                                 f"names are like {[f'{n}.{q}' for n, q, _ in candidates[:4]]}")
    output = None if quantize_output else last_module_of(model, WEIGHT_MODULES)
    targets = []
    for name, param, kind in candidates:
        if name == output or any(matches(p, name, param) for p in skip_p):
            continue
        if layers_p is not None and not any(matches(p, name, param) for p in layers_p):
            continue
        values = dict(base)
        for pattern, override in overrides.items():
            if matches(pattern, name, param):
                if "scheme" in override and "method" not in override:
                    values["method"] = None   # a new scheme starts from its own default rule
                values.update(override)
        where = f"{name}.{param}"
        if kind != "weight":
            values["granularity"], values["groups"] = "tensor", None
        if values["scheme"] == "codebook":
            _check_codebook(values["codebook"], values["bits"], where)
            if kind == "batchnorm" and not callable(values["codebook"]):
                raise ValueError(f"{where}: one fixed codebook cannot fit both weights and BatchNorm "
                                 "scales; pass codebook=function(weight, bits), batchnorm=False, or "
                                 "an override with the BatchNorm layer's own scheme or codebook")
            values["method"] = None
        else:
            schemes.check_step(values["scheme"], values["method"], where, field="method")
            values["method"] = values["method"] or schemes.get(values["scheme"]).ptq_step
        codebook_ok = [0.0, 1.0] if values["scheme"] == "codebook" else None   # checked above
        _check_layer_fields(values["bits"], values["scheme"], values["granularity"], values["groups"],
                            values["method"], codebook_ok, where)
        targets.append(PTQTarget(name, param, kind, **values))
    if not targets:
        raise ValueError("nothing to quantize: every quantizable tensor is skipped, outside "
                         "`layers`, or the output layer with quantize_output=False")
    return targets


def target_qparams(w: torch.Tensor, t: PTQTarget) -> QParams:
    """The quantizer of one planned tensor, computed from its float values."""
    try:
        if t.scheme == "codebook":
            spec = t.codebook(w.detach(), t.bits) if callable(t.codebook) else t.codebook
            cb = torch.as_tensor(spec).to(dtype=w.dtype, device=w.device)
            if cb.dim() == 1:  # one codebook for every group of this tensor
                cb = cb.expand(num_groups(w, t.granularity, t.groups), -1).contiguous()
            return make_codebook(cb, bits=t.bits)
        return calibrate(w.detach(), t.scheme, t.bits, t.granularity, t.groups, t.method)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{t.name}: {exc}") from None


def ptq(model: nn.Module, scheme: str, bits: int, granularity: str = "channel", *,
        groups: Optional[int] = None, method: Optional[str] = None, codebook: CodebookSpec = None,
        layers: Optional[Sequence[str]] = None, skip: Sequence[str] = (),
        overrides: Optional[Dict[str, Dict[str, Any]]] = None, quantize_output: bool = True,
        quantize_bias: bool = False, batchnorm: bool = True) -> nn.Module:
    """A deep copy of `model` with its weights quantized, data-free (paper 004).

    scheme: 'asymmetric' (min/max with zero point, 2^b levels), 'symmetric' (2^b - 1
        levels, step max|w| / (2^(b-1) - 1) by default: method='l2' or 'meanstd' to
        change it), 'pow2' (sign + exponents) or 'codebook' (codebook= sorted values, or
        a function (weight, bits) -> values [K] or [groups, K] for per-layer codebooks).
    bits: 2..8 (1..8 for a codebook). granularity: 'channel' (default), 'tensor' or
        'group' (with groups=); BatchNorm parameters and biases are always per tensor.
    layers: glob patterns of module or 'module.param' names to quantize (default: all);
    skip: patterns left float; overrides: {pattern: {field: value}}, e.g.
        {"features.0": {"bits": 8}} keeps the first layer at 8 bits. Later patterns
        win; every pattern must match something.
    quantize_output: quantize the last Linear / Conv / RNN too (default True, as in
        the paper). quantize_bias: also Linear / Conv / RNN biases. batchnorm: also
        BatchNorm gamma / beta (default True, as in the paper).

    The original model is not modified. Every quantized tensor's QParams is recorded on
    its module (`lowbit.recorded_qparams(q)`), which `save_quantized` packs.
    """
    targets = plan(model, scheme, bits, granularity, groups=groups, method=method,
                   codebook=codebook, layers=layers, skip=skip, overrides=overrides,
                   quantize_output=quantize_output, quantize_bias=quantize_bias,
                   batchnorm=batchnorm)
    quantized = copy.deepcopy(model)
    modules = dict(quantized.named_modules())
    # Every quantizer first: a tensor that cannot take its settings raises before any change.
    qparams = [target_qparams(getattr(modules[t.module], t.param), t) for t in targets]
    with torch.no_grad():
        for t, qp in zip(targets, qparams):
            module = modules[t.module]
            weight = getattr(module, t.param)
            weight.copy_(fake_quantize(weight.detach(), qp))
            record_qparams(module, t.param, qp)
        for module in modules.values():
            if isinstance(module, nn.RNNBase):
                module.flatten_parameters()  # a no-op on CPU; keeps cuDNN's flat copy in step
    return quantized
