"""Paired statistics for the reproductions: a paired t test over seeds (n - 1 degrees of
freedom) with its confidence interval, McNemar's test of two classifiers on the same
images (exact and mid-p, with the accuracy difference and its interval), and Holm's
step-down correction for a family of tests. scipy (python3-scipy) supplies the t and
binomial distributions."""
import math
import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class Paired:
    """baseline - other over seeds: positive means `other` has the lower value."""
    n: int
    mean: float
    sd: Optional[float]        # None with one pair
    ci_low: Optional[float]
    ci_high: Optional[float]
    p: Optional[float]         # two-sided
    df: Optional[int]

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and (self.ci_low > 0 or self.ci_high < 0)

    def text(self, digits: int = 2) -> str:
        """'+0.42 [0.10, 0.74]', or '+0.42' without an interval."""
        out = f"{self.mean:+.{digits}f}"
        if self.ci_low is not None:
            out += f" [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]"
        return out


def paired_t(baseline: Sequence[float], other: Sequence[float], level: float = 0.95) -> Paired:
    """Paired t test of the per-seed differences baseline[i] - other[i] against zero, with
    n - 1 degrees of freedom and a `level` confidence interval for the mean difference."""
    if len(baseline) != len(other) or not baseline:
        raise ValueError(f"need equally many paired values, got {len(baseline)} and {len(other)}")
    diffs = [b - o for b, o in zip(baseline, other)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    mean = round(mean, 12) + 0.0   # float noise in equal means reads as an exact tie
    if n < 2:
        return Paired(n, mean, None, None, None, None, None)
    from scipy import stats
    sd = statistics.stdev(diffs)
    se = sd / math.sqrt(n)
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return Paired(n, mean, sd, mean - q * se, mean + q * se, p, n - 1)


@dataclass(frozen=True)
class McNemar:
    """Two classifiers on the same n images: `first` right where `second` is wrong on b
    images, the reverse on c. diff = (b - c) / n, first's accuracy minus second's."""
    n: int
    b: int
    c: int
    diff: float
    ci_low: float       # Wald interval of a difference of paired proportions
    ci_high: float
    p_exact: float      # two-sided: 2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1
    p_mid: float        # the same less P(X = min(b, c)): the mid-p value

    def text(self, scale: float = 100.0, digits: int = 2) -> str:
        """'+0.42 [+0.10, +0.74]' in points (scale 100)."""
        return (f"{scale * self.diff:+.{digits}f} [{scale * self.ci_low:+.{digits}f}, "
                f"{scale * self.ci_high:+.{digits}f}]")


def mcnemar(first: Sequence[bool], second: Sequence[bool], level: float = 0.95) -> McNemar:
    """McNemar's test of first's and second's per-image correctness on the same images."""
    if len(first) != len(second) or not len(first):
        raise ValueError(f"need equally many paired outcomes (> 0), got {len(first)} and {len(second)}")
    b = sum(1 for f, s in zip(first, second) if f and not s)
    c = sum(1 for f, s in zip(first, second) if s and not f)
    return mcnemar_counts(b, c, len(first), level)


def mcnemar_counts(b: int, c: int, n: int, level: float = 0.95) -> McNemar:
    """McNemar's test from the discordant counts b, c among n paired images."""
    if min(b, c) < 0 or b + c > n or n < 1:
        raise ValueError(f"need 0 <= b, c and b + c <= n >= 1, got b={b}, c={c}, n={n}")
    from scipy import stats
    m, k = b + c, min(b, c)
    if m == 0:
        p_exact = p_mid = 1.0
    else:
        cdf, pmf = float(stats.binom.cdf(k, m, 0.5)), float(stats.binom.pmf(k, m, 0.5))
        p_exact, p_mid = min(1.0, 2 * cdf), min(1.0, 2 * (cdf - 0.5 * pmf))
    diff = (b - c) / n
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt(max(0.0, (m / n - diff ** 2) / n))
    return McNemar(n, b, c, diff, diff - half, diff + half, p_exact, p_mid)


def holm(pvalues: Sequence[Optional[float]], alpha: float = 0.05) -> List[Optional[bool]]:
    """Holm's step-down rule: which of the tests reject at family-wise level alpha
    (None stays None)."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out: List[Optional[bool]] = [None if p is None else False for p in pvalues]
    m = len(indexed)
    for rank, (p, i) in enumerate(indexed):
        if p > alpha / (m - rank):
            break
        out[i] = True
    return out
