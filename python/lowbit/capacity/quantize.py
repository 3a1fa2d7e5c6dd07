"""Quantization under capacity (paper 001, section 3.2 and 5.1): a network trained on a
memorization set is quantized to 8, 6, 5, 4, 3, 2 bits in sequence, retrained with the
straight-through estimator after each step, and its training accuracy recorded.

Uniform symmetric quantization with the L2-optimal step, one step per layer for FCDNNs,
per kernel (output channel) for convolutions, per weight matrix (input-to-hidden and
hidden-to-hidden) for LSTMs; biases and the output layer stay float. The hooks and
schedules are lowbit's own (lowbit.attach, lowbit.Gradual, lowbit.retrain).
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from .. import hooks
from ..config import QuantConfig
from ..optional import tqdm
from ..retrain import retrain
from ..schedules import Gradual
from .information import mutual_information
from .models import model_kind
from .training import TrainingDiverged, epoch_fn, memorization_accuracy

PAPER_BITS = (8, 6, 5, 4, 3, 2)


def paper_config(model: nn.Module, bits: int = 8) -> QuantConfig:
    """The quantizer paper 001 uses for this model's family (see the module docstring)."""
    if model_kind(model) != "conv":
        return QuantConfig(bits=bits, scheme="symmetric", granularity="tensor", step="l2")
    # Convolutions per kernel; any hidden Linear layer of a CNN keeps one step per layer.
    linear = {name: {"granularity": "tensor"} for name, m in model.named_modules()
              if isinstance(m, nn.Linear)}
    last = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    linear.pop(last, None)  # the output layer is not quantized: an override would not match
    return QuantConfig(bits=bits, scheme="symmetric", granularity="channel", step="l2",
                       overrides=linear)


def quantize_under_capacity(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            bits: Sequence[int] = PAPER_BITS, retrain_epochs: int = 5,
                            lr: float = 0.005, momentum: float = 0.9, batch_size: int = 64,
                            config: Optional[QuantConfig] = None, seed: int = 0,
                            keep_direct: bool = True, progress: bool = False) -> List[Dict]:
    """Quantize a copy of the trained `model` to each of `bits` in turn (from the weights
    retrained at the previous precision), retraining `retrain_epochs` epochs on (x, y) after
    each step. Returns one record per precision, the float model first:
    {'bits': None | b, 'accuracy_direct': before retraining, 'accuracy': after, 'mi': bits,
    'diverged': whether retraining diverged and was undone}.

    keep_direct: when no retraining epoch reaches the directly quantized model's accuracy,
    keep the directly quantized weights (and their accuracy). Retraining is meant as a
    fine-tune; at full capacity SGD's noise can undo memorized samples instead (FCDNN(32)x2:
    8 bits direct 95.7 %, after 4 retraining epochs 91.0 %).
    A retraining that diverges (a weight turns NaN or infinite) is undone: that precision
    keeps its directly quantized weights and accuracy, its record says 'diverged': True, and
    the next precision starts from them with a fresh optimizer.
    """
    bits = list(bits)
    if not bits or any(isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 8 for b in bits):
        raise ValueError(f"bits must be a non-empty list of widths in [2, 8], got {bits!r}")
    if any(b2 >= b1 for b1, b2 in zip(bits, bits[1:])):
        raise ValueError(f"bits must decrease (quantization goes 8 -> 6 -> ... in sequence), got {bits}")
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise ValueError(f"retrain_epochs must be an integer >= 0, got {retrain_epochs!r}")
    model = copy.deepcopy(model)
    n = len(y)
    float_acc = memorization_accuracy(model, x, y)
    records = [{"bits": None, "accuracy_direct": float_acc, "accuracy": float_acc,
                "mi": mutual_information(float_acc, n), "diverged": False}]
    hooks.attach(model, config or paper_config(model, bits[0]))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    train = epoch_fn(x, y, batch_size, seed, check_finite=True)
    score = lambda m: memorization_accuracy(m, x, y)  # noqa: E731
    steps = bits
    if progress:
        steps = tqdm(bits, desc=f"quantizing N={n}", leave=False)
    for b in steps:
        hooks.set_bits(model, b)
        direct = score(model)
        acc, diverged = direct, False
        if retrain_epochs:
            before = copy.deepcopy(model.state_dict())
            try:
                # Gradual with one precision: re-quantize at b, retrain, keep the best epoch.
                hist = retrain(model, train, Gradual([b], epochs_per_stage=retrain_epochs),
                               optimizer=optimizer, evaluate=score, progress=False)
                acc = max(hist["score"])
            except TrainingDiverged:
                diverged = True
                optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
            if diverged or (keep_direct and acc < direct):
                model.load_state_dict(before)
                acc = direct
        records.append({"bits": b, "accuracy_direct": direct, "accuracy": acc,
                        "mi": mutual_information(acc, n), "diverged": diverged})
    return records


def precision_threshold(records: Sequence[Dict], tolerance: float = 0.01) -> Optional[int]:
    """The fewest bits at which memorization has not dropped yet: the smallest b such that
    every precision >= b keeps the accuracy within `tolerance` of the float model's.
    None if even the highest precision tried drops."""
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    floats = [r for r in records if r["bits"] is None]
    if len(floats) != 1:
        raise ValueError("records must hold exactly one float row (bits=None)")
    ref = floats[0]["accuracy"]
    best = None
    for r in sorted((r for r in records if r["bits"] is not None), key=lambda r: -r["bits"]):
        if r["accuracy"] < ref - tolerance:
            break
        best = r["bits"]
    return best
