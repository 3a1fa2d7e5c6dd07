"""One plan: (model, config, purpose) -> every tensor of every layer and its quantizer.

`attach` (purpose 'retrain'), `ptq` and `coverage` call `plan`; the VBQ search and the
capacity advisor read the same layer-kind table. Each entry is either quantized (it has
a LayerConfig) or float with the reason. Overrides, skips, `layers`, "this pattern
matches nothing", the front end's defaults and codebook expansion live here only.
"""
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import nn

from . import schemes
from .config import (PURPOSE_DEFAULTS, LayerConfig, QuantConfig, check_layer_fields, merge_override,
                     matches)
from .layers import KINDS, PURPOSES, Slot, layers_of, output_layer, owner_and_param, present_slots
from .quant import QParams, calibrate, codebook as make_codebook, num_groups

SHADOW = "_float"   # attach keeps the float weight `w` as the parameter `w_float`
PURPOSE_WORDS = {"retrain": "retraining", "ptq": "post-training quantization", "vbq": "VBQ"}


@dataclass(frozen=True)
class PlanEntry:
    """One tensor of a layer. name: its full name ('enc.attn.in_proj_weight'); layer: the
    layer it belongs to; owner / param: the module holding it and its attribute (attention's
    out_proj weight is owned by 'enc.attn.out_proj'); role: 'weight', 'bias' or
    'batchnorm'; config: its quantizer, or None with `reason` saying why it stays float."""
    name: str
    layer: str
    kind: str
    owner: str
    param: str
    role: str
    blocks: int
    config: Optional[LayerConfig] = None
    reason: Optional[str] = None

    @property
    def quantized(self) -> bool:
        return self.config is not None


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _entries(model: nn.Module) -> List[PlanEntry]:
    out = []
    for layer_name, layer, kind in layers_of(model):
        for slot in present_slots(layer, kind, shadows=True):
            _, param, owner_path = owner_and_param(layer, slot.path)
            owner = _join(layer_name, owner_path)
            out.append(PlanEntry(_join(owner, param), layer_name, kind.name, owner, param, slot.role, slot.blocks))
    return out


def _float_reason(e: PlanEntry, config: QuantConfig, purpose: str, output: Optional[str]) -> Optional[str]:
    kind = KINDS[e.kind]
    if purpose not in kind.purposes:
        return f"{e.kind} layers are not quantized for {PURPOSE_WORDS[purpose]} (only {', '.join(kind.purposes)})"
    if e.role == "bias" and not config.quantize_bias:
        return "bias (quantize_bias=False)"
    if e.role == "batchnorm" and not config.default("batchnorm", purpose):
        return "BatchNorm parameter (batchnorm=False)"
    if e.layer == output and not config.default("quantize_output", purpose):
        return "output layer (quantize_output=False)"
    for p in config.skip:
        if matches(p, e.layer, e.owner, e.name):
            return f"skipped by pattern {p!r}"
    if config.layers is not None and not any(matches(p, e.layer, e.owner, e.name) for p in config.layers):
        return "not matched by `layers`"
    return None


def _layer_config(e: PlanEntry, config: QuantConfig, purpose: str) -> LayerConfig:
    values = config._base()
    for pattern, override in config.overrides.items():
        if matches(pattern, e.layer, e.owner, e.name):
            values = merge_override(values, override)
    if e.role != "weight":      # biases and BatchNorm: one quantizer per tensor
        values["granularity"], values["groups"] = "tensor", None
    values["granularity"] = values["granularity"] or PURPOSE_DEFAULTS[purpose]["granularity"]
    if values["granularity"] == "group" and values["groups"] is None:
        values["groups"] = e.blocks
    if values["granularity"] != "group":
        values["groups"] = None
    check_layer_fields(values, e.name)
    spec = schemes.get(values["scheme"])
    if spec.calibrated:
        values["step"] = values["step"] or spec.default_step("ptq" if purpose == "ptq" else "retrain")
        values["codebook"] = None
    else:
        values["step"] = None
        codebook = values["codebook"]
        if e.role == "batchnorm" and not callable(codebook):
            raise ValueError(f"{e.name}: one fixed codebook cannot fit both weights and BatchNorm "
                             "scales; pass codebook=function(weight, bits), batchnorm=False, or "
                             "an override with the BatchNorm layer's own scheme or codebook")
        if not callable(codebook):
            values["codebook"] = tuple(float(v) for v in torch.as_tensor(codebook, dtype=torch.float64))
    return LayerConfig(**values)


