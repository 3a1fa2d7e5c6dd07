"""The paper's searches on a model: GA with one codebook for the whole network or one per
layer, and per-layer SA on Eq. 2, all with `ModelEvaluator` accuracy as the fitness."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .formula import formula
from .ga import GAResult, ga
from .model import Codebooks, ModelEvaluator
from .sa import SAResult, sa


def _bounds(weights) -> Tuple[float, float]:
    return float(min(w.min() for w in weights)), float(max(w.max() for w in weights))


def ga_network(ev: ModelEvaluator, bins: int, symmetric: bool = True, **kwargs) -> GAResult:
    """One codebook for every layer (paper 003, Fig. 5); bounds: the weights' range."""
    lo, hi = _bounds(ev.float_weights)
    return ga(ev.network_fitness(), bins, lo, hi, symmetric=symmetric, **kwargs)


def ga_layers(ev: ModelEvaluator, bins: int, symmetric: bool = True,
              others: Optional[Codebooks] = None, seed: int = 0, **kwargs) -> List[GAResult]:
    """One GA per layer with the other layers at `others` (float by default: Fig. 6).
    Layer l uses seed + l."""
    out = []
    for l, w in enumerate(ev.float_weights):
        lo, hi = _bounds([w])
        out.append(ga(ev.layer_fitness(l, others), bins, lo, hi, symmetric=symmetric,
                      seed=seed + l, **kwargs))
    return out


def range_b0(weights, a0: Union[float, Sequence[float]] = 1.25) -> np.ndarray:
    """b per layer such that Eq. 2's outermost values are +-max|w| for the given a0: a
    start on the weights' own scale (the paper's b0 = 0.05 fits VGG16's weights only)."""
    a0 = np.broadcast_to(np.asarray(a0, dtype=np.float64), (len(weights),))
    return np.array([float(w.abs().max()) / (a ** 0.5 - 1.0) for w, a in zip(weights, a0)])


def sa_layers(ev: ModelEvaluator, bins: int, a0=1.25, b0="range", **kwargs) -> Tuple[SAResult, List[np.ndarray]]:
    """Per-layer SA on (a, b) with the network's accuracy as fitness (paper 003, Fig. 10).
    b0="range" starts each layer at range_b0; returns the result and the codebooks of
    its best state."""
    if isinstance(b0, str):
        if b0 != "range":
            raise ValueError(f"b0 must be a number, one per layer, or 'range', got {b0!r}")
        b0 = range_b0(ev.float_weights, a0)
    r = sa(ev.sa_fitness(bins), ev.layers, bins, a0=a0, b0=b0, **kwargs)
    return r, [formula(a, b, bins) for a, b in r.best_state]
