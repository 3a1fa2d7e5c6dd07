"""Mutual information of a memorization run and the capacity numbers built on it
(paper 001, Eq. 1 and appendix B; section 4.2 for the convolution-only capacity)."""
import math
from typing import Optional

from torch import nn

from ..models._checks import positive_int

# Paper 001's measured capacities, bits per parameter (sections 4.1-4.3).
PAPER_BITS_PER_PARAM = {"fc": 2.3, "conv": 3.0, "rnn": 3.7}


def _probability(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be an accuracy in [0, 1], got {p!r}")
    return float(p)


def binary_entropy(p: float) -> float:
    """H(p) = p log2(1/p) + (1-p) log2(1/(1-p)) in bits, with H(0) = H(1) = 0."""
    p = _probability(p)
    if p in (0.0, 1.0):
        return 0.0
    return -(p * math.log2(p) + (1.0 - p) * math.log2(1.0 - p))


def mutual_information(p: float, n: int) -> float:
    """I(Y; Y_hat | X) = N (1 - H(p)) bits: what a network that labels a fraction p of N
    random binary samples correctly has stored. p = 1 gives N, p = 0.5 gives 0."""
    positive_int("n", n)
    return n * (1.0 - binary_entropy(p))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (what the paper counts; a frozen redundant LSTM bias is not one)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def bits_per_parameter(capacity: float, params: int) -> float:
    """Capacity (bits) divided by the number of parameters."""
    positive_int("params", params)
    if not math.isfinite(capacity) or capacity < 0:
        raise ValueError(f"capacity must be a finite number of bits >= 0, got {capacity!r}")
    return capacity / params


def conv_bits_per_parameter(capacity: float, conv_params: int, fc_params: int,
                            fc_bits_per_param: Optional[float] = None) -> float:
    """Per-parameter capacity of a CNN's convolution layers: the fully connected part is
    credited fc_bits_per_param bits per parameter (paper 001 assumes 2.3) and the rest of
    the measured capacity is divided by the convolution parameters."""
    positive_int("conv_params", conv_params)
    if isinstance(fc_params, bool) or not isinstance(fc_params, int) or fc_params < 0:
        raise ValueError(f"fc_params must be an integer >= 0, got {fc_params!r}")
    fc_bits = PAPER_BITS_PER_PARAM["fc"] if fc_bits_per_param is None else fc_bits_per_param
    if not (isinstance(fc_bits, (int, float)) and 0 <= fc_bits < math.inf):
        raise ValueError(f"fc_bits_per_param must be a finite number >= 0, got {fc_bits!r}")
    if not math.isfinite(capacity) or capacity < 0:
        raise ValueError(f"capacity must be a finite number of bits >= 0, got {capacity!r}")
    return (capacity - fc_bits * fc_params) / conv_params
