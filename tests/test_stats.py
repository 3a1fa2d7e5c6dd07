"""benchmarks/_stats.py: McNemar's exact and mid-p tests and the paired-difference
interval, against hand-computed binomial sums and scipy's exact binomial test."""
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def S(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # benchmarks/ is not a package
    return importlib.import_module("_stats")


def test_mcnemar_exact_and_mid_p_by_hand(S):
    # b = 10, c = 2: X ~ Binomial(12, 1/2); P(X <= 2) = (1 + 12 + 66) / 4096
    r = S.mcnemar_counts(10, 2, 100)
    assert r.p_exact == pytest.approx(2 * 79 / 4096)
    assert r.p_mid == pytest.approx(2 * (13 + 66 / 2) / 4096)
    assert r.diff == pytest.approx(0.08)
    half = 1.959964 * ((12 / 100 - 0.08 ** 2) / 100) ** 0.5
    assert (r.ci_low, r.ci_high) == pytest.approx((0.08 - half, 0.08 + half), rel=1e-5)
    assert r.text() == f"+8.00 [{100 * (0.08 - half):+.2f}, {100 * (0.08 + half):+.2f}]"


def test_mcnemar_matches_scipys_binomial_test_and_is_symmetric(S):
    from scipy import stats
    for b, c in [(0, 5), (7, 7), (30, 12), (3, 40)]:
        r = S.mcnemar_counts(b, c, 1000)
        assert r.p_exact == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)
        assert r.p_mid <= r.p_exact
        flipped = S.mcnemar_counts(c, b, 1000)
        assert flipped.p_exact == r.p_exact and flipped.diff == -r.diff


def test_mcnemar_from_outcomes_counts_the_discordant_pairs(S):
    first = [True, True, False, False, True, True]
    second = [True, False, True, False, False, True]
    r = S.mcnemar(first, second)
    assert (r.n, r.b, r.c) == (6, 2, 1)
    tie = S.mcnemar([True, False], [True, False])
    assert tie.p_exact == tie.p_mid == 1.0 and tie.diff == 0 and tie.ci_low == tie.ci_high == 0


def test_mcnemar_rejects_bad_input(S):
    with pytest.raises(ValueError, match="equally many"):
        S.mcnemar([True], [True, False])
    with pytest.raises(ValueError, match="b \\+ c <= n"):
        S.mcnemar_counts(6, 5, 10)
