"""Training units of repro_002 (paper 002's protocol), each a JSON job that one dask worker
runs on its own: `run_job(job) -> dict`.

    {"kind": "float",   "net": {...}, "plan": {...}, "seed": 0}
    {"kind": "retrain", "net": {...}, "plan": {...}, "seed": 0, "method": "Adaptive", "bits": 2}
    {"kind": "gradual", "net": {...}, "plan": {...}, "seed": 0, "adaptive": false, "bits": [6, 5, 4, 3, 2]}

The protocol (section 3 of the paper):
- `converge`: SGD with Nesterov momentum (Adam for the LSTM), evaluated on the validation
  set after every epoch; the learning rate halves after `patience` evaluations without
  improvement, never below `lr_floor`; training stops after `patience` more evaluations
  without improvement at the floor (or at `max_epochs`, reported as 'cap'). The state with
  the best validation score is kept. Float training starts at `float_lr`, retraining at the
  paper's lower `retrain_lr`; both use the same rule.
- every retraining ends with a fixed-step phase: every step held where it is, training
  goes on at the floor rate under the same rule (at least `patience` epochs, best state
  of the phase kept), so the adaptive schedules are judged at a step they were trained
  at. Both the state before the phase ('selected') and after it ('final') are returned.
- quantized: every weight matrix, output layer included (QuantConfig(quantize_output=True)),
  symmetric 2^b - 1 levels, one L2-optimal step (QStep) per tensor; biases and BatchNorm
  stay float.

The float model of (net, plan, seed) is trained once and cached under the cache directory
(`set_cache_dir`, or REPRO_002_CACHE); retraining units start from a deep copy of it.
"""
import copy
import fcntl
import functools
import hashlib
import itertools
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

import lowbit as lb

# Fashion-MNIST pixel statistics (training set): standardized inputs.
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
SPLIT_SEED = 0  # the train/validation split is the same for every model seed
PROTOCOL = "002-v2"  # part of every job, so results of another protocol are never reused
DEFAULT_CACHE = Path(__file__).resolve().parent / "results" / "cache"
SEARCH_FACTORS = 9   # ref. [4]'s search: 9 geometric factors in [1/2, 2] per layer


@dataclass(frozen=True)
class ImagePlan:
    """Data sizes and the learning-rate rule of an image table (Fashion-MNIST)."""
    n_train: int
    n_val: int              # carved from the training set: the paper's development set
    n_test: Optional[int]   # None: the whole 10k test set
    batch_size: int
    float_lr: float
    retrain_lr: float
    lr_floor: float
    patience: int = 4
    max_epochs: int = 150


@dataclass(frozen=True)
class TextPlan:
    """Sizes and the learning-rate rule of the language-model table (fortunes corpus)."""
    max_chars: int          # train / valid / test = 90 / 5 / 5 % of it
    batch_size: int         # parallel streams
    seq_len: int            # truncated BPTT length
    eval_batch_size: int
    eval_seq_len: int
    embed: int
    layers: int
    float_lr: float
    retrain_lr: float
    lr_floor: float
    patience: int = 4
    max_epochs: int = 150


def plan_from_dict(d: dict):
    return (TextPlan if "max_chars" in d else ImagePlan)(**d)


# ---- data ----------------------------------------------------------------------------------

@dataclass
class ImageData:
    train: tuple
    val: tuple
    test: tuple


@functools.lru_cache(maxsize=4)
def image_data(n_train: int, n_val: int, n_test: Optional[int]) -> ImageData:
    """A fixed random split of the 60k training images into train and validation subsets,
    plus the (first n_test of the) test set; all standardized."""
    x, y = lb.data.load_fashion_mnist("train")
    if n_train + n_val > len(y):
        raise ValueError(f"n_train + n_val = {n_train + n_val} exceeds the {len(y)} training images")
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:n_val], order[n_val:n_val + n_train]
    xt, yt = lb.data.load_fashion_mnist("test", limit=n_test)
    norm = lambda t: (t - FMNIST_MEAN) / FMNIST_STD  # noqa: E731
    return ImageData((norm(x[train_idx]), y[train_idx]), (norm(x[val_idx]), y[val_idx]), (norm(xt), yt))


