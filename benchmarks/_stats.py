"""Paired statistics for the reproductions: a paired t test over seeds (n - 1 degrees of
freedom) with its confidence interval, and Holm's step-down correction for a family of
tests. scipy (python3-scipy) supplies the t distribution."""
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
