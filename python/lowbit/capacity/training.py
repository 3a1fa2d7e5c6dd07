"""Training to convergence on a memorization set (paper 001, section 4.1): SGD with
momentum, the learning rate multiplied by `decay` whenever the training loss stops
improving, and a stop once the training accuracy is 1 or the rate has been cut
`max_decays` times (the accuracy has converged).

The accuracy reported is the best one seen over the epochs, the paper's "best accuracy
obtained", and the model is left in that state; the last epoch's accuracy is kept beside
it (`TrainResult.last_accuracy`), as is why training ended (`stop`: 'memorized',
'plateau' or 'max_epochs', the last meaning the epoch cap cut it off).

device= ("cpu", "cuda", "cuda:N"): the model and the set move there for the training; the
shuffles come from a CPU generator, so the batches are the same on every device."""
import copy
import math
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import DeviceLike, check_device, module_device
from ..models._checks import positive_int
from ..optional import tqdm

# Paper 001's tuning ranges (section 4.1): learning rate on a log scale, decay factor and
# momentum on linear scales. Batch size is fixed by the caller.
PAPER_SPACE = {"lr": ("log", 0.001, 0.05), "momentum": ("linear", 0.6, 0.99),
               "decay": ("linear", 0.1, 0.5)}
DEFAULT_HPARAMS = {"lr": 0.01, "momentum": 0.9, "decay": 0.3, "batch_size": 64}


STOPS = ("memorized", "plateau", "max_epochs")


@dataclass
class TrainResult:
    accuracy: float          # best training accuracy over the evaluated epochs, eval mode
    epochs: int              # epochs run
    loss: float              # mean training loss of the last epoch
    last_accuracy: float = math.nan   # training accuracy after the last epoch
    best_epoch: int = 0      # the epoch `accuracy` was measured after (0: before training)
    stop: str = "max_epochs"  # why training ended, one of STOPS
    history: List[Tuple[int, float]] = field(default_factory=list)  # (epoch, accuracy) per evaluation

    @property
    def hit_cap(self) -> bool:
        """True when the epoch cap ended the training (neither memorized nor converged):
        the accuracy is then a lower bound that a larger budget may raise."""
        return self.stop == "max_epochs"


def memorization_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          batch_size: int = 256) -> float:
    """Fraction of the set the model labels correctly (eval mode, mode restored), computed
    where the model is (the set is moved there). The batch is small on purpose: on one CPU
    thread a CNN evaluates 32x32 inputs about 9x faster in batches of 256 than of 4096."""
    was_training = model.training
    model.eval()
    here = module_device(model)
    x, y = x.to(here), y.to(here)
    with torch.no_grad():
        correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, len(y), batch_size))
    model.train(was_training)
    return correct / len(y)


