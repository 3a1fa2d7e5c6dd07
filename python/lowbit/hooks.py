"""Straight-through weight quantization on any nn.Module, without tracing it.

`attach` renames each quantized weight `w` of a module to the float shadow parameter
`w_float` (the same Parameter object, so an optimizer made before attach keeps working),
stores its quantizer parameters as buffers `w_q0` / `w_q1` (so state_dict round-trips),
and adds a forward pre-hook that sets `module.w` to the straight-through fake-quantized
shadow before every forward. Paper 002's retraining: the forward sees quantized
weights, the gradient updates the float shadows, and the next forward re-quantizes.
RNN modules pick the new tensors up because nn.RNNBase refreshes its flat weight list
whenever one of its weight attributes is assigned.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from . import ops
from .config import LayerConfig, QuantConfig, last_module_of, matches
from .quant import QParams, calibrate, codebook as make_codebook, num_groups
from .qrecord import record_qparams

QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase)
_STATE_ATTR = "_lowbit_state"


def _weight_names(module: nn.Module, with_bias: bool) -> List[str]:
    if isinstance(module, nn.RNNBase):
        names = [n for n in module._flat_weights_names if n.startswith("weight_")]
        if with_bias:
            names += [n for n in module._flat_weights_names if n.startswith("bias_")]
    else:
        names = ["weight"] + (["bias"] if with_bias and module.bias is not None else [])
    return [n for n in names if isinstance(module._parameters.get(n), nn.Parameter)]


@dataclass
class Target:
    """One quantized tensor: where it lives and its quantizer."""
    module_name: str
    param: str
    config: LayerConfig

    @property
    def name(self) -> str:
        return f"{self.module_name}.{self.param}" if self.module_name else self.param


@dataclass
class AttachState:
    """Kept on the model (so it survives deepcopy and pickling): what attach did."""
    config: QuantConfig
    targets: List[Target]
    history: Dict[str, List[torch.Tensor]] = field(default_factory=dict)


class _QuantizeWeights:
    """The forward pre-hook of one module: a plain object so models stay picklable."""

    def __init__(self, targets: List[Target]):
        self.targets = targets

    def __call__(self, module: nn.Module, inputs) -> None:
        for t in self.targets:
            shadow = getattr(module, t.param + "_float")
            qp = _qparams_of(module, t)
            setattr(module, t.param, ops.ste_fake_quant(shadow, qp.scheme, qp.bits, qp.p0, qp.p1,
                                                        t.config.clip_grad))


class _ReleaseGraph:
    """Forward post-hook: keeps a detached view of the quantized weight on the module
    once the forward is done (the autograd graph holds its own references), so the
    model can be deep-copied and pickled between steps."""

    def __init__(self, targets: List[Target]):
        self.targets = targets

    def __call__(self, module: nn.Module, inputs, output) -> None:
        for t in self.targets:
            setattr(module, t.param, getattr(module, t.param).detach())


def _qparams_of(module: nn.Module, t: Target) -> QParams:
    p1 = getattr(module, t.param + "_q1", None)
    return QParams(t.config.scheme, t.config.bits, getattr(module, t.param + "_q0"), p1)


def _compute_qparams(w: torch.Tensor, cfg: LayerConfig, where: str) -> QParams:
    try:
        if cfg.scheme == "codebook":
            cb = torch.tensor(cfg.codebook, dtype=w.dtype, device=w.device)
            groups = num_groups(w, cfg.granularity, cfg.groups)
            return make_codebook(cb.expand(groups, -1).contiguous(), bits=cfg.bits)
        return calibrate(w.detach(), cfg.scheme, cfg.bits, cfg.granularity, cfg.groups, cfg.step)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def attach(model: nn.Module, config: Optional[QuantConfig] = None, **kwargs) -> AttachState:
    """Put straight-through weight fake-quantization on every Linear, Conv1d/2d and
    RNN/LSTM/GRU weight matrix of `model` (each weight_ih_l* / weight_hh_l* on its own).

    Biases and the output layer stay float unless the config says otherwise. Keyword
    arguments build a QuantConfig when none is given: attach(model, bits=3).
    Returns the attach state (targets and step history); see detach / update_steps /
    freeze.
    """
    if config is None:
        config = QuantConfig(**kwargs)
    elif kwargs:
        raise TypeError("pass either a QuantConfig or keyword arguments, not both")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _STATE_ATTR, None) is not None:
        raise ValueError("model already has lowbit hooks; call lowbit.detach(model) first")
    output = None if config.quantize_output else last_module_of(model, QUANTIZABLE)
    plan: Dict[str, Tuple[nn.Module, List[Target]]] = {}
    seen = []
    for name, module in model.named_modules():
        if not isinstance(module, QUANTIZABLE):
            continue
        for param in _weight_names(module, config.quantize_bias):
            seen.append((name, param))
            if name == output or config.skips(name, param):
                continue
            plan.setdefault(name, (module, []))[1].append(Target(name, param, config.resolve(name, param)))
    for pattern in list(config.overrides) + list(config.skip):
        if not any(matches(pattern, n, p) for n, p in seen):
            raise ValueError(f"pattern {pattern!r} matches no quantizable module or weight; "
                             f"names are like {[f'{n}.{p}' for n, p in seen[:4]]}")
    if not plan:
        raise ValueError("model has no weight to quantize (Linear, Conv1d/2d, RNN/LSTM/GRU), "
                         "or all of them are skipped / the output layer")
    # Compute every quantizer first, so a layer that cannot take its config leaves the
    # model untouched.
    qparams = {}
    for module, targets in plan.values():
        for t in targets:
            qparams[t.name] = _compute_qparams(getattr(module, t.param), t.config, t.name)
    state = AttachState(config, [t for _, ts in plan.values() for t in ts])
    for module, targets in plan.values():
        for t in targets:
            weight = module._parameters.pop(t.param)
            module.register_parameter(t.param + "_float", weight)
            _store_qparams(module, t, qparams[t.name])
            state.history[t.name] = [qparams[t.name].p0.detach().clone()]
            with torch.no_grad():
                setattr(module, t.param, ops.fake_quant(weight, *_op_args(qparams[t.name])))
        module.register_forward_pre_hook(_QuantizeWeights(targets))
        module.register_forward_hook(_ReleaseGraph(targets))
    setattr(model, _STATE_ATTR, state)
    return state


def _op_args(qp: QParams):
    return qp.scheme, qp.bits, qp.p0, qp.p1


def _store_qparams(module: nn.Module, t: Target, qp: QParams) -> None:
    module.register_buffer(t.param + "_q0", qp.p0.detach().clone())
    if qp.p1 is not None:
        module.register_buffer(t.param + "_q1", qp.p1.detach().clone())


def _state(model: nn.Module) -> AttachState:
    state = getattr(model, _STATE_ATTR, None)
    if state is None:
        raise ValueError("model has no lowbit hooks; call lowbit.attach(model, config) first")
    return state


def _modules(model: nn.Module) -> Dict[str, nn.Module]:
    return dict(model.named_modules())


def targets(model: nn.Module) -> List[Target]:
    """The quantized tensors of a model with hooks attached."""
    return list(_state(model).targets)


def _requantize(model: nn.Module, bits: Optional[int] = None) -> None:
    """Recompute every quantizer from the current float shadows (at a new bit width if
    given), after computing all of them first so that an error leaves no half-changed
    model, and record the new p0 in the step history."""
    state = _state(model)
    modules = _modules(model)
    planned = []
    for t in state.targets:
        cfg = t.config if bits is None else LayerConfig(**{**t.config.__dict__, "bits": bits})
        qp = _compute_qparams(getattr(modules[t.module_name], t.param + "_float"), cfg, t.name)
        planned.append((t, cfg, qp))
    for t, cfg, qp in planned:
        module = modules[t.module_name]
        t.config = cfg
        getattr(module, t.param + "_q0").copy_(qp.p0)
        if qp.p1 is not None:
            getattr(module, t.param + "_q1").copy_(qp.p1)
        state.history[t.name].append(qp.p0.detach().clone())


def update_steps(model: nn.Module) -> None:
    """Recompute every quantizer from the current float shadow weights (paper 002's
    adaptive step: Delta_new = QStep(w_new)) and record it in the step history."""
    _requantize(model)


def set_bits(model: nn.Module, bits: int) -> None:
    """Change the bit width of every quantized tensor (gradual quantization) and
    recompute the quantizers from the current float weights."""
    _requantize(model, bits)


def step_history(model: nn.Module) -> Dict[str, List[torch.Tensor]]:
    """Quantizer parameter p0 (the step for symmetric) of every tensor, one entry per
    attach / update_steps / set_bits call: what Fig. 2 of paper 002 plots."""
    return {k: list(v) for k, v in _state(model).history.items()}


def quantized_weights(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The current quantized value of every target (no gradient)."""
    modules = _modules(model)
    out = {}
    with torch.no_grad():
        for t in _state(model).targets:
            module = modules[t.module_name]
            out[t.name] = ops.fake_quant(getattr(module, t.param + "_float"), *_op_args(_qparams_of(module, t)))
    return out


