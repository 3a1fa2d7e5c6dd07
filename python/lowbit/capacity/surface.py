"""Loss surfaces under weight noise (paper 001, section 3.3, Eq. 3):
f(alpha) = L(theta + alpha * theta_noise), theta_noise a Gaussian direction normalized
filter by filter (Li et al. 2017): each filter (row of a weight matrix, output channel
of a convolution) of the noise gets the norm of the same filter of the weights, so
models of different scale compare fairly. Biases and other 1-d parameters get no noise
(as Li et al. do). The loss is averaged over `draws` noise directions (the paper: 10).
A model with lowbit hooks is frozen on a copy first: noise goes onto quantized weights.
"""
import copy
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import hooks


def filter_normalized_direction(model: nn.Module, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A random direction, one tensor per parameter name, filter-normalized."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    direction = {}
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
        if p.dim() <= 1:
            d.zero_()
        else:
            w, v = p.detach().reshape(p.shape[0], -1), d.reshape(p.shape[0], -1)
            v.mul_(w.norm(dim=1, keepdim=True) / v.norm(dim=1, keepdim=True).clamp_min(1e-12))
        direction[name] = d
    return direction


def _plain(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    if getattr(model, hooks._STATE_ATTR, None) is not None:
        hooks.freeze(model)
    return model.eval()


def _evaluate(model, x, y, batch_size):
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = model(x[i:i + batch_size])
            loss += float(F.cross_entropy(out, y[i:i + batch_size], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch_size]).sum())
    return loss / len(y), correct / len(y)


def loss_surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, alphas: Sequence[float],
                 draws: int = 10, seed: int = 0, batch_size: int = 2048) -> Dict[str, list]:
    """Mean cross-entropy loss and accuracy at theta + alpha * d over `draws` directions.

    Returns {'alpha': [...], 'loss': [...], 'accuracy': [...]} (means over the draws).
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("alphas must hold at least one noise scale")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as inputs (> 0), got {len(x)} and {len(y)}")
    model = _plain(model)
    params = dict(model.named_parameters())
    theta = {k: p.detach().clone() for k, p in params.items()}
    loss = [0.0] * len(alphas)
    acc = [0.0] * len(alphas)
    with torch.no_grad():
        for k in range(draws):
            d = filter_normalized_direction(model, seed + k)
            for i, a in enumerate(alphas):
                for name, p in params.items():
                    p.copy_(theta[name] + a * d[name])
                l_i, a_i = _evaluate(model, x, y, batch_size)
                loss[i] += l_i / draws
                acc[i] += a_i / draws
        for name, p in params.items():
            p.copy_(theta[name])
    return {"alpha": alphas, "loss": loss, "accuracy": acc}


def plot_loss_surfaces(surfaces: Dict[str, Dict[str, list]], png, title: str = "",
                       test: Optional[Dict[str, Dict[str, list]]] = None):
    """Loss (left) and accuracy (right) against alpha, one line per model label; dashed
    lines for `test` surfaces (the paper's training vs test data)."""
    from ..analysis._plot import pyplot, save_png
    plt = pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(9, 3.6))
    for style, group in (("-", surfaces), ("--", test or {})):
        for i, (label, s) in enumerate(group.items()):
            color = f"C{i}"
            suffix = " (test)" if style == "--" else (" (train)" if test else "")
            ax_l.plot(s["alpha"], s["loss"], style, color=color, label=label + suffix)
            ax_a.plot(s["alpha"], s["accuracy"], style, color=color, label=label + suffix)
    ax_l.set_xlabel("alpha (noise scale)")
    ax_l.set_ylabel("loss")
    ax_a.set_xlabel("alpha (noise scale)")
    ax_a.set_ylabel("accuracy")
    ax_a.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, png)
