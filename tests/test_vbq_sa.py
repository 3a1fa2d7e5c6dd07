"""VBQ simulated annealing: the paper's acceptance rule, neighbourhoods, stopping rule,
determinism and bad input, checked with stub fitness functions."""
import math

import numpy as np
import pytest
import torch

import lowbit as lb
from lowbit import reference as R

FIELDS = lb.vbq.TRACE_FIELDS


def bumpy(layer, ab, state):
    """A deterministic stub: accuracy-like values in [0, 1] with many local optima."""
    ab = np.asarray(ab)
    return 0.5 + 0.3 * np.sin(7 * ab[:, 0] + layer) * np.cos(3 * np.log(np.abs(ab[:, 1])))


def signed_b(a, b):
    """The neighbour rule's reference: Eq. 2 is odd, (a, b) and (a, -b) hold the same
    values; b takes the sign that lists them increasing, sign(a - 1)."""
    return -abs(b) if a < 1 else abs(b)


def test_acceptance_probability_matches_the_paper():
    for e, e_new, T in [(0.9, 0.95, 1.0), (0.9, 0.9, 0.5), (0.9, 0.89, 1.0), (0.9, 0.8, 0.3)]:
        assert lb.vbq.acceptance(e, e_new, T) == pytest.approx(R.vbq.sa_acceptance(e, e_new, T))
    assert lb.vbq.acceptance(0.9, 0.89, 1.0) == pytest.approx(math.exp(-1.0))


def test_every_decision_follows_the_acceptance_rule():
    r = lb.vbq.sa(bumpy, 3, 8, a0=[1.25, 2.0, 4.0], b0=0.05, max_iterations=40, patience=1000, seed=1)
    steps = [dict(zip(FIELDS, s)) for s in r.trace]
    assert len(steps) == 3 * 40 and r.iterations == 40 and not r.converged
    state = {0: (1.25, 0.05), 1: (2.0, 0.05), 2: (4.0, 0.05)}
    e = None
    downhill_taken = downhill_refused = 0
    for s in steps:
        a, b = state[s["layer"]]
        T = s["temperature"]
        # one neighbour of the three: a or |b| (or both) moved by at most half of a*T, |b|*T,
        # b with the sign that lists Eq. 2's values increasing
        assert abs(s["a"] - a) <= 0.5 * a * T + 1e-12
        assert abs(abs(s["b"]) - abs(b)) <= 0.5 * abs(b) * T + 1e-12
        assert s["b"] == signed_b(s["a"], s["b"])
        e = s["e"] if e is None else e
        assert s["e"] == pytest.approx(e)   # e is the fitness of the current state
        p = R.vbq.sa_acceptance(s["e"], s["e_new"], T)
        assert s["accepted"] == (s["e_new"] >= s["e"] or s["u"] < p)
        if s["e_new"] < s["e"]:
            downhill_taken += s["accepted"]
            downhill_refused += not s["accepted"]
        if s["accepted"]:
            state[s["layer"]] = (s["a"], s["b"])
            e = s["e_new"]
    assert downhill_taken > 0 and downhill_refused > 0   # both branches of P were exercised
    np.testing.assert_allclose(r.state, [state[l] for l in range(3)])
    np.testing.assert_allclose(r.temperature_history, 0.95 ** np.arange(40))
    assert r.best_fitness == max([steps[0]["e"]] + [s["e_new"] for s in steps if s["accepted"]])


def test_the_best_of_three_neighbours_competes():
    seen = []

    def fitness(layer, ab, state):
        out = bumpy(layer, ab, state)
        seen.append((len(ab), out.max()))
        return out
    r = lb.vbq.sa(fitness, 1, 8, max_iterations=10, patience=1000, seed=0)
    assert seen[0][0] == 1   # the start state, then up to three usable neighbours per step
    assert all(1 <= n <= 3 for n, _ in seen[1:])
    assert [dict(zip(FIELDS, s))["e_new"] for s in r.trace] == pytest.approx([m for _, m in seen[1:]])


def test_stops_after_patience_iterations_without_a_move():
    # every neighbour is much worse at every temperature reached: nothing is ever accepted
    def cliff(layer, ab, state):
        return np.where(np.all(ab == state[layer], 1), 1.0, 0.0)
    r = lb.vbq.sa(cliff, 2, 8, patience=30, max_iterations=500, t0=0.01, seed=0)
    assert r.converged and r.iterations == 30
    np.testing.assert_array_equal(r.state, [[1.25, 0.05], [1.25, 0.05]])


