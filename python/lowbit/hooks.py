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
from typing import Dict, List, Optional

import torch
from torch import nn

from . import ops
from .config import LayerConfig, QuantConfig
from .plan import compute_qparams, plan
from .quant import QParams
from .qrecord import record_qparams

_STATE_ATTR = "_lowbit_state"


@dataclass
class Target:
    """One quantized tensor: the module that holds it, its name there, its quantizer, and
    the layer whose forward pre-hook swaps it (attention's out_proj weight is held by
    'attn.out_proj' and swapped by 'attn')."""
    module_name: str
    param: str
    config: LayerConfig
    layer: str = ""
    kind: str = ""

    @property
    def name(self) -> str:
        return f"{self.module_name}.{self.param}" if self.module_name else self.param


@dataclass
class AttachState:
    """Kept on the model (so it survives deepcopy and pickling): what attach did."""
    config: QuantConfig
    targets: List[Target]
    history: Dict[str, List[torch.Tensor]] = field(default_factory=dict)


def _relative(path: str, base: str) -> str:
    if not base:
        return path
    return "" if path == base else path[len(base) + 1:]


class _QuantizeWeights:
    """The forward pre-hook of one layer, or of the whole model: a plain object holding
    owner paths relative to the hooked module, so models stay picklable and deep copies
    point at their own modules. The model-level one runs outside training only and writes
    detached values: it serves parents that read weights without calling their layers
    (torch's fused TransformerEncoderLayer path reads the attention and feed-forward
    weights itself in eval mode)."""

    def __init__(self, targets: List[Target], base: str, root: bool = False):
        self.targets = [(_relative(t.module_name, base), t) for t in targets]
        self.root = root

    def __call__(self, module: nn.Module, inputs) -> None:
        if self.root and module.training:
            return
        for path, t in self.targets:
            owner = module.get_submodule(path) if path else module
            shadow = getattr(owner, t.param + "_float")
            qp = _qparams_of(owner, t)
            if self.root:
                with torch.no_grad():
                    setattr(owner, t.param, ops.fake_quant(shadow, qp.scheme, qp.bits, qp.p0, qp.p1))
            else:
                setattr(owner, t.param, ops.ste_fake_quant(shadow, qp.scheme, qp.bits, qp.p0, qp.p1,
                                                           t.config.clip_grad))


class _ReleaseGraph:
    """Forward post-hook: keeps a detached view of the quantized weight on the module
    once the forward is done (the autograd graph holds its own references), so the
    model can be deep-copied and pickled between steps."""

    def __init__(self, targets: List[Target], base: str):
        self.targets = [(_relative(t.module_name, base), t) for t in targets]

    def __call__(self, module: nn.Module, inputs, output) -> None:
        for path, t in self.targets:
            owner = module.get_submodule(path) if path else module
            setattr(owner, t.param, getattr(owner, t.param).detach())


def _qparams_of(module: nn.Module, t: Target) -> QParams:
    p1 = getattr(module, t.param + "_q1", None)
    return QParams(t.config.scheme, t.config.bits, getattr(module, t.param + "_q0"), p1)


def attach(model: nn.Module, config: Optional[QuantConfig] = None, **kwargs) -> AttachState:
    """Put straight-through weight fake-quantization on every layer the layer-kind table
    (lowbit.layers.KINDS) retrains: Linear, Conv1d/2d/3d, RNN/LSTM/GRU (each weight_ih_l* /
    weight_hh_l* on its own), MultiheadAttention (q/k/v and output projections) and
    Embedding / EmbeddingBag.

    Biases and the output layer stay float unless the config says otherwise
    (`lowbit.coverage(model)` lists every parameter and why). Keyword arguments build a
    QuantConfig when none is given: attach(model, bits=3). Returns the attach state
    (targets and step history); see detach / update_steps / freeze.
    """
    if config is None:
        config = QuantConfig(**kwargs)
    elif kwargs:
        raise TypeError("pass either a QuantConfig or keyword arguments, not both")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _STATE_ATTR, None) is not None:
        raise ValueError("model already has lowbit hooks; call lowbit.detach(model) first")
    entries = [e for e in plan(model, config, "retrain") if e.quantized]
    modules = dict(model.named_modules())
    targets = [Target(e.owner, e.param, e.config, e.layer, e.kind) for e in entries]
    # Compute every quantizer first, so a layer that cannot take its config leaves the
    # model untouched.
    qparams = {t.name: compute_qparams(getattr(modules[t.module_name], t.param), t.config, t.name)
               for t in targets}
    state = AttachState(config, targets)
    for t in targets:
        owner = modules[t.module_name]
        weight = owner._parameters.pop(t.param)
        owner.register_parameter(t.param + "_float", weight)
        _store_qparams(owner, t, qparams[t.name])
        state.history[t.name] = [qparams[t.name].p0.detach().clone()]
        with torch.no_grad():
            setattr(owner, t.param, ops.fake_quant(weight, *_op_args(qparams[t.name])))
    by_layer: Dict[str, List[Target]] = {}
    for t in targets:
        by_layer.setdefault(t.layer, []).append(t)
    for layer, ts in by_layer.items():
        modules[layer].register_forward_pre_hook(_QuantizeWeights(ts, layer))
        modules[layer].register_forward_hook(_ReleaseGraph(ts, layer))
    model.register_forward_pre_hook(_QuantizeWeights(targets, "", root=True))
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
        qp = compute_qparams(getattr(modules[t.module_name], t.param + "_float"), cfg, t.name)
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
