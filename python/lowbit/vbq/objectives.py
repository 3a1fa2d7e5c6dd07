"""Native objectives (C++, OpenMP across genomes): weight MSE and layer-output MSE.

Each returns a `lowbit._C.vbq.Objective`: `obj.evaluate(genomes [n, K]) -> [n]` (lower is
better) and `obj.energy` (the objective of an all-zero codebook, for relative errors).
Passed as the fitness of `ga`, the GA maximizes minus the objective; a list of them (one
per layer) is a native fitness for `sa`.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._native import C
from ._checks import as_float64

Objective = C.vbq.Objective


def weight_mse(w) -> "Objective":
    """mean((Q(w) - w)^2) over all weights, O(K log n) per codebook (sorted prefix sums)."""
    return C.vbq.weight_mse(as_float64("w", w).reshape(-1))


def layer_output_mse(weight, x) -> "Objective":
    """||x W^T - x Q(W)^T||^2 for a weight [out, in] and calibration rows x [rows, in]."""
    W = as_float64("weight", weight, 2)
    X = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"x must be [rows, {W.shape[1]}] to match weight {W.shape}, got {X.shape}")
    return C.vbq.layer_output_mse(W, np.ascontiguousarray(X))


def as_matrix_input(module: nn.Module, inp: torch.Tensor) -> torch.Tensor:
    """The rows a layer multiplies by weight.reshape(out, -1)^T: features of a Linear,
    im2col patches of a Conv2d."""
    if isinstance(module, nn.Linear):
        return inp.reshape(-1, inp.shape[-1])
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError("layer-output MSE supports Conv2d with groups=1, numeric zero padding")
        cols = F.unfold(inp, module.kernel_size, module.dilation, module.padding, module.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    raise TypeError(f"layer-output MSE supports nn.Linear and nn.Conv2d, got {type(module).__name__}")


@torch.no_grad()
def layer_inputs(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Calibration activations of the named layers as [rows, in] matrices (one forward)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"no such layer(s) {missing}; layers: {list(modules)[1:]}")
    got: Dict[str, list] = {n: [] for n in names}
    hooks = [modules[n].register_forward_pre_hook(
        lambda m, inp, n=n: got[n].append(as_matrix_input(m, inp[0]).float())) for n in names]
    try:
        was = model.training
        model.eval()
        model(x)
        model.train(was)
    finally:
        for h in hooks:
            h.remove()
    return {n: torch.cat(v) for n, v in got.items()}


def layer_output_objectives(model: nn.Module, x: torch.Tensor,
                            names: Optional[Sequence[str]] = None) -> Dict[str, "Objective"]:
    """A layer-output MSE objective for each named layer (default: every Linear / Conv2d)."""
    from .model import quantizable_layers
    names = list(names) if names is not None else [n for n, _ in quantizable_layers(model)]
    inputs = layer_inputs(model, x, names)
    modules = dict(model.named_modules())
    return {n: layer_output_mse(modules[n].weight.detach().reshape(modules[n].weight.shape[0], -1),
                                inputs[n]) for n in names}
