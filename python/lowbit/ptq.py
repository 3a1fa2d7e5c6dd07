"""Data-free post-training quantization of a whole model (paper 004).

`ptq` returns a deep copy of a float model whose Conv / Linear / RNN weights and
BatchNorm parameters hold quantized values, with no data and no retraining, and records
each quantized tensor's QParams on its module (`lowbit.qrecord`), so that
`save_quantized` can pack it and an inference converter knows its grid.

What is quantized (paper 004 quantizes "convolution kernels, batch norm layers, and
dense layers", every layer, in its PTQ results):
- weights of every layer kind PTQ serves (lowbit.layers: Linear, Conv1d/2d/3d,
  RNN/LSTM/GRU with each weight_ih/hh on its own, MultiheadAttention's projections,
  Embedding) at `granularity` ("channel" by default: one quantizer per output channel);
- BatchNorm weight (gamma) and bias (beta), per tensor: one quantizer for the layer's
  whole gamma vector and one for beta (per channel would give every value its own
  quantizer, i.e. no quantization). Running mean / variance are statistics and stay
  float, like every other buffer;
- biases of Linear / Conv / RNN only with quantize_bias=True (per tensor): they are few
  and the usual integer pipelines keep them at high precision;
- the output layer too by default (quantize_output=True), as the paper does.
"""
import copy
import warnings
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from .config import CodebookSpec, QuantConfig
from .hooks import _STATE_ATTR
from .plan import PlanEntry, compute_qparams, plan as plan_model
from .qrecord import record_qparams
from .quant import fake_quantize


def _config(scheme: str, bits: int, granularity: str, groups, step, codebook, layers, skip, overrides,
            quantize_output: bool, quantize_bias: bool, batchnorm: bool) -> QuantConfig:
    return QuantConfig(bits=bits, scheme=scheme, granularity=granularity, groups=groups, step=step,
                       codebook=codebook, quantize_output=quantize_output, quantize_bias=quantize_bias,
                       batchnorm=batchnorm, layers=layers, skip=skip, overrides=dict(overrides or {}))


def _step_alias(step: Optional[str], method: Optional[str]) -> Optional[str]:
    if method is None:
        return step
    if step is not None:
        raise TypeError("pass step= (method= is its old name), not both")
    warnings.warn("ptq(method=...) is now ptq(step=...), the word QuantConfig uses", DeprecationWarning,
                  stacklevel=3)
    return method


def plan(model: nn.Module, scheme: str, bits: int, granularity: str = "channel", *,
         groups: Optional[int] = None, step: Optional[str] = None, codebook: CodebookSpec = None,
         layers: Optional[Sequence[str]] = None, skip: Sequence[str] = (),
         overrides: Optional[Dict[str, Dict[str, Any]]] = None, quantize_output: bool = True,
         quantize_bias: bool = False, batchnorm: bool = True, method: Optional[str] = None) -> List[PlanEntry]:
    """The tensors `ptq` would quantize with these arguments, and how (see `ptq`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _STATE_ATTR, None) is not None:
        raise ValueError("model has lowbit training hooks; call lowbit.freeze(model) or "
                         "lowbit.detach(model) before ptq")
    config = _config(scheme, bits, granularity, groups, _step_alias(step, method), codebook, layers, skip,
                     overrides, quantize_output, quantize_bias, batchnorm)
    return [e for e in plan_model(model, config, "ptq") if e.quantized]


def ptq(model: nn.Module, scheme: str, bits: int, granularity: str = "channel", *,
        groups: Optional[int] = None, step: Optional[str] = None, codebook: CodebookSpec = None,
        layers: Optional[Sequence[str]] = None, skip: Sequence[str] = (),
        overrides: Optional[Dict[str, Dict[str, Any]]] = None, quantize_output: bool = True,
        quantize_bias: bool = False, batchnorm: bool = True, method: Optional[str] = None) -> nn.Module:
    """A deep copy of `model` with its weights quantized, data-free (paper 004).

    scheme: 'asymmetric' (min/max with zero point, 2^b levels), 'symmetric' (2^b - 1
        levels, step max|w| / (2^(b-1) - 1) by default: step='l2' or 'meanstd' to
        change it), 'pow2' (sign + exponents), 'range' (paper 004's min-max formula, a
        float offset) or 'codebook' (codebook= sorted values, or a function
        (weight, bits) -> values [K] or [groups, K] for per-layer codebooks).
        `lowbit.schemes` lists each scheme's facts and default rules.
    bits: 2..8 (1..8 for a codebook). granularity: 'channel' (default), 'tensor' or
        'group' (with groups=, or groups=None for each layer's natural blocks: LSTM gates,
        attention's q, k, v); BatchNorm parameters and biases are always per tensor.
    layers: glob patterns of layer or tensor names to quantize (default: all);
    skip: patterns left float; overrides: {pattern: {field: value}}, e.g.
        {"features.0": {"bits": 8}} keeps the first layer at 8 bits. Later patterns
        win; every pattern must match something.
    quantize_output: quantize the last Linear / Conv / RNN too (default True, as in
        the paper). quantize_bias: also Linear / Conv / RNN biases. batchnorm: also
        BatchNorm gamma / beta (default True, as in the paper). method: the old name of step.

    Which layers: every kind of `lowbit.layers.KINDS` that PTQ serves (Linear, Conv1d/2d/3d,
    RNN/LSTM/GRU, MultiheadAttention, Embedding / EmbeddingBag, BatchNorm);
    `lowbit.coverage(q)` lists every parameter of the result and why it is float if it is.
    The original model is not modified. Every quantized tensor's QParams is recorded on
    its module (`lowbit.recorded_qparams(q)`), which `save_quantized` packs.
    """
    targets = plan(model, scheme, bits, granularity, groups=groups, step=_step_alias(step, method),
                   codebook=codebook, layers=layers, skip=skip, overrides=overrides,
                   quantize_output=quantize_output, quantize_bias=quantize_bias, batchnorm=batchnorm)
    quantized = copy.deepcopy(model)
    modules = dict(quantized.named_modules())
    # Every quantizer first: a tensor that cannot take its settings raises before any change.
    qparams = [compute_qparams(getattr(modules[t.owner], t.param), t.config, t.name) for t in targets]
    with torch.no_grad():
        for t, qp in zip(targets, qparams):
            module = modules[t.owner]
            weight = getattr(module, t.param)
            weight.copy_(fake_quantize(weight.detach(), qp))
            record_qparams(module, t.param, qp)
        for module in modules.values():
            if isinstance(module, nn.RNNBase):
                module.flatten_parameters()  # a no-op on CPU; keeps cuDNN's flat copy in step
    return quantized
