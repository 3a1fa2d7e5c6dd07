"""How quantization reshapes a layer's weights: per-channel quartiles (paper 004,
Fig. 1) and weight histograms by scheme or bit width (Fig. 2)."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import nn

from ._plot import PathLike, pyplot, save_png


@dataclass(frozen=True)
class ChannelStats:
    """One output channel (a CNN kernel): five-number summary and mean."""
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    mean: float


@dataclass(frozen=True)
class Histogram:
    edges: List[float]   # len(counts) + 1 bin edges, shared by every tensor of one call
    counts: List[int]


def layer_tensor(model: nn.Module, name: str) -> torch.Tensor:
    """A parameter or buffer by its state_dict name, e.g. 'features.3.weight'."""
    state = model.state_dict()
    if name not in state:
        raise ValueError(f"model has no tensor {name!r}; names are like {list(state)[:4]}")
    return state[name].detach()


def _check(tensors: Dict[str, torch.Tensor]) -> None:
    if not isinstance(tensors, dict) or not tensors:
        raise ValueError("tensors must be a non-empty dict {label: tensor}")
    for label, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.numel() == 0:
            raise ValueError(f"tensors[{label!r}] must be a non-empty tensor with at least one dimension")


def channel_quartiles(tensors: Dict[str, torch.Tensor], png: Optional[PathLike] = None,
                      title: str = "", max_channels: int = 32) -> Dict[str, List[ChannelStats]]:
    """Per output channel (dim 0) quartiles of each tensor ({label: tensor}, e.g. the
    float32 layer and its quantized versions). png: one box-plot panel per label."""
    _check(tensors)
    out = {}
    for label, t in tensors.items():
        rows = t.detach().to(torch.float64).reshape(t.shape[0], -1)
        qs = torch.quantile(rows, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64), dim=1)
        out[label] = [ChannelStats(*(float(v) for v in qs[:, c]), float(rows[c].mean()))
                      for c in range(rows.shape[0])]
    if png is not None:
        plt = pyplot()
        fig, axes = plt.subplots(len(tensors), 1, figsize=(10, 2.2 * len(tensors)), sharex=True,
                                 sharey=True, squeeze=False)
        for ax, (label, t) in zip(axes[:, 0], tensors.items()):
            rows = t.detach().to(torch.float64).reshape(t.shape[0], -1)[:max_channels]
            ax.boxplot([r.numpy() for r in rows], flierprops={"markersize": 2})
            ax.set_ylabel(label, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("output channel")
        if title:
            fig.suptitle(title, fontsize=10)
        save_png(fig, png)
    return out


def weight_histograms(tensors: Dict[str, torch.Tensor], bins: int = 81,
                      png: Optional[PathLike] = None, title: str = "") -> Dict[str, Histogram]:
    """Histograms of each tensor ({label: tensor}) on one shared set of bins spanning all
    of them. png: the histograms overlaid (log counts)."""
    _check(tensors)
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    flat = {k: v.detach().to(torch.float64).reshape(-1) for k, v in tensors.items()}
    lo = min(float(v.min()) for v in flat.values())
    hi = max(float(v.max()) for v in flat.values())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    out = {k: Histogram(edges.tolist(), torch.histc(v, bins, lo, hi).to(torch.int64).tolist())
           for k, v in flat.items()}
    if png is not None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for label, h in out.items():
            ax.stairs(h.counts, h.edges, label=label)
        ax.set(yscale="log", xlabel="weight value", ylabel="count")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if title:
            ax.set_title(title, fontsize=10)
        save_png(fig, png)
    return out