def test_same_seed_same_run_and_unusable_neighbours_are_skipped():
    runs = [lb.vbq.sa(bumpy, 2, 16, a0=1.05, b0=0.05, t0=3.0, max_iterations=30, seed=s)
            for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].state, runs[1].state)
    assert runs[0].trace == runs[1].trace and runs[0].trace != runs[2].trace
    for r in runs:  # (a - 1) * b > 0, else the codebook would not increase
        assert all((s[2] - 1) * s[3] > 0 for s in r.trace)
        assert all(np.all(np.diff(lb.vbq.formula(s[2], s[3], 16)) > 0) for s in r.trace)


def test_native_objectives_as_sa_fitness():
    rng = np.random.default_rng(0)
    objs = [lb.vbq.weight_mse(rng.standard_normal(2000) * s) for s in (0.1, 1.0)]
    b0 = lb.vbq.range_b0([torch.tensor([0.3]), torch.tensor([3.0])])   # spans +-max|w| per layer
    r = lb.vbq.sa(objs, 2, 8, a0=1.25, b0=b0, max_iterations=60, seed=0)
    start = r.fitness_history[0]
    assert r.best_fitness > start and r.best_fitness > -0.1   # relative error summed over layers


def test_fitness_errors_and_bad_arguments():
    with pytest.raises(ValueError, match="NaN"):
        lb.vbq.sa(lambda l, ab, s: [np.nan] * len(ab), 1, 8)
    with pytest.raises(ZeroDivisionError):
        lb.vbq.sa(lambda l, ab, s: 1 / 0, 1, 8)
    with pytest.raises(ValueError, match="one per candidate"):
        lb.vbq.sa(lambda l, ab, s: [0.5, 0.5, 0.5, 0.5], 1, 8)
    with pytest.raises(ValueError, match=r"bins must be in \[2, 256\]"):
        lb.vbq.sa(bumpy, 1, 1)
    with pytest.raises(ValueError, match=r"layers must be in"):
        lb.vbq.sa(bumpy, 0, 8)
    with pytest.raises(ValueError, match=r"cooling must be in \(0, 1\)"):
        lb.vbq.sa(bumpy, 1, 8, cooling=1.0)
    with pytest.raises(ValueError, match="t0 must be"):
        lb.vbq.sa(bumpy, 1, 8, t0=0)
    with pytest.raises(ValueError, match="no increasing codebook"):
        lb.vbq.sa(bumpy, 1, 8, a0=0.8, b0=0.05)
    with pytest.raises(ValueError, match="one objective per layer"):
        lb.vbq.sa([lb.vbq.weight_mse([0.1, 0.2, 0.3])], 2, 8)


def test_moves_of_a_across_1_flip_b_and_keep_the_values():
    # (a, b) and (a, -b) hold one set of values: the flip changes nothing but the order
    for a, b in [(0.5, 0.3), (2.0, -1.0), (0.9, 7.0)]:
        np.testing.assert_allclose(np.sort(lb.vbq.formula(a, b, 8)),
                                   lb.vbq.formula(a, signed_b(a, b), 8))
        assert np.all(np.diff(lb.vbq.formula(a, signed_b(a, b), 8)) > 0)


@pytest.mark.parametrize("start, target", [((1.25, 0.05), 0.3), ((0.8, -0.05), 3.0)])
def test_both_families_are_reached_from_either_side_of_a_1(start, target):
    """From a0 > 1, b0 > 0 the search reaches the a < 1 family (b < 0), which the paper's
    Fig. 7 fit has for its first layer and lowbit's GA fit finds for LeNet-5's, and back."""
    def peak(layer, ab, state):
        return -np.abs(np.log(np.asarray(ab)[:, 0]) - np.log(target))
    r = lb.vbq.sa(peak, 1, 8, a0=start[0], b0=start[1], seed=0)
    a, b = r.best_state[0]
    assert a == pytest.approx(target, rel=1e-3) and (a - 1) * b > 0
    crossings = [s for s in r.trace if s[8] and (s[2] - 1) * (start[0] - 1) < 0]
    assert crossings, "no accepted move crossed a = 1"


def test_the_papers_rule_stops_an_accuracy_fitness_and_the_stop_is_recorded():
    # Accuracy-like plateaus: equal neighbours are accepted (e' = e) until the moves, at
    # most a T / 2 relative, vanish in float64 (T about 2e-16, ~700 iterations at 0.95).
    def plateaus(layer, ab, state):
        return np.round(bumpy(layer, ab, state) * 1000) / 1000
    r = lb.vbq.sa(plateaus, 2, 8, seed=0)
    assert r.converged and r.stop == "patience" and 650 < r.iterations < 900
    assert r.temperature_history[-1] < 1e-15
    capped = lb.vbq.sa(plateaus, 2, 8, seed=0, max_iterations=50)
    assert not capped.converged and capped.stop == "max_iterations" and capped.iterations == 50