def _remove(model: nn.Module, write_quantized: bool) -> nn.Module:
    state = _state(model)
    modules = _modules(model)
    values = quantized_weights(model) if write_quantized else {}
    for t in state.targets:
        module = modules[t.module_name]
        weight = module._parameters.pop(t.param + "_float")
        if write_quantized:
            with torch.no_grad():
                weight.copy_(values[t.name])
            record_qparams(module, t.param, _qparams_of(module, t))
        module._buffers.pop(t.param + "_q0", None)
        module._buffers.pop(t.param + "_q1", None)
        # setattr (not register_parameter): nn.RNNBase refreshes its flat weights on it
        setattr(module, t.param, weight)
    # Found by type, not by a stored handle: a deepcopied handle would still point
    # at the original model's hook table.
    for module in modules.values():
        for table in (module._forward_pre_hooks, module._forward_hooks):
            for key in [k for k, h in table.items() if isinstance(h, (_QuantizeWeights, _ReleaseGraph))]:
                del table[key]
    delattr(model, _STATE_ATTR)
    return model


def detach(model: nn.Module) -> nn.Module:
    """Remove the hooks and restore the float weights exactly (the same Parameters)."""
    return _remove(model, write_quantized=False)


def freeze(model: nn.Module) -> nn.Module:
    """Write the quantized values into the weights and remove the hooks: the model is a
    plain float model whose weights lie on the quantization grid."""
    return _remove(model, write_quantized=True)
