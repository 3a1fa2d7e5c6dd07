"""The capacity search finds the known maximum of a synthetic accuracy curve."""
import math

import numpy as np
import pytest

import lowbit.capacity as cap

N0 = 3000  # samples a perfectly tuned model stores exactly


def synthetic(n, h):
    """Accuracy near 1 below an effective size n0, falling to chance above it. The capacity is
    largest at lr = 0.01 and momentum = 0.9 and shrinks away from them (the knob the
    tuning stages must find)."""
    penalty = (math.log10(h["lr"] / 0.01)) ** 2 + 4 * (h["momentum"] - 0.9) ** 2
    n0 = N0 * math.exp(-penalty)
    return 0.5 + 0.5 * math.exp(-(n / n0) ** 4)  # ~1 well below n0, chance far above


def true_capacity():
    best = {"lr": 0.01, "momentum": 0.9}
    ns = np.unique(np.geomspace(100, 50 * N0, 20000).astype(int))
    return max(cap.mutual_information(synthetic(int(n), best), int(n)) for n in ns)


def test_search_finds_the_synthetic_maximum():
    space = {"lr": ("log", 0.001, 0.05), "momentum": ("linear", 0.6, 0.99)}
    calls = []

    def accuracy(n, h):
        calls.append(n)
        return synthetic(n, h)

    result = cap.capacity_search(accuracy, n_start=64, space=space,
                                 defaults={"lr": 0.003, "momentum": 0.7}, grid_points=3,
                                 trials=25, seed=0)
    c_true = true_capacity()
    assert c_true * 0.97 <= result.capacity <= c_true + 1e-6
    untuned = max(e["mi"] for e in result.evaluations if e["stage"] in ("coarse", "fine"))
    assert untuned < 0.8 * c_true                      # the tuning stages had work to do
    assert result.hparams["lr"] == pytest.approx(0.01, rel=0.6)
    assert {e["stage"] for e in result.evaluations} == {"coarse", "fine", "grid", "bayes", "refine"}
    assert len(calls) == len(result.evaluations)      # no point trained twice
    # the curve peaks where the search says, and accuracy falls with N past it
    curve = result.curve()
    assert max(c[2] for c in curve) == result.capacity
    chosen = result.curve(result.hparams)  # only the trainings with the chosen settings
    assert max(c[2] for c in chosen) == result.capacity
    assert {c[0] for c in chosen} == {e["n"] for e in result.evaluations if e["hparams"] == result.hparams}
    assert len(chosen) < len(curve)


def test_search_halves_when_n_start_is_too_large_and_batches():
    seen_batches = []

    def batch(points):
        seen_batches.append(len(points))
        return [synthetic(n, {"lr": 0.01, "momentum": 0.9}) for n, _ in points]

    result = cap.capacity_search(evaluate_batch=batch, n_start=200000, space={}, trials=0,
                                 grid_points=0, batch=3)
    assert max(seen_batches) <= 3
    assert result.capacity >= 0.9 * true_capacity()


def test_search_bad_input():
    with pytest.raises(ValueError, match="exactly one of"):
        cap.capacity_search()
    with pytest.raises(ValueError, match="threshold"):
        cap.capacity_search(lambda n, h: 1.0, threshold=0.3)
    with pytest.raises(ValueError, match=r"space\['lr'\]"):
        cap.capacity_search(lambda n, h: 1.0, space={"lr": ("log", 0.0, 1.0)})
    with pytest.raises(ValueError, match="n_max"):
        cap.capacity_search(lambda n, h: 1.0, n_start=100, n_max=10)


def test_fine_range_bounds_the_fine_grid():
    seen = []

    def accuracy(n, h):
        seen.append(n)
        return synthetic(n, {"lr": 0.01, "momentum": 0.9})

    result = cap.capacity_search(accuracy, n_start=64, space={}, grid_points=0, trials=0, fine_points=4,
                                 fine_range=(0.5, 2.0))
    coarse = [e["n"] for e in result.evaluations if e["stage"] == "coarse"]
    n_hi = min(n for n in coarse if synthetic(n, {"lr": 0.01, "momentum": 0.9}) < 0.99)
    fine = [e["n"] for e in result.evaluations if e["stage"] == "fine"]
    assert max(fine) <= 2 * n_hi and min(fine) >= n_hi // 2 - 1
    # the default is the wider (0.5, 4) grid
    wide = cap.capacity_search(accuracy, n_start=64, space={}, grid_points=0, trials=0, fine_points=4)
    assert max(e["n"] for e in wide.evaluations if e["stage"] == "fine") == 4 * n_hi
    with pytest.raises(ValueError, match="fine_range must be two factors"):
        cap.capacity_search(accuracy, fine_range=(2.0, 0.5))
