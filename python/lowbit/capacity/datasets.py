"""Random binary memorization sets of papers 000/001: N distinct random bit vectors, each
with a label drawn uniformly from {0, 1}. Nothing to generalize to: what a network gets
right on them is what it stored.

Numpy's PCG64 generator does the drawing, so a seed gives the same set on every machine
and torch version.
"""
from typing import Tuple

import numpy as np
import torch

from ..models._checks import positive_int

Dataset = Tuple[torch.Tensor, torch.Tensor]  # (inputs float32 in {0, 1}, labels int64)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


def distinct_bits(n: int, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct rows of n_bits random bits (uint8 [n, n_bits]), uniform over such sets.

    Small spaces are sampled without replacement from all 2^n_bits codes; large ones are
    drawn at random and duplicates redrawn (rare once 2^n_bits >> n).
    """
    if n_bits < 63 and n > 2 ** n_bits:
        raise ValueError(f"N={n} is larger than the 2^{n_bits} = {2 ** n_bits} distinct inputs "
                         f"{n_bits} input bits allow; use N <= {2 ** n_bits} or more input bits")
    if n_bits <= 24 and 2 ** n_bits <= 16 * n:
        codes = rng.choice(2 ** n_bits, size=n, replace=False)
        shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)
        return ((codes[:, None] >> shifts) & 1).astype(np.uint8)
    rows = rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)
    while True:
        _, first = np.unique(np.packbits(rows, axis=1), axis=0, return_index=True)
        if len(first) == n:
            return rows
        dup = np.setdiff1d(np.arange(n), first)
        rows[dup] = rng.integers(0, 2, size=(len(dup), n_bits), dtype=np.uint8)


def _labels(n: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, 2, size=n).astype(np.int64))


def fcdnn_dataset(n: int, n_in: int, seed: int = 0) -> Dataset:
    """X in {0,1}^(N x n_in), Y in {0,1}^N: the FCDNN task (paper 001, section 4.1, where
    n_in equals the hidden width). N may not exceed 2^n_in (the inputs must be distinct)."""
    positive_int("n", n)
    positive_int("n_in", n_in)
    rng = np.random.default_rng(_check_seed(seed))
    x = torch.from_numpy(distinct_bits(n, n_in, rng).astype(np.float32))
    return x, _labels(n, rng)


def cnn_dataset(n: int, size: int = 32, seed: int = 0) -> Dataset:
    """X in {0,1}^(N x 1 x size x size) made by reshaping concatenated random bits (paper
    001, section 3.1: 32 x 32 x 1), Y in {0,1}^N."""
    positive_int("n", n)
    positive_int("size", size)
    rng = np.random.default_rng(_check_seed(seed))
    bits = distinct_bits(n, size * size, rng).astype(np.float32)
    return torch.from_numpy(bits).reshape(n, 1, size, size), _labels(n, rng)


def rnn_dataset(n: int, n_seq: int = 5, n_in: int = 32, seed: int = 0) -> Dataset:
    """X in {0,1}^(N x n_seq x n_in) (batch first), one label per sequence, Y in {0,1}^N:
    the LSTM task (paper 001, section 4.3: 5 steps of 32 bits). Sequences are distinct as a
    whole (N <= 2^(n_seq * n_in))."""
    positive_int("n", n)
    positive_int("n_seq", n_seq)
    positive_int("n_in", n_in)
    rng = np.random.default_rng(_check_seed(seed))
    bits = distinct_bits(n, n_seq * n_in, rng).astype(np.float32)
    return torch.from_numpy(bits).reshape(n, n_seq, n_in), _labels(n, rng)