def plan(model: nn.Module, config: Optional[QuantConfig] = None, purpose: str = "retrain",
         check_patterns: bool = True) -> List[PlanEntry]:
    """Every tensor of every layer of `model` (lowbit.layers.KINDS), in module order, with its
    quantizer or the reason it stays float. Raises ValueError when a pattern matches no
    tensor a layer could quantize, when a tensor cannot take its settings, or when nothing
    would be quantized."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    config = QuantConfig() if config is None else config
    if not isinstance(config, QuantConfig):
        raise TypeError(f"config must be a lowbit.QuantConfig, got {type(config).__name__}")
    entries = _entries(model)
    candidates = [e for e in entries if purpose in KINDS[e.kind].purposes
                  and (e.role == "weight" or (e.role == "bias" and config.quantize_bias)
                       or (e.role == "batchnorm" and config.default("batchnorm", purpose)))]
    if not candidates:
        kinds = ", ".join(k.name for k in KINDS.values() if purpose in k.purposes)
        raise ValueError(f"model has no quantizable tensor: none of its modules is a layer lowbit "
                         f"quantizes for {PURPOSE_WORDS[purpose]} ({kinds}; see lowbit.layers.KINDS)")
    if check_patterns:
        named = [("layers", p) for p in (config.layers or ())] + [("skip", p) for p in config.skip]
        named += [("overrides", p) for p in config.overrides]
        for what, p in named:
            if not any(matches(p, e.layer, e.owner, e.name) for e in candidates):
                raise ValueError(f"{what} pattern {p!r} matches no quantizable layer or tensor; "
                                 f"names are like {[e.name for e in candidates[:4]]}")
    output = output_layer(model)
    out = []
    for e in entries:
        reason = _float_reason(e, config, purpose, output)
        if reason is None:
            e = PlanEntry(**{**e.__dict__, "config": _layer_config(e, config, purpose)})
        else:
            e = PlanEntry(**{**e.__dict__, "reason": reason})
        out.append(e)
    if not any(e.quantized for e in out):
        raise ValueError("nothing to quantize: every quantizable tensor is skipped, outside "
                         "`layers`, or the output layer with quantize_output=False")
    return out


def compute_qparams(w: torch.Tensor, cfg: LayerConfig, where: str) -> QParams:
    """The quantizer of one planned tensor from its float values (a codebook function is
    called here; one codebook [K] is expanded to every group)."""
    try:
        if not schemes.get(cfg.scheme).calibrated:
            values = cfg.codebook(w.detach(), cfg.bits) if callable(cfg.codebook) else cfg.codebook
            cb = torch.as_tensor(values).to(dtype=w.dtype, device=w.device)
            if cb.dim() == 1:
                cb = cb.expand(num_groups(w, cfg.granularity, cfg.groups), -1).contiguous()
            return make_codebook(cb, bits=cfg.bits)
        return calibrate(w.detach(), cfg.scheme, cfg.bits, cfg.granularity, cfg.groups, cfg.step)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def tensor_of(model_modules, e: PlanEntry) -> torch.Tensor:
    """The float tensor of an entry (the shadow `w_float` while attach's hooks are on)."""
    owner = model_modules[e.owner]
    p = owner._parameters.get(e.param)
    return p if p is not None else owner._parameters[e.param + SHADOW]


__all__ = ["PlanEntry", "plan", "compute_qparams", "tensor_of", "Slot"]
