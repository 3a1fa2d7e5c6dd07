"""VBQ genetic algorithm: operators against the reference, invariants of whole runs,
determinism, and bad input (paper 003, Sec. III-B)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import lowbit as lb
from lowbit import reference as R
from lowbit._native import C

V = C.vbq


def sorted_values(m, lo, hi, rng):
    return R.vbq.ga_repair(rng.uniform(lo, hi, m), lo, hi, False)


@given(m=st.integers(1, 40), seed=st.integers(0, 2 ** 32 - 1), center=st.floats(-1.5, 1.5),
       count=st.integers(1, 40), strict=st.booleans())
def test_crossover_matches_reference_and_keeps_genomes_sorted_in_bounds(m, seed, center, count, strict):
    rng = np.random.default_rng(seed)
    lo, hi = (0.0, 1.0) if strict else (-1.0, 1.0)
    p1, p2 = sorted_values(m, lo, hi, rng), sorted_values(m, lo, hi, rng)
    c1, c2 = V.ga_crossover(p1, p2, center, count, lo, hi, strict)
    r1, r2 = R.vbq.ga_crossover(p1, p2, center, count, lo, hi, strict)
    np.testing.assert_array_equal(c1, r1)
    np.testing.assert_array_equal(c2, r2)
    for c in (c1, c2):
        assert (np.diff(c) > 0).all() and c[0] >= lo and c[-1] <= hi
        assert not strict or c[0] > lo
    # the values are exchanged, not invented: together the children hold the parents' values
    np.testing.assert_allclose(np.sort(np.concatenate([c1, c2])), np.sort(np.concatenate([p1, p2])), atol=1e-6)


@given(m=st.integers(1, 40), seed=st.integers(0, 2 ** 32 - 1), r=st.floats(1e-9, 1 - 1e-9))
def test_mutation_stays_between_neighbours(m, seed, r):
    rng = np.random.default_rng(seed)
    u = sorted_values(m, -1.0, 1.0, rng)
    i = int(rng.integers(m))
    out = V.ga_mutate(u, i, r, -1.0, 1.0, False)
    np.testing.assert_array_equal(out, R.vbq.ga_mutate(u, i, r, -1.0, 1.0, False))
    below = -1.0 if i == 0 else u[i - 1]
    above = 1.0 if i == m - 1 else u[i + 1]
    assert (np.diff(out) > 0).all() and -1.0 <= out.min() and out.max() <= 1.0
    gap = 1e-6 * 2.0   # the minimum spacing ga_repair keeps (1e-6 of the bounds' range)
    assert below - m * gap <= out[i] <= above + m * gap
    np.testing.assert_allclose(np.delete(out, i), np.delete(u, i), atol=m * gap)


def test_roulette_weights_match_reference():
    for f in ([0.2, 0.5, 0.3], [-1.0, 0.0, 2.0], [0.0, 0.0], [-3.0, -3.0], [-np.inf, 0.5, 0.2],
              [-np.inf, -1.0, 1.0], [-np.inf, -np.inf]):
        np.testing.assert_array_equal(V.roulette_weights(np.array(f)), R.vbq.roulette_weights(f))


def quadratic_fitness(target):
    return lambda pop: -((np.asarray(pop) - target) ** 2).sum(1)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bins", [2, 3, 7, 16])
def test_runs_keep_every_genome_sorted_in_bounds_and_symmetric(symmetric, bins):
    seen = []

    def fitness(pop):
        seen.append(pop.copy())
        return -np.abs(pop).sum(1)

    r = lb.vbq.ga(fitness, bins, -0.5, 1.0, symmetric=symmetric, population=12, generations=8, seed=3)
    pops = np.concatenate(seen + [r.population])
    assert (np.diff(pops, axis=1) > 0).all()
    bound = 1.0 if symmetric else None
    assert pops.min() >= (-bound if symmetric else -0.5) and pops.max() <= 1.0
    if symmetric:
        np.testing.assert_array_equal(pops, -pops[:, ::-1])
    # elitism: the best fitness never drops; the history covers the initial generation too
    assert len(r.best_history) == 9 and (np.diff(r.best_history) >= 0).all()
    assert (r.mean_history <= r.best_history + 1e-12).all()
    assert r.evaluations == 12 + 8 * (12 - round(0.3 * 12))  # copies are not re-evaluated


def test_same_seed_same_run_and_convergence():
    target = np.linspace(-1, 1, 8) ** 3
    runs = [lb.vbq.ga(quadratic_fitness(target), 8, -1, 1, generations=60, seed=s) for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0].best, runs[1].best)
    np.testing.assert_array_equal(runs[0].best_history, runs[1].best_history)
    assert not np.array_equal(runs[0].best_history, runs[2].best_history)
    assert runs[0].best_fitness > 50 * runs[0].best_history[0]  # much closer to the target
    # the NumPy reference GA (its own random stream) gets as close
    _, ref_best, _ = R.vbq.ga(quadratic_fitness(target), 8, -1, 1, generations=60, seed=5)
    assert runs[0].best_fitness > 10 * ref_best


def test_native_objective_fitness_and_init():
    w = np.random.default_rng(0).standard_normal(5000)
    obj = lb.vbq.weight_mse(w)
    lm = lb.vbq.lloyd_max(w, 8)
    r = lb.vbq.ga(obj, 8, w.min(), w.max(), generations=5, init=lm[None], seed=0)
    # the Lloyd-Max start is in the first generation, and the elite keeps it (or better)
    assert r.best_history[0] == pytest.approx(-obj.evaluate(lm[None])[0])
    assert r.best_fitness >= r.best_history[0]


def test_rejected_genomes_are_never_reproduced():
    # -inf rejects every genome whose smallest value is above -0.5; the elite and the
    # roulette copies (the first 30 % of each new generation) are never rejected ones
    r = lb.vbq.ga(lambda pop: np.where(pop[:, 0] < -0.5, -np.abs(pop).sum(1), -np.inf), 4, -1, 1,
                  population=20, generations=10, seed=1)
    assert np.isfinite(r.best_fitness) and r.best[0] < -0.5
    assert np.isfinite(r.fitness[:6]).all()


def test_progress_can_stop_the_run():
    calls = []
    r = C.vbq.ga_run(quadratic_fitness(np.zeros(4)), 4, 10, 50, -1, 1, False, [0.3, 0.5, 0.2], 0,
                     None, lambda i, best, mean: calls.append(i) or i < 3)
    assert calls == [0, 1, 2, 3] and len(r["best_history"]) == 4


def test_fitness_that_raises_or_returns_nan_gives_a_clear_error():
    def boom(pop):
        raise KeyError("model broke")
    with pytest.raises(KeyError, match="model broke"):
        lb.vbq.ga(boom, 4, -1, 1, generations=2)
    with pytest.raises(ValueError, match="NaN"):
        lb.vbq.ga(lambda pop: np.full(len(pop), np.nan), 4, -1, 1, generations=2)
    with pytest.raises(ValueError, match=r"\+inf"):
        lb.vbq.ga(lambda pop: np.full(len(pop), np.inf), 4, -1, 1, generations=2)
    with pytest.raises(ValueError, match="one per genome"):
        lb.vbq.ga(lambda pop: [1.0], 4, -1, 1, generations=2)
    with pytest.raises(ValueError, match="NaN"):  # the native check, without the Python wrapper
        C.vbq.ga_run(lambda pop: np.full(len(pop), np.nan), 4, 10, 2, -1, 1, False, [0.3, 0.5, 0.2], 0)
    with pytest.raises(ZeroDivisionError):
        C.vbq.ga_run(lambda pop: 1 / 0, 4, 10, 2, -1, 1, False, [0.3, 0.5, 0.2], 0)
    # later generations fail the same way, and the module still works afterwards
    state = {"n": 0}

    def late(pop):
        state["n"] += 1
        if state["n"] == 3:
            raise RuntimeError("third call")
        return -np.abs(pop).sum(1)
    with pytest.raises(RuntimeError, match="third call"):
        lb.vbq.ga(late, 4, -1, 1, generations=5)
    assert lb.vbq.ga(quadratic_fitness(np.zeros(4)), 4, -1, 1, generations=1).evaluations > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(bins=1), r"bins must be in \[2, 256\]"), (dict(bins=257), r"bins must be in \[2, 256\]"),
    (dict(population=1), r"population must be in \[2, 100000\]"),
    (dict(generations=-1), "generations must be in"), (dict(lo=1.0), "lo < hi"),
    (dict(hi=np.nan), "lo < hi"), (dict(rates=(0.5, 0.5, 0.5)), "summing to 1"),
    (dict(rates=(1.2, -0.2, 0.0)), "summing to 1"),
])
def test_bad_arguments_name_the_argument_and_range(kwargs, match):
    args = dict(bins=4, lo=-1.0, hi=1.0, population=10, generations=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lb.vbq.ga(quadratic_fitness(0.0), **args)
    with pytest.raises(TypeError, match="bins must be an int"):
        lb.vbq.ga(quadratic_fitness(0.0), 4.0, -1, 1)
    with pytest.raises(TypeError, match="callable"):
        lb.vbq.ga("accuracy", 4, -1, 1)
