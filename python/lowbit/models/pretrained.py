"""Shipped models trained once on Fashion-MNIST and cached on disk.

PTQ, VBQ search, inference conversion and `lowbit study` all start from a trained float
model; `pretrained("lenet5")` trains it the first time (a minute or two on 2 cores) and
loads it from the cache afterwards. Inputs are standardized images:
`lowbit.data.load_fashion_mnist(split, normalize=True)`.

A cache file holds the state_dict, not a pickled module, and loads with
`torch.load(path, weights_only=True)`; a file that is not one raises a ValueError naming it.
"""
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data.fashion_mnist import load_fashion_mnist
from ..files import write_bytes_atomically
from ..progress import progress_bar
from . import MODELS

CACHE_ENV = "LOWBIT_CACHE"
# Epochs that bring each model near its plateau with SGD + Nesterov at these rates.
_DEFAULT_EPOCHS = {"lenet5": 8, "ffdnn": 8, "vgg": 4}
_LR = {"lenet5": 0.05, "ffdnn": 0.05, "vgg": 0.02}


def cache_dir(path: Optional[str] = None) -> Path:
    """Where trained models are kept: `path`, else $LOWBIT_CACHE, else ~/.cache/lowbit."""
    base = path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lowbit"
    return Path(base)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in percent, in eval mode (the model's mode is restored)."""
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as inputs (> 0); got {len(x)} inputs, {len(y)} labels")
    was_training = model.training
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(y), batch_size))
    model.train(was_training)
    return 100.0 * correct / len(y)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
                     batch_size: int = 128, seed: int = 0, progress: bool = True) -> nn.Module:
    """SGD with Nesterov momentum and a cosine learning-rate decay; seeded batch order."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in progress_bar(range(epochs), desc=f"training {type(model).__name__}", disable=not progress):
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    return model


# What a cache file holds. Only tensors, strings and dicts, so that it loads with
# torch.load(weights_only=True) on every torch lowbit supports (torch 1.13's safe
# unpickler reads no Python floats: the recipe and accuracy travel as a JSON string).
_FORMAT = "lowbit.pretrained/2"


def _write_atomically(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomically(path, buf.getvalue())


def _load_cached(path: Path) -> Tuple[dict, float]:
    """(state_dict, test accuracy) of a cache file written by `pretrained`."""
    def not_one(why: str) -> ValueError:
        return ValueError(f"{path} is not a lowbit pretrained-model cache file: {why}. It should hold "
                          f"a dict with format {_FORMAT!r}, a state_dict of tensors and a JSON 'meta' "
                          f"with the test accuracy. Delete it to train the model again, or pass "
                          f"another cache= / ${CACHE_ENV}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickling error differs across torch versions; chained below
        raise not_one(f"torch.load(weights_only=True) cannot read it ({type(err).__name__})") from err
    if not isinstance(saved, dict):
        raise not_one(f"it holds a {type(saved).__name__}")
    if saved.get("format") != _FORMAT:
        raise not_one(f"its format is {saved.get('format')!r}")
    state = saved.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise not_one("its 'state_dict' is not a dict of tensors")
    try:
        acc = float(json.loads(saved["meta"])["test_accuracy"])
    except (KeyError, TypeError, ValueError) as err:
        raise not_one(f"its 'meta' has no test_accuracy ({type(err).__name__}: {err})") from err
    return state, acc


def pretrained(name: str = "lenet5", *, epochs: Optional[int] = None, seed: int = 0,
               train_size: Optional[int] = None, cache: Optional[str] = None,
               progress: bool = True, **model_kwargs) -> nn.Module:
    """A float model of `name` ("lenet5", "ffdnn", "vgg") trained on Fashion-MNIST.

    Trained on the first `train_size` training images (all 60k by default) the first time,
    then loaded from the cache folder (see `cache_dir`). The returned model is in eval mode;
    its test accuracy is in `model.lowbit_test_accuracy`.

        model = lb.models.pretrained("lenet5")
        x, y = lb.data.load_fashion_mnist("test", normalize=True)
        lb.models.accuracy(model, x, y)     # about 90 %
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _DEFAULT_EPOCHS:
        raise ValueError(f"no pretrained recipe for {name!r}; accepted: {', '.join(_DEFAULT_EPOCHS)}")
    epochs = _DEFAULT_EPOCHS[key] if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    recipe = {"name": key, "epochs": epochs, "seed": seed, "train_size": train_size,
              "lr": _LR[key], "model": model_kwargs, "format": _FORMAT}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir(cache) / f"{key}-fmnist-{digest}.pt"

    torch.manual_seed(seed)
    model = MODELS[key](**model_kwargs)
    if path.exists():
        state, acc = _load_cached(path)
        model.load_state_dict(state)
    else:
        x, y = load_fashion_mnist("train", limit=train_size, normalize=True)
        train_classifier(model, x, y, epochs, _LR[key], seed=seed, progress=progress)
        xt, yt = load_fashion_mnist("test", normalize=True)
        acc = accuracy(model, xt, yt)
        _write_atomically({"format": _FORMAT, "state_dict": model.state_dict(),
                           "meta": json.dumps({"recipe": recipe, "test_accuracy": acc})}, path)
    model.eval()
    model.lowbit_test_accuracy = acc
    return model