@functools.lru_cache(maxsize=2)
def text_corpus(max_chars: int) -> lb.data.TextCorpus:
    return lb.data.load_text_corpus(max_chars=max_chars, seed=0)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 10007 + epoch


# ---- experiments ---------------------------------------------------------------------------

def sgd(params, lr: float) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, the paper's optimizer for the FFDNNs and CNNs."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


def adam(params, lr: float) -> torch.optim.Optimizer:
    """The paper used AdaDelta-based SGD for the LSTMs; Adam is the usual stand-in."""
    return torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def error_percent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    was_training = model.training
    model.eval()
    wrong = sum(int((model(x[i:i + batch]).argmax(1) != y[i:i + batch]).sum())
                for i in range(0, len(y), batch))
    model.train(was_training)
    return 100.0 * wrong / len(y)


def net_name(net: dict) -> str:
    kind = net["kind"]
    if kind == "ffdnn":
        return f"ffdnn-w{net['width']}-d{net['depth']}-{'bn' if net['bn'] else 'nobn'}"
    if kind == "vgg":
        return f"vgg-w{net['width']}"
    if kind == "lstm":
        return f"lstm-h{net['hidden']}"
    return kind


class ImageExperiment:
    """A Fashion-MNIST classifier (FFDNN or CNN)."""
    optimizer = staticmethod(sgd)
    clip = None

    def __init__(self, net: dict, plan: ImagePlan):
        self.net, self.plan, self.name = net, plan, net_name(net)
        self.data = image_data(plan.n_train, plan.n_val, plan.n_test)

    def build(self) -> nn.Module:
        kind = self.net["kind"]
        if kind == "ffdnn":
            return lb.models.FFDNN(width=self.net["width"], depth=self.net["depth"],
                                   batch_norm=self.net["bn"])
        if kind == "lenet5":
            return lb.models.LeNet5()
        if kind == "vgg":
            return lb.models.SmallVGG(width=self.net["width"])
        raise ValueError(f"unknown image network {self.net!r}")

    def epoch_fn(self, seed: int) -> Callable[[nn.Module, torch.optim.Optimizer], float]:
        """One epoch per call; epoch k of every run shuffles with the same seed, so all
        methods see the same batches in the same order."""
        x, y = self.data.train
        counter = itertools.count()

        def train_one_epoch(model, optimizer):
            g = torch.Generator().manual_seed(epoch_seed(seed, next(counter)))
            order = torch.randperm(len(y), generator=g)
            model.train()
            total = 0.0
            for i in range(0, len(y), self.plan.batch_size):
                idx = order[i:i + self.plan.batch_size]
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                optimizer.step()
                total += float(loss) * len(idx)
            return total / len(y)
        return train_one_epoch

    def val_score(self, model: nn.Module) -> float:
        return -error_percent(model, *self.data.val)

    def test_metric(self, model: nn.Module) -> float:
        return error_percent(model, *self.data.test)


