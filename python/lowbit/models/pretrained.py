"""Shipped models trained once on Fashion-MNIST and cached on disk.

PTQ, VBQ search, inference conversion and `lowbit study` all start from a trained float
model; `pretrained("lenet5")` trains it the first time (a minute or two on 2 cores) and
loads it from the cache afterwards. Inputs are standardized images:
`lowbit.data.load_fashion_mnist(split, normalize=True)`.
"""
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.fashion_mnist import load_fashion_mnist
from ..files import write_bytes_atomically
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
    from tqdm.auto import tqdm
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(epochs), desc=f"training {type(model).__name__}", disable=not progress):
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    return model


def _write_atomically(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomically(path, buf.getvalue())


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
              "lr": _LR[key], "model": model_kwargs}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir(cache) / f"{key}-fmnist-{digest}.pt"

    torch.manual_seed(seed)
    model = MODELS[key](**model_kwargs)
    if path.exists():
        saved = torch.load(path, map_location="cpu")
        model.load_state_dict(saved["state_dict"])
        acc = saved["test_accuracy"]
    else:
        x, y = load_fashion_mnist("train", limit=train_size, normalize=True)
        train_classifier(model, x, y, epochs, _LR[key], seed=seed, progress=progress)
        xt, yt = load_fashion_mnist("test", normalize=True)
        acc = accuracy(model, xt, yt)
        _write_atomically({"recipe": recipe, "state_dict": model.state_dict(),
                           "test_accuracy": acc}, path)
    model.eval()
    model.lowbit_test_accuracy = acc
    return model
