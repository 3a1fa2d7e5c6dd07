"""Retraining schedules of paper 002, as callbacks for any training loop.

    sched = lb.Adaptive(update="epoch")
    sched.start(model)                      # after lb.attach
    for epoch in range(epochs):
        train_one_epoch(model)
        sched.step(model)                   # at the end of every epoch

Direct: quantize, no retraining. Conventional: the step is fixed from the float weights
(optionally searched in [D/2, 2D] on an evaluation set, ref [4] of paper 002).
Adaptive: the step is recomputed by QStep every epoch ('epoch'), or only during the
first epochs then frozen ('first'). Gradual: 6 -> 5 -> 4 -> 3 -> 2 bits with retraining
at each precision, optionally adaptive as well.

`from_name("gradual", bits=3, epochs=3)` builds one by name (the names in SCHEDULES), as
`lowbit retrain --schedule` and the study do.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import hooks


class Schedule:
    """Base class: start(model) once after attach, step(model) after every epoch."""
    epochs: Optional[int] = None  # epochs the schedule wants; None: the caller decides

    def __init__(self):
        self.epoch = 0

    def start(self, model: nn.Module) -> None:
        self.epoch = 0

    def step(self, model: nn.Module) -> None:
        self.epoch += 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Direct(Schedule):
    """Quantize once, no retraining (epochs = 0)."""
    epochs = 0

    def start(self, model: nn.Module) -> None:
        super().start(model)
        hooks.update_steps(model)


class Conventional(Schedule):
    """The step is fixed from the float weights at the start and never changes.

    search: optional callable(model) -> score (higher is better, e.g. accuracy on an
    evaluation set). Each layer's step is then searched over `factors` values between
    D/2 and 2D, one layer at a time with the others fixed (ref [4] of paper 002).
    """

    def __init__(self, search: Optional[Callable[[nn.Module], float]] = None, factors: int = 9):
        super().__init__()
        if factors < 2:
            raise ValueError(f"factors must be >= 2, got {factors}")
        self.search, self.factors = search, factors

    def start(self, model: nn.Module) -> None:
        super().start(model)
        hooks.update_steps(model)
        if self.search is not None:
            search_steps(model, self.search, self.factors)

    def __repr__(self) -> str:
        return f"Conventional(search={'yes' if self.search else 'no'})"


class Adaptive(Schedule):
    """Paper 002's step adaptation. update='epoch': QStep after every epoch;
    update='first': only after each of the first `first_epochs` epochs, then frozen."""

    def __init__(self, update: str = "epoch", first_epochs: int = 1):
        super().__init__()
        if update not in ("epoch", "first"):
            raise ValueError(f"update must be 'epoch' or 'first', got {update!r}")
        if first_epochs < 1:
            raise ValueError(f"first_epochs must be >= 1, got {first_epochs}")
        self.update, self.first_epochs = update, first_epochs

    def start(self, model: nn.Module) -> None:
        super().start(model)
        hooks.update_steps(model)

    def step(self, model: nn.Module) -> None:
        super().step(model)
        if self.update == "epoch" or self.epoch <= self.first_epochs:
            hooks.update_steps(model)

    def __repr__(self) -> str:
        return f"Adaptive(update={self.update!r})"


class Gradual(Schedule):
    """Curriculum over precisions: retrain `epochs_per_stage` epochs at each of `bits`
    (e.g. [6, 5, 4, 3, 2]), re-quantizing from the current float weights when the bit
    width drops. adaptive=True also recomputes the step after every epoch
    (paper 002's 'adaptive & gradual')."""

    def __init__(self, bits: Sequence[int] = (6, 5, 4, 3, 2), epochs_per_stage: int = 1,
                 adaptive: bool = False):
        super().__init__()
        bits = list(bits)
        if not bits or any(not isinstance(b, int) or not 2 <= b <= 8 for b in bits):
            raise ValueError(f"bits must be a non-empty list of widths in [2, 8], got {bits}")
        if epochs_per_stage < 1:
            raise ValueError(f"epochs_per_stage must be >= 1, got {epochs_per_stage}")
        self.bits, self.epochs_per_stage, self.adaptive = bits, epochs_per_stage, adaptive
        self.epochs = len(bits) * epochs_per_stage

    @property
    def final_stage_start(self) -> int:
        """Epochs before the last precision: earlier states are not final results."""
        return (len(self.bits) - 1) * self.epochs_per_stage

    @property
    def current_bits(self) -> int:
        return self.bits[min(self.epoch // self.epochs_per_stage, len(self.bits) - 1)]

    def start(self, model: nn.Module) -> None:
        super().start(model)
        hooks.set_bits(model, self.bits[0])

    def step(self, model: nn.Module) -> None:
        before = self.current_bits
        super().step(model)
        if self.current_bits != before and self.epoch < self.epochs:
            hooks.set_bits(model, self.current_bits)
        elif self.adaptive:
            hooks.update_steps(model)

    def __repr__(self) -> str:
        return f"Gradual(bits={self.bits}, adaptive={self.adaptive})"


def AdaptiveGradual(bits: Sequence[int] = (6, 5, 4, 3, 2), epochs_per_stage: int = 1) -> Gradual:
    """Gradual quantization with the step recomputed after every epoch."""
    return Gradual(bits, epochs_per_stage, adaptive=True)


SCHEDULES = ("direct", "conventional", "adaptive", "gradual", "adaptive-gradual")


def gradual_stages(bits: int) -> List[int]:
    """The precisions a gradual run goes through to reach `bits`: bits+2 -> bits+1 -> bits
    (at most 8)."""
    return list(range(min(8, bits + 2), bits - 1, -1))


def from_name(name: str, bits: int, epochs: int) -> Tuple[Schedule, int, int]:
    """(schedule, epochs to train, bit width to attach at) for a name in SCHEDULES at the
    target `bits`. direct trains 0 epochs; gradual and adaptive-gradual give each stage of
    `gradual_stages(bits)` an equal share of `epochs` (at least one), so their total can differ."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an integer in [2, 8], got {bits!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if name == "direct":
        return Direct(), 0, bits
    if name == "conventional":
        return Conventional(), epochs, bits
    if name == "adaptive":
        return Adaptive(update="epoch"), epochs, bits
    stages = gradual_stages(bits)
    per_stage = max(1, round(epochs / len(stages)))
    sched = Gradual(stages, per_stage, adaptive=(name == "adaptive-gradual"))
    return sched, sched.epochs, stages[0]


def search_steps(model: nn.Module, score: Callable[[nn.Module], float], factors: int = 9) -> List[float]:
    """Per-layer search of the quantizer's p0 over geometric factors in [1/2, 2], one layer
    at a time, keeping each layer's best by `score(model)` (higher is better).
    Returns the chosen factor per target."""
    modules = dict(model.named_modules())
    grid = torch.logspace(-1, 1, factors, base=2.0).tolist()
    chosen = []
    with torch.no_grad():
        for t in hooks.targets(model):
            if t.config.scheme == "codebook":
                chosen.append(1.0)
                continue
            buf = getattr(modules[t.module_name], t.param + "_q0")
            base = buf.clone()
            best, best_f = None, 1.0
            for f in grid:
                candidate = base * f
                if t.config.scheme == "pow2":  # max_level must stay a power of two
                    candidate = torch.exp2(torch.round(torch.log2(candidate)))
                buf.copy_(candidate)
                s = float(score(model))
                if best is None or s > best:
                    best, best_f = s, f
            final = base * best_f
            if t.config.scheme == "pow2":
                final = torch.exp2(torch.round(torch.log2(final)))
            buf.copy_(final)
            chosen.append(best_f)
    return chosen
