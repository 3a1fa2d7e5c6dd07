"""Training and retraining for repro_002: the data, one `Experiment` per network, and a
`Runner` that trains each float model once per seed (cached on disk) and then runs every
quantization method from a deep copy of that same float model.

An experiment provides:
    build() -> nn.Module                      a fresh float model (call after manual_seed)
    epoch_fn(seed) -> callable(model, opt)    trains one epoch in a fixed, seeded order
    val_score(model) -> float                 higher is better (model selection)
    test_metric(model) -> float               what the table reports (lower is better)
    optimizer(params, lr), key, plan (epochs, learning rates), adaptive_update
"""
import copy
import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import lowbit as lb

# Fashion-MNIST pixel statistics (training set): standardized inputs let plain SGD train
# the FFDNNs and CNNs in a few epochs.
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
SPLIT_SEED = 0  # the train/validation split is the same for every model seed


@dataclass(frozen=True)
class ImagePlan:
    """Sizes and training settings of an image table (Fashion-MNIST)."""
    n_train: int
    n_val: int              # carved from the training set, for model selection
    n_test: Optional[int]   # None: the whole 10k test set (what we report)
    batch_size: int
    float_epochs: int
    retrain_epochs: int
    float_lr: float
    retrain_lr: float       # a few times smaller than float_lr, as in the paper

    @property
    def data_key(self) -> str:
        return f"fmnist-tr{self.n_train}-va{self.n_val}-te{self.n_test or 'all'}"


@dataclass(frozen=True)
class TextPlan:
    """Sizes and training settings of the language-model table (fortunes corpus)."""
    max_chars: int          # train / valid / test = 90 / 5 / 5 % of it
    batch_size: int         # parallel streams
    seq_len: int            # truncated BPTT length
    eval_batch_size: int
    eval_seq_len: int
    embed: int
    layers: int
    float_epochs: int
    retrain_epochs: int
    float_lr: float
    retrain_lr: float

    @property
    def data_key(self) -> str:
        return f"fortunes-{self.max_chars}-b{self.batch_size}x{self.seq_len}"


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


class ImageExperiment:
    """A Fashion-MNIST classifier (FFDNN or CNN)."""
    optimizer = staticmethod(sgd)

    def __init__(self, name: str, build: Callable[[], nn.Module], plan: ImagePlan,
                 adaptive_update: str):
        self.name, self.build, self.plan, self.adaptive_update = name, build, plan, adaptive_update
        self.data = image_data(plan.n_train, plan.n_val, plan.n_test)
        self.key = (f"{name}_{plan.data_key}_b{plan.batch_size}_fe{plan.float_epochs}"
                    f"_flr{plan.float_lr:g}")

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

    def __init__(self, name: str, hidden: int, plan: TextPlan, adaptive_update: str):
        self.name, self.plan, self.adaptive_update = name, plan, adaptive_update
        self.corpus = text_corpus(plan.max_chars)
        self.hidden = hidden
        self.key = (f"{name}_{plan.data_key}_e{plan.embed}_l{plan.layers}_fe{plan.float_epochs}"
                    f"_flr{plan.float_lr:g}")

    def build(self) -> nn.Module:
        return lb.models.CharLSTM(self.corpus.vocab_size, embed=self.plan.embed,
                                  hidden=self.hidden, layers=self.plan.layers)

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


# ---- runs ----------------------------------------------------------------------------------

@dataclass
class RunResult:
    metric: float                       # test error % or test BPC
    val: float                          # best validation score (higher is better)
    seconds: float
    steps: Dict[str, List[float]] = field(default_factory=dict)  # layer -> step per update


def make_schedule(method: str, adaptive_update: str) -> lb.Schedule:
    if method == "Direct":
        return lb.Direct()
    if method == "Conventional":
        return lb.Conventional()
    if method == "Adaptive":
        update = adaptive_update
    elif method == "Adaptive (epoch)":
        update = "epoch"
    elif method == "Adaptive (1 epoch & fix)":
        update = "first"
    else:
        raise ValueError(f"unknown method {method!r}")
    return lb.Adaptive(update=update, first_epochs=1)


def quant_config(bits: int) -> lb.QuantConfig:
    # One step per layer ("weight group" of the paper), L2-optimal QStep; biases and the
    # output layer stay float (lowbit's default).
    return lb.QuantConfig(bits=bits, scheme="symmetric", granularity="tensor", step="l2")


def step_values(model: nn.Module) -> Dict[str, List[float]]:
    return {name: [float(s.float().mean()) for s in steps]
            for name, steps in lb.step_history(model).items()}


def current_bits(model: nn.Module) -> int:
    return lb.targets(model)[0].config.bits


