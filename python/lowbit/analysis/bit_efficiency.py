"""Bit efficiency of a quantized model, layer by layer (paper 004, Section III.b).

The paper says a quantization has a better bit efficiency (BE) when it covers more of
the float range per bit while keeping the density of values at each quantized level.
It gives no formulas; lowbit uses these, per quantized tensor w -> q at b bits:

- range_per_bit = coverage / b, with coverage = (max q - min q) / (max w - min w) for
  each quantizer group (a channel, with per-channel quantization), averaged over the
  groups: the share of the float range the quantized values span, per bit spent.
- density_per_bit = H(codes) / b, with H the entropy (in bits) of the distribution of
  the integer codes: the information each stored bit carries. 1 means every one of
  the 2^b codes is used equally often; a grid whose levels mostly sit empty, or that
  sends almost every weight to zero, wastes bits and scores low.
- levels_used: distinct codes; sqnr_db: 10 log10(sum w^2 / sum (w - q)^2).
"""
import math
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import nn

from ..qrecord import recorded_qparams
from ..quant import quantize
from ._plot import PathLike, pyplot, save_png


@dataclass(frozen=True)
class LayerEfficiency:
    name: str
    scheme: str
    bits: int
    numel: int
    range_per_bit: float
    density_per_bit: float
    levels_used: int
    sqnr_db: float


def entropy_bits(q: torch.Tensor) -> float:
    """Shannon entropy of the empirical distribution of q's values, in bits."""
    _, counts = torch.unique(q.detach().reshape(-1), return_counts=True)
    p = counts.to(torch.float64) / counts.sum()
    return float(-(p * torch.log2(p)).sum()) + 0.0   # + 0.0: no '-0.0' for one level


def tensor_efficiency(w: torch.Tensor, q: torch.Tensor, bits: int, codes: Optional[torch.Tensor] = None,
                      groups: int = 1) -> dict:
    """range_per_bit, density_per_bit, levels_used and sqnr_db of float w quantized to q
    with `groups` quantizers along dim 0 (codes: its integer codes; default q itself)."""
    codes = q if codes is None else codes
    w, q = w.detach().to(torch.float64), q.detach().to(torch.float64)
    wg, qg = w.reshape(groups, -1), q.reshape(groups, -1)
    span = wg.amax(1) - wg.amin(1)
    cover = torch.where(span > 0, (qg.amax(1) - qg.amin(1)) / torch.where(span > 0, span, 1.0), 1.0)
    coverage = float(cover.mean())
    noise = float(((w - q) ** 2).sum())
    signal = float((w ** 2).sum())
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    return {"range_per_bit": coverage / bits, "density_per_bit": entropy_bits(codes) / bits,
            "levels_used": int(torch.unique(codes).numel()), "sqnr_db": sqnr}


def bit_efficiency(float_model: nn.Module, quantized: nn.Module,
                   png: Optional[PathLike] = None) -> List[LayerEfficiency]:
    """Per-layer bit efficiency of `quantized` (from `lowbit.ptq(float_model, ...)`),
    for every tensor it recorded as quantized. png: bar charts of both metrics."""
    floats = dict(float_model.named_modules())
    quants = dict(quantized.named_modules())
    out = []
    for (module, param), qp in recorded_qparams(quantized).items():
        if module not in floats:
            raise ValueError(f"float_model has no module {module!r}: pass the model ptq started from")
        w = getattr(floats[module], param)
        q = getattr(quants[module], param)
        codes = quantize(q.detach(), qp)
        out.append(LayerEfficiency(f"{module}.{param}", qp.scheme, qp.bits, w.numel(),
                                   **tensor_efficiency(w, q, qp.bits, codes, qp.groups)))
    if png is not None:
        plot_bit_efficiency({"": out}, png)
    return out


def plot_bit_efficiency(results: dict, png: PathLike, title: str = "") -> None:
    """Grouped bars per layer, one group member per label of `results` ({label: rows})."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = list(results)
    names = [r.name for r in next(iter(results.values()))]
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        rows = {r.name: r for r in results[label]}
        xs = [j + i * width for j in range(len(names))]
        axes[0].bar(xs, [rows[n].range_per_bit if n in rows else 0 for n in names], width, label=label)
        axes[1].bar(xs, [rows[n].density_per_bit if n in rows else 0 for n in names], width, label=label)
    for ax, what in zip(axes, ("range per bit", "density per bit")):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3, axis="y")
        if len(labels) > 1 or labels[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, png)
