"""lowbit.retrain: a ready-made retraining loop around the hooks and a schedule, and
`retrained_copy`, the whole recipe from a float model to a frozen low-bit copy."""
import copy
import math
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
from torch import nn

from . import hooks
from .config import QuantConfig
from .devices import DeviceLike, check_device, module_device, move_optimizer_state
from .schedules import Schedule

TrainData = Union[Iterable, Callable[[nn.Module, torch.optim.Optimizer], float]]


def _to(batch, device: torch.device):
    """A batch's tensors (also inside tuples / lists) on device; anything else as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def _train_epoch(model, data, optimizer, loss_fn, device: Optional[torch.device] = None) -> float:
    if callable(data):
        return float(data(model, optimizer))
    model.train()
    total, count = 0.0, 0
    for x, y in data:
        if device is not None:
            x, y = _to(x, device), _to(y, device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total = total + loss.detach().double() * len(y)   # one host sync per epoch, not per batch
        count += len(y)
    if count == 0:
        raise ValueError("the training data yielded no batch")
    if total.device.type == "meta":   # shapes only: there is no loss value to report
        return math.nan
    return float(total) / count


def retrain(model: nn.Module, train: TrainData, schedule: Schedule,
            epochs: Optional[int] = None, optimizer: Optional[torch.optim.Optimizer] = None,
            lr: float = 1e-3, loss_fn: Optional[Callable] = None,
            evaluate: Optional[Callable[[nn.Module], float]] = None,
            patience: Optional[int] = None, progress: bool = True,
            device: DeviceLike = None) -> Dict[str, List]:
    """Retrain a model that has lowbit hooks attached, following `schedule`.

    train: an iterable of (x, y) batches (e.g. a DataLoader), re-iterated every epoch,
        or a callable(model, optimizer) -> loss that trains one epoch itself.
    epochs: defaults to the schedule's own length (Gradual, Direct); required otherwise.
    optimizer: defaults to Adam(lr) over the model's parameters (the float shadows).
    evaluate: callable(model) -> score, higher is better (e.g. validation accuracy).
        With it, the best final-precision state is restored at the end, and `patience`
        epochs without improvement stop early.
    device: "cpu", "cuda", "cuda:N"; None trains where the model is ("meta" only for a
        model already there: shape-only checks, the losses are NaN). The model (its float
        shadows and quantizer buffers) and a given optimizer's state move there for the
        training, and every (x, y) batch is moved there; a
        callable `train` gets the model on the device and moves its own batches. The
        quantizers run there: the native kernels on CPU, the registered pure-PyTorch path
        elsewhere. `evaluate` is called with the model on the device. Afterwards the model
        (and the optimizer's state) go back to the device they came from.
        An unavailable device is a one-line error before anything moves.
    Returns {'loss': [...], 'score': [...], 'best_epoch': int or None, 'bits': [...]}.
    """
    hooks.targets(model)  # raises a clear error when no hooks are attached
    target = None if device is None else check_device(device)
    epochs = schedule.epochs if epochs is None else epochs
    if epochs is None or epochs < 0:
        raise ValueError(f"epochs must be given (>= 0) for {schedule!r}")
    if patience is not None and (evaluate is None or patience < 1):
        raise ValueError("patience needs evaluate= and must be >= 1")
    home = module_device(model)
    if target is not None and target.type == "meta" and home.type != "meta":
        raise ValueError("device='meta' holds no data, so the model could not come back from it: "
                         "for shape-only checks move the model there yourself (model.to('meta'))")
    if target is not None and target != home:
        model.to(target)
        move_optimizer_state(optimizer, target)
    try:
        optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
        return _retrain(model, train, schedule, epochs, optimizer, loss_fn, evaluate, patience, progress,
                        target)
    finally:
        if target is not None and target != home:
            model.to(home)
            move_optimizer_state(optimizer, home)
            _move_step_history(model, home)


def _move_step_history(model: nn.Module, device: torch.device) -> None:
    """The attach state's step history (plain tensors, which Module.to does not move)."""
    state = getattr(model, hooks._STATE_ATTR, None)
    for steps in (state.history.values() if state is not None else ()):
        steps[:] = [t.to(device) for t in steps]


def _retrain(model, train, schedule, epochs, optimizer, loss_fn, evaluate, patience, progress,
             device) -> Dict[str, List]:
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
            loss = _train_epoch(model, train, optimizer, loss_fn, device)
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
                   progress: bool = True, device: DeviceLike = None) -> Tuple[nn.Module, Dict[str, List]]:
    """A quantized, retrained copy of `float_model`, which is left unchanged: deep-copy it,
    `attach(copy, config)`, `retrain` it with `schedule` (train, epochs, lr, evaluate and
    progress as there), `freeze` it. seed: `torch.manual_seed(seed)` first, so dropout and
    the like repeat (None leaves torch's generator alone).
    device: where the retraining runs (see `retrain`); the copy is attached where
    `float_model` is, trained on the device, then frozen and returned on `float_model`'s
    device (CPU for a CPU model, so it can be saved and converted at once).
    Returns (the frozen copy in eval mode, retrain's history)."""
    target = None if device is None else check_device(device)
    if seed is not None:
        torch.manual_seed(seed)   # seeds CUDA's generators too
    model = copy.deepcopy(float_model)
    hooks.attach(model, config)
    # retrain brings the model back to float_model's device; freeze there, so the recorded
    # quantizer parameters (plain attributes, which Module.to does not move) are there too
    history = retrain(model, train, schedule, epochs=epochs, lr=lr, evaluate=evaluate, progress=progress,
                      device=target)
    hooks.freeze(model)
    return model.eval(), history