class Runner:
    """Trains float models once per (experiment, seed), on disk under cache_dir, and
    memoizes quantized runs in memory so later tables reuse earlier runs."""

    def __init__(self, cache_dir: Path, progress: bool = False, log: Callable[[str], None] = print):
        self.cache_dir = Path(cache_dir)
        self.progress, self.log = progress, log
        self._floats: Dict[tuple, tuple] = {}
        self._runs: Dict[tuple, object] = {}
        self.timings: List[tuple] = []   # (kind, seconds) of every run actually executed

    # -- float models --
    def _cache_path(self, exp, seed: int) -> Path:
        return self.cache_dir / f"{exp.key}_s{seed}.pt"

    def float_model(self, exp, seed: int):
        """(model, RunResult) of the float model: from memory, disk, or trained now."""
        key = (exp.key, seed)
        if key not in self._floats:
            path = self._cache_path(exp, seed)
            torch.manual_seed(seed)
            model = exp.build()
            if path.exists():
                saved = torch.load(path)
                model.load_state_dict(saved["state_dict"])
                result = RunResult(saved["metric"], saved["val"], saved["seconds"])
                self.log(f"  {exp.name} float seed {seed}: cached ({path.name}), "
                         f"test {result.metric:.3f}")
            else:
                result = self._train_float(exp, model, seed)
                self._save(path, model, result)
            self._floats[key] = (model, result)
        return self._floats[key]

    def _train_float(self, exp, model: nn.Module, seed: int) -> RunResult:
        """Float training; lr halves when validation does not improve, best state kept."""
        t0 = time.perf_counter()
        p = exp.plan
        optimizer = exp.optimizer(model.parameters(), p.float_lr)
        train_one_epoch = exp.epoch_fn(seed)
        best, best_state = -math.inf, None
        for _ in self._epochs(p.float_epochs, f"{exp.name} float"):
            train_one_epoch(model, optimizer)
            score = exp.val_score(model)
            if score > best:
                best, best_state = score, copy.deepcopy(model.state_dict())
            else:
                for group in optimizer.param_groups:
                    group["lr"] /= 2
        model.load_state_dict(best_state)
        result = RunResult(exp.test_metric(model), best, time.perf_counter() - t0)
        self._finished("float", exp, "Float", None, seed, result)
        return result

    def _save(self, path: Path, model: nn.Module, result: RunResult) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"  # model weights are not results to commit
        if not ignore.exists():
            ignore.write_text("*\n")
        tmp = path.with_suffix(".tmp")
        torch.save({"state_dict": model.state_dict(), "metric": result.metric,
                    "val": result.val, "seconds": result.seconds}, tmp)
        tmp.replace(path)

    def _epochs(self, n: int, desc: str):
        if not self.progress:
            return range(n)
        from tqdm.auto import tqdm
        return tqdm(range(n), desc=desc, leave=False)

    def _finished(self, kind: Optional[str], exp, method: str, bits, seed: int,
                  r: RunResult) -> None:
        """Print the run's line; kind=None: a gradual stage, timed with its whole run."""
        if kind is not None:
            self.timings.append((f"{kind} {exp.name}", r.seconds))
        where = "float" if bits is None else f"{bits}-bit"
        timing = f"{r.seconds:6.1f} s" if kind is not None else "stage"
        self.log(f"  {exp.name:<16} {where:>6} {method:<24} seed {seed}: "
                 f"test {r.metric:7.3f}  ({timing})")

    # -- quantized runs --
    def quantized(self, exp, seed: int, method: str, bits: int) -> RunResult:
        """Direct / Conventional / Adaptive from a copy of the float model; retraining
        keeps the state with the best validation score (lb.retrain's evaluate)."""
        key = (exp.key, exp.plan.retrain_epochs, exp.plan.retrain_lr, seed, method, bits)
        if key in self._runs:
            return self._runs[key]
        float_model, _ = self.float_model(exp, seed)
        t0 = time.perf_counter()
        model = copy.deepcopy(float_model)
        lb.attach(model, quant_config(bits))
        schedule = make_schedule(method, exp.adaptive_update)
        epochs = 0 if method == "Direct" else exp.plan.retrain_epochs
        torch.manual_seed(seed)  # the same dropout draws for every method
        history = lb.retrain(model, exp.epoch_fn(seed), schedule, epochs=epochs,
                             optimizer=exp.optimizer(model.parameters(), exp.plan.retrain_lr),
                             evaluate=exp.val_score, progress=self.progress)
        val = max(history["score"]) if history["score"] else math.nan
        result = RunResult(exp.test_metric(model), val, time.perf_counter() - t0, step_values(model))
        self._finished("direct" if epochs == 0 else "retrain", exp, method, bits, seed, result)
        self._runs[key] = result
        return result

    def gradual(self, exp, seed: int, bits: Sequence[int], adaptive: bool) -> Dict[int, RunResult]:
        """Gradual (optionally adaptive) quantization through `bits`, retrain_epochs at each
        precision. Reports, per precision, the test metric at that stage's best validation
        epoch. Each stage's last epoch is evaluated before the schedule lowers the precision,
        so every stage is judged at the precision it was trained for."""
        method = "Adaptive & Gradual" if adaptive else "Gradual"
        key = (exp.key, exp.plan.retrain_epochs, exp.plan.retrain_lr, seed, method, tuple(bits))
        if key in self._runs:
            return self._runs[key]
        float_model, _ = self.float_model(exp, seed)
        t0 = time.perf_counter()
        model = copy.deepcopy(float_model)
        lb.attach(model, quant_config(bits[0]))
        per_stage = exp.plan.retrain_epochs
        schedule = lb.Gradual(list(bits), epochs_per_stage=per_stage, adaptive=adaptive)
        schedule.start(model)
        optimizer = exp.optimizer(model.parameters(), exp.plan.retrain_lr)
        train_one_epoch = exp.epoch_fn(seed)
        best: Dict[int, tuple] = {}  # bits -> (best validation score, test metric there)

        def record():
            b, score = current_bits(model), exp.val_score(model)
            if b not in best or score > best[b][0]:
                best[b] = (score, exp.test_metric(model))

        torch.manual_seed(seed)
        for epoch in self._epochs(schedule.epochs, method):
            train_one_epoch(model, optimizer)
            if (epoch + 1) % per_stage == 0:
                record()
                schedule.step(model)
            else:
                schedule.step(model)
                record()
        seconds = time.perf_counter() - t0
        results = {b: RunResult(test, val, seconds, step_values(model)) for b, (val, test) in best.items()}
        for b in bits:  # one timed line for the whole run, after its stages
            self._finished("gradual" if b == bits[-1] else None, exp, method, b, seed, results[b])
        self._runs[key] = results
        return results
