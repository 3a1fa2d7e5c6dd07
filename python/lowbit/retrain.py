"""lowbit.retrain: a ready-made retraining loop around the hooks and a schedule, and
`retrained_copy`, the whole recipe from a float model to a frozen low-bit copy."""
import copy
import math
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
from torch import nn

from . import hooks
from .config import QuantConfig
from .schedules import Schedule

TrainData = Union[Iterable, Callable[[nn.Module, torch.optim.Optimizer], float]]


def _train_epoch(model, data, optimizer, loss_fn) -> float:
    if callable(data):
        return float(data(model, optimizer))
    model.train()
    total, count = 0.0, 0
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += float(loss) * len(y)
        count += len(y)
    if count == 0:
        raise ValueError("the training data yielded no batch")
    return total / count


def retrain(model: nn.Module, train: TrainData, schedule: Schedule,
            epochs: Optional[int] = None, optimizer: Optional[torch.optim.Optimizer] = None,
            lr: float = 1e-3, loss_fn: Optional[Callable] = None,
            evaluate: Optional[Callable[[nn.Module], float]] = None,
            patience: Optional[int] = None, progress: bool = True) -> Dict[str, List]:
    """Retrain a model that has lowbit hooks attached, following `schedule`.

    train: an iterable of (x, y) batches (e.g. a DataLoader), re-iterated every epoch,
        or a callable(model, optimizer) -> loss that trains one epoch itself.
    epochs: defaults to the schedule's own length (Gradual, Direct); required otherwise.
    optimizer: defaults to Adam(lr) over the model's parameters (the float shadows).
    evaluate: callable(model) -> score, higher is better (e.g. validation accuracy).
        With it, the best final-precision state is restored at the end, and `patience`
        epochs without improvement stop early.
    Returns {'loss': [...], 'score': [...], 'best_epoch': int or None, 'bits': [...]}.
    """
    hooks.targets(model)  # raises a clear error when no hooks are attached
    epochs = schedule.epochs if epochs is None else epochs
    if epochs is None or epochs < 0:
        raise ValueError(f"epochs must be given (>= 0) for {schedule!r}")
    if patience is not None and (evaluate is None or patience < 1):
        raise ValueError("patience needs evaluate= and must be >= 1")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.functional.cross_entropy
    final_start = getattr(schedule, "final_stage_start", 0)
    history: Dict[str, List] = {"loss": [], "score": [], "bits": [], "best_epoch": None}
    schedule.start(model)
    best_score, best_state, stale = -math.inf, None, 0
    bar = None
    if progress and epochs > 0:
        from .progress import progress_bar
        bar = progress_bar(total=epochs, desc=f"retrain {schedule!r}", leave=False)
    try:
        if epochs == 0 and evaluate is not None:
            history["score"].append(float(evaluate(model)))
        for epoch in range(epochs):
            bits = sorted({t.config.bits for t in hooks.targets(model)})
            loss = _train_epoch(model, train, optimizer, loss_fn)
            schedule.step(model)
            history["loss"].append(loss)
            history["bits"].append(bits)
            postfix = {"loss": f"{loss:.4f}", "bits": bits}
            if evaluate is not None:
                score = float(evaluate(model))
                history["score"].append(score)
                postfix["score"] = f"{score:.4f}"
                if epoch >= final_start:
                    if score > best_score:
                        best_score, stale = score, 0
                        best_state = copy.deepcopy(model.state_dict())
                        history["best_epoch"] = epoch
                    else:
                        stale += 1
            if bar is not None:
                bar.set_postfix(postfix)
                bar.update(1)
            if patience is not None and stale >= patience:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def retrained_copy(float_model: nn.Module, config: QuantConfig, schedule: Schedule, train: TrainData,
                   epochs: Optional[int] = None, lr: float = 1e-3,
                   evaluate: Optional[Callable[[nn.Module], float]] = None, seed: Optional[int] = None,
                   progress: bool = True) -> Tuple[nn.Module, Dict[str, List]]:
    """A quantized, retrained copy of `float_model`, which is left unchanged: deep-copy it,
    `attach(copy, config)`, `retrain` it with `schedule` (train, epochs, lr, evaluate and
    progress as there), `freeze` it. seed: `torch.manual_seed(seed)` first, so dropout and
    the like repeat (None leaves torch's generator alone).
    Returns (the frozen copy in eval mode, retrain's history)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = copy.deepcopy(float_model)
    hooks.attach(model, config)
    history = retrain(model, train, schedule, epochs=epochs, lr=lr, evaluate=evaluate, progress=progress)
    hooks.freeze(model)
    return model.eval(), history
