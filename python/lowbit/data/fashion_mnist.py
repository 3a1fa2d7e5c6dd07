"""Fashion-MNIST from Debian's dataset-fashion-mnist package (idx files, gzipped)."""
import gzip
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "LOWBIT_FASHION_MNIST"
# Pixel statistics of the training set: the shipped pretrained models expect inputs
# standardized with these (load_fashion_mnist(..., normalize=True)).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / (name + ".gz")):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}(.gz) not found in {root}. Install it with "
        f"`sudo apt-get install dataset-fashion-mnist`, or point {ENV_VAR} (or root=) at a "
        "folder holding the idx files.")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, found {data.size} values")
    return data.reshape(dims)


def load_fashion_mnist(split: str = "train", root: Optional[str] = None,
                       limit: Optional[int] = None,
                       normalize: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 [N, 1, 28, 28] in [0, 1] and labels as int64 [N].

    root defaults to $LOWBIT_FASHION_MNIST, then /usr/share/datasets/fashion-mnist.
    limit keeps the first `limit` examples. normalize=True standardizes the pixels with the
    training-set mean and std (what `lowbit.models.pretrained` models expect).
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = Path(root or os.environ.get(ENV_VAR) or DEFAULT_ROOT)
    images = _read_idx(_find(base, _FILES[split][0]))
    labels = _read_idx(_find(base, _FILES[split][1]))
    if len(images) != len(labels):
        raise ValueError(f"{base}: {len(images)} images but {len(labels)} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if normalize:
        x = (x - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    return x, torch.from_numpy(labels.astype(np.int64))
