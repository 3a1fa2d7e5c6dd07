"""Random memorization sets: distinct inputs, uniform labels, reproducible from the seed,
and a clear error when N exceeds the 2^n_in distinct inputs."""
import pytest
import torch

import lowbit.capacity as cap


def _distinct(x):
    return len(torch.unique(x.reshape(len(x), -1), dim=0)) == len(x)


@pytest.mark.parametrize("make", [lambda s: cap.fcdnn_dataset(3000, 12, seed=s),   # 73 % of 2^12
                                  lambda s: cap.fcdnn_dataset(2000, 40, seed=s),
                                  lambda s: cap.cnn_dataset(300, 32, seed=s),
                                  lambda s: cap.rnn_dataset(500, 5, 3, seed=s)])
def test_sets_are_distinct_binary_and_reproducible(make):
    x, y = make(7)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(x.unique().tolist()) <= {0.0, 1.0} and set(y.unique().tolist()) == {0, 1}
    assert _distinct(x)
    x2, y2 = make(7)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = make(8)
    assert not torch.equal(x, x3)


def test_shapes_and_labels_are_balanced():
    x, y = cap.cnn_dataset(40, 32, seed=0)
    assert x.shape == (40, 1, 32, 32)
    x, y = cap.rnn_dataset(4000, 5, 32, seed=1)
    assert x.shape == (4000, 5, 32) and abs(float(y.float().mean()) - 0.5) < 0.03


def test_all_inputs_when_n_equals_the_space():
    x, _ = cap.fcdnn_dataset(256, 8, seed=3)
    assert _distinct(x) and len(x) == 256


def test_redraws_duplicates_in_large_spaces():
    # 2^25 inputs, 20k draws: ~6 duplicate pairs expected before redrawing
    x, _ = cap.fcdnn_dataset(20000, 25, seed=0)
    assert _distinct(x)


def test_bad_input():
    with pytest.raises(ValueError, match=r"N=300 is larger than the 2\^8 = 256 distinct inputs"):
        cap.fcdnn_dataset(300, 8)
    with pytest.raises(ValueError, match=r"2\^4 = 16"):
        cap.rnn_dataset(17, 2, 2)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        cap.fcdnn_dataset(0, 8)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        cap.cnn_dataset(4, seed=-1)