class TrainingDiverged(FloatingPointError):
    """A training step left a weight NaN or infinite (the learning rate is too high for
    this model at this precision)."""


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def epoch_fn(x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
             seed: int = 0, device: DeviceLike = None,
             check_finite: bool = False) -> Callable[[nn.Module, torch.optim.Optimizer], float]:
    """One seeded, shuffled epoch over (x, y): callable(model, optimizer) -> mean loss, the
    shape `lowbit.retrain` takes. device: where (x, y) live during the epochs (moved once;
    the model must be there too); the shuffle is drawn on the CPU either way.
    check_finite: raise TrainingDiverged as soon as a step leaves a weight NaN or infinite
    (a check of every weight after every step; the quantizer's hooks would otherwise fail
    on the next forward with a less telling error)."""
    positive_int("batch_size", batch_size)
    g = torch.Generator().manual_seed(seed)
    if device is not None:
        dev = check_device(device)
        x, y = x.to(dev), y.to(dev)

    def run(model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        model.train()
        total = 0.0
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size].to(x.device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            if check_finite and not _all_finite(model):
                raise TrainingDiverged(f"step {i // batch_size + 1} of the epoch left a weight NaN or "
                                       f"infinite (its loss was {float(loss):.4g})")
            total += float(loss) * len(idx)
        return total / len(y)
    return run


def _check_hparams(lr, momentum, decay) -> None:
    if not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if not (isinstance(decay, (int, float)) and 0 < decay < 1):
        raise ValueError(f"decay must be in (0, 1), got {decay!r}")


def train_memorization(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float = 0.01,
                       momentum: float = 0.9, decay: float = 0.3, batch_size: int = 64,
                       max_epochs: int = 300, plateau: int = 20, max_decays: int = 3,
                       seed: int = 0, progress: bool = False, device: DeviceLike = None,
                       stop_on_plateau: bool = True, eval_every: int = 1,
                       keep_best: bool = True) -> TrainResult:
    """Train `model` on (x, y) until the training accuracy converges; returns the best
    accuracy seen (evaluated every `eval_every` epochs and after the last one).

    device: where to train (None: where the model is); the model moves there and stays
    (it is the caller's to move back), the result is plain numbers.

    plateau: epochs without a 0.1 % drop of the training loss before the rate is cut.
    max_decays: cuts after which the next plateau stops training (the accuracy has
    converged). stop_on_plateau=False keeps training at the lowest rate instead, until
    everything is memorized or max_epochs: what a larger budget would have given.
    keep_best: leave the model in its best-accuracy state (else in its last state).
    """
    _check_hparams(lr, momentum, decay)
    positive_int("max_epochs", max_epochs)
    positive_int("plateau", plateau)
    positive_int("eval_every", eval_every)
    if isinstance(max_decays, bool) or not isinstance(max_decays, int) or max_decays < 0:
        raise ValueError(f"max_decays must be an integer >= 0, got {max_decays!r}")
    for name, flag in (("stop_on_plateau", stop_on_plateau), ("keep_best", keep_best)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as inputs (> 0), got {len(x)} and {len(y)}")
    if device is not None:
        model.to(check_device(device))
    here = module_device(model)
    x, y = x.to(here), y.to(here)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    run = epoch_fn(x, y, batch_size, seed)
    best_loss, stale, cuts, loss, epoch, stop = math.inf, 0, 0, math.nan, 0, "max_epochs"
    acc = memorization_accuracy(model, x, y)
    best_acc, best_epoch, history = acc, 0, [(0, acc)]
    best_state = copy.deepcopy(model.state_dict()) if keep_best else None
    bar = None
    if progress:
        bar = tqdm(total=max_epochs, desc=f"memorizing N={len(y)}", leave=False)
    try:
        for epoch in range(1, max_epochs + 1):
            loss = run(model, opt)
            # A loss this low may mean everything is stored: look, whatever eval_every says.
            if epoch % eval_every == 0 or epoch == max_epochs or loss < 1e-3:
                acc = memorization_accuracy(model, x, y)
                history.append((epoch, acc))
                if acc > best_acc:
                    best_acc, best_epoch = acc, epoch
                    if keep_best:
                        best_state = copy.deepcopy(model.state_dict())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", best=f"{best_acc:.4f}",
                                lr=f"{opt.param_groups[0]['lr']:.2g}", refresh=False)
            if best_acc == 1.0:
                stop = "memorized"  # everything stored; more epochs cannot raise the accuracy
                break
            if loss < best_loss * (1 - 1e-3):
                best_loss, stale = loss, 0
                continue
            stale += 1
            if stale >= plateau:
                stale = 0
                if cuts >= max_decays:
                    if stop_on_plateau:
                        stop = "plateau"
                        break
                    continue  # at the lowest rate: keep going until memorized or max_epochs
                cuts += 1
                for group in opt.param_groups:
                    group["lr"] *= decay
    finally:
        if bar is not None:
            bar.close()
    last = history[-1][1] if history[-1][0] == epoch else memorization_accuracy(model, x, y)
    if keep_best and best_epoch != epoch:
        model.load_state_dict(best_state)
    return TrainResult(best_acc, epoch, loss, last, best_epoch, stop, history)