class TextExperiment:
    """A character-level LSTM language model on the fortunes corpus."""
    optimizer = staticmethod(adam)
    clip = 1.0  # gradient-norm clipping, usual for LSTMs

    def __init__(self, net: dict, plan: TextPlan):
        self.net, self.plan, self.name = net, plan, net_name(net)
        self.corpus = text_corpus(plan.max_chars)

    def build(self) -> nn.Module:
        return lb.models.CharLSTM(self.corpus.vocab_size, embed=self.plan.embed,
                                  hidden=self.net["hidden"], layers=self.plan.layers)

    def epoch_fn(self, seed: int) -> Callable[[nn.Module, torch.optim.Optimizer], float]:
        counter = itertools.count()
        p = self.plan

        def train_one_epoch(model, optimizer):
            model.train()
            state, total, n = None, 0.0, 0
            for x, y in self.corpus.batches("train", p.batch_size, p.seq_len,
                                            seed=epoch_seed(seed, next(counter))):
                logits, state = model(x, state)
                state = tuple(s.detach() for s in state)  # truncated BPTT
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), self.clip)
                optimizer.step()
                total, n = total + float(loss), n + 1
            return total / max(n, 1)
        return train_one_epoch

    def _bpc(self, model: nn.Module, split: str) -> float:
        return lb.data.bits_per_character(model, self.corpus, split, self.plan.eval_batch_size,
                                          self.plan.eval_seq_len)

    def val_score(self, model: nn.Module) -> float:
        return -self._bpc(model, "valid")

    def test_metric(self, model: nn.Module) -> float:
        return self._bpc(model, "test")


def experiment(net: dict, plan) -> object:
    plan = plan_from_dict(plan) if isinstance(plan, dict) else plan
    return (TextExperiment if net["kind"] == "lstm" else ImageExperiment)(net, plan)


# ---- the convergence rule ------------------------------------------------------------------

def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def converge(model: nn.Module, train_one_epoch, optimizer: torch.optim.Optimizer,
             evaluate: Callable[[nn.Module], float], lr: float, floor: float, patience: int,
             max_epochs: int, after_epoch: Optional[Callable[[nn.Module], None]] = None) -> dict:
    """Paper 002's rule: evaluate after every epoch (after `after_epoch`, e.g. a schedule's
    step); halve the learning rate after `patience` evaluations without improvement, not
    below `floor`; stop after `patience` evaluations without improvement at the floor.
    Restores the best-scoring state. Returns epochs run, best epoch, best score, why it
    stopped ('floor' or 'cap') and the learning rate of every epoch."""
    if not 0 < floor <= lr:
        raise ValueError(f"need 0 < lr_floor <= lr, got lr={lr}, lr_floor={floor}")
    set_lr(optimizer, lr)
    best, best_state, best_epoch, stale = -math.inf, None, -1, 0
    lrs, scores, stop = [], [], "cap"
    for epoch in range(max_epochs):
        train_one_epoch(model, optimizer)
        if after_epoch is not None:
            after_epoch(model)
        score = float(evaluate(model))
        lrs.append(lr)
        scores.append(score)
        if score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            continue
        stale += 1
        if stale >= patience:
            if lr <= floor * (1 + 1e-9):
                stop = "floor"
                break
            lr, stale = max(lr / 2, floor), 0
            set_lr(optimizer, lr)
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"epochs": len(lrs), "best_epoch": best_epoch, "best_val": best, "stop": stop,
            "lrs": lrs, "val_curve": scores}


# ---- float models --------------------------------------------------------------------------

_cache_dir: Optional[Path] = None


def set_cache_dir(path) -> None:
    global _cache_dir
    _cache_dir = Path(path)


def cache_dir() -> Path:
    if _cache_dir is not None:
        return _cache_dir
    return Path(os.environ.get("REPRO_002_CACHE", DEFAULT_CACHE))


def float_key(net: dict, plan: dict, seed: int) -> str:
    blob = json.dumps({"v": PROTOCOL, "net": net, "plan": plan, "seed": seed}, sort_keys=True)
    return f"{net_name(net)}_s{seed}_{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


@contextmanager
def _locked(path: Path):
    """An exclusive lock next to `path`, so two workers never train the same float model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"  # model weights are not results to commit
    if not ignore.exists():
        ignore.write_text("*\n")
    with open(path.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def float_model(net: dict, plan: dict, seed: int, log=print):
    """(model, result) of the float model: from the cache, or trained now and cached."""
    exp = experiment(net, plan)
    path = cache_dir() / (float_key(net, plan, seed) + ".pt")
    with _locked(path):
        torch.manual_seed(seed)
        model = exp.build()
        if path.exists():
            # This script's own cache (a state_dict and Python values); torch 1.13's
            # weights_only unpickler cannot read them, hence False.
            saved = torch.load(path, weights_only=False)
            model.load_state_dict(saved["state_dict"])
            return model, saved["result"]
        t0 = time.perf_counter()
        p = exp.plan
        optimizer = exp.optimizer(model.parameters(), p.float_lr)
        conv = converge(model, exp.epoch_fn(seed), optimizer, exp.val_score, p.float_lr,
                        p.lr_floor, p.patience, p.max_epochs)
        result = {"test": exp.test_metric(model), "val": conv["best_val"],
                  "epochs": conv["epochs"], "best_epoch": conv["best_epoch"],
                  "stop": conv["stop"], "seconds": time.perf_counter() - t0}
        tmp = path.with_suffix(".tmp")
        torch.save({"state_dict": model.state_dict(), "result": result}, tmp)
        tmp.replace(path)
        log(f"  float   {exp.name:<18} seed {seed}: test {result['test']:7.3f}, "
            f"{result['epochs']} epochs ({result['stop']}), {result['seconds']:.0f} s")
        return model, result


# ---- quantized runs ------------------------------------------------------------------------

def quant_config(bits: int) -> lb.QuantConfig:
    """One L2-optimal step per weight tensor (the paper's 'weight group'), symmetric
    2^b - 1 levels, every layer quantized including the output layer; biases and
    BatchNorm float."""
    return lb.QuantConfig(bits=bits, scheme="symmetric", granularity="tensor", step="l2",
                          quantize_output=True)


def make_schedule(method: str) -> lb.Schedule:
    if method in ("Direct",):
        return lb.Direct()
    if method in ("Conventional", "Conventional + search"):
        return lb.Conventional()   # the search runs separately, to record its factors
    if method == "Adaptive (epoch)":
        return lb.Adaptive(update="epoch")
    if method == "Adaptive (1 epoch & fix)":
        return lb.Adaptive(update="first", first_epochs=1)
    raise ValueError(f"unknown method {method!r}")


def current_steps(model: nn.Module) -> Dict[str, float]:
    """The step (quantizer p0) each tensor is quantized with now."""
    modules = dict(model.named_modules())
    return {t.name: float(getattr(modules[t.module_name], t.param + "_q0").float().mean())
            for t in lb.targets(model)}


def step_log(model: nn.Module) -> Dict[str, List[float]]:
    """Every recorded step per tensor, from the schedule's start (QStep of the float
    weights) on: one entry per update (lb.step_history; attach's own entry dropped)."""
    return {name: [float(s.float().mean()) for s in steps[1:]]
            for name, steps in lb.step_history(model).items()}


def _retrain(exp, model: nn.Module, schedule: lb.Schedule, seed: int) -> dict:
    """Retrain until converged (the schedule steps after every epoch), then the fixed-step
    phase: every step held where it is, a fresh optimizer at the floor rate, the same rule
    (stop after `patience` epochs without improvement, keep the best of the phase).
    Returns the selected (before the phase) and the final (after it) results."""
    p = exp.plan
    train_one_epoch = exp.epoch_fn(seed)
    torch.manual_seed(seed)  # the same dropout draws for every method
    conv = converge(model, train_one_epoch, exp.optimizer(model.parameters(), p.retrain_lr),
                    exp.val_score, p.retrain_lr, p.lr_floor, p.patience, p.max_epochs,
                    after_epoch=schedule.step)
    selected = {"test_selected": exp.test_metric(model), "val_selected": conv["best_val"],
                "steps_selected": current_steps(model)}
    fixed = converge(model, train_one_epoch, exp.optimizer(model.parameters(), p.lr_floor),
                     exp.val_score, p.lr_floor, p.lr_floor, p.patience, p.max_epochs)
    return {**selected, "test": exp.test_metric(model), "val": fixed["best_val"],
            "epochs": conv["epochs"] + fixed["epochs"], "epochs_fixed": fixed["epochs"],
            "best_epoch": conv["best_epoch"], "stop": conv["stop"],
            "steps_final": current_steps(model)}


def retrain_unit(job: dict, log=print) -> dict:
    net, plan, seed, method, bits = job["net"], job["plan"], job["seed"], job["method"], job["bits"]
    exp = experiment(net, plan)
    float_net, _ = float_model(net, plan, seed, log)
    t0 = time.perf_counter()
    model = copy.deepcopy(float_net)
    lb.attach(model, quant_config(bits))
    schedule = make_schedule(method)
    schedule.start(model)
    result: dict = {}
    if method == "Conventional + search":
        # ref. [4]: each layer's step searched over [D/2, 2D] on the evaluation
        # (validation) set, one layer at a time; then fixed during retraining.
        result["search_factors"] = dict(zip([t.name for t in lb.targets(model)],
                                            lb.search_steps(model, exp.val_score, SEARCH_FACTORS)))
    if method == "Direct":
        result.update({"test": exp.test_metric(model), "val": exp.val_score(model), "epochs": 0,
                       "steps_final": current_steps(model)})
    else:
        result.update(_retrain(exp, model, schedule, seed))
    result["steps"] = step_log(model)
    result["seconds"] = time.perf_counter() - t0
    log(f"  retrain {exp.name:<18} seed {seed} {bits}-bit {method:<24}: test {result['test']:7.3f}"
        f", {result['epochs']} epochs, {result['seconds']:.0f} s")
    return result


def gradual_unit(job: dict, log=print) -> dict:
    """Gradual quantization through job['bits'] (6 -> 5 -> 4 -> 3 -> 2): at each precision
    the current float weights are re-quantized with a fresh QStep, then retrained until
    converged (a fresh optimizer from the retraining rate, the same rule) and given the
    fixed-step phase; adaptive=True also recomputes the step after every epoch within a
    precision (the paper's 'adaptive & gradual'). Returns one result per precision."""
    net, plan, seed, stages, adaptive = job["net"], job["plan"], job["seed"], job["bits"], job["adaptive"]
    exp = experiment(net, plan)
    float_net, _ = float_model(net, plan, seed, log)
    t0 = time.perf_counter()
    model = copy.deepcopy(float_net)
    lb.attach(model, quant_config(stages[0]))
    out = {}
    for i, bits in enumerate(stages):
        if i:
            lb.hooks.set_bits(model, bits)   # re-quantize the current float weights
        schedule = lb.Adaptive(update="epoch") if adaptive else lb.Conventional()
        schedule.start(model)
        out[str(bits)] = _retrain(exp, model, schedule, seed)
    result = {"stages": out, "steps": step_log(model), "seconds": time.perf_counter() - t0}
    method = "Adaptive & Gradual" if adaptive else "Gradual"
    log(f"  gradual {exp.name:<18} seed {seed} {method:<24}: "
        + ", ".join(f"{b}-bit {r['test']:.3f}" for b, r in out.items())
        + f", {result['seconds']:.0f} s")
    return result


def run_job(job: dict) -> dict:
    """One training unit (runs on a dask worker): float, retrain or gradual."""
    from _timing import set_threads
    set_threads(torch.get_num_threads())   # lowbit as torch: the worker's (or --threads) share
    log = functools.partial(print, flush=True)
    if job["kind"] == "float":
        _, result = float_model(job["net"], job["plan"], job["seed"], log)
        return result
    if job["kind"] == "retrain":
        return retrain_unit(job, log)
    if job["kind"] == "gradual":
        return gradual_unit(job, log)
    raise ValueError(f"unknown job kind {job['kind']!r}")


def job(kind: str, net: dict, plan, seed: int, **extra) -> dict:
    plan = asdict(plan) if not isinstance(plan, dict) else plan
    return {"v": PROTOCOL, "kind": kind, "net": net, "plan": plan, "seed": seed, **extra}
