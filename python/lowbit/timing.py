"""Timing a piece of lowbit against its baseline in the same process (benchmarks, study)."""
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Tuple

import torch

from .threads import get_num_threads


@contextmanager
def torch_threads_as_lowbit() -> Iterator[int]:
    """Inside the block torch uses as many threads as lowbit's kernels (yielded), so a float
    baseline is timed on equal terms; torch's own count comes back afterwards."""
    threads, before = get_num_threads(), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def paired_times(ours: Callable[[], object], baseline: Callable[[], object],
                 repeat: int = 9, warmup: int = 2) -> Tuple[float, float, float]:
    """Times ours and baseline alternately, so machine noise hits both alike.

    Returns (median seconds of ours, median seconds of baseline, median of the per-pair
    baseline / ours ratios).
    """
    for _ in range(warmup):
        ours()
        baseline()
    t_ours, t_base, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        baseline()
        t2 = time.perf_counter()
        t_ours.append(t1 - t0)
        t_base.append(t2 - t1)
        ratios.append((t2 - t1) / max(t1 - t0, 1e-12))
    return statistics.median(t_ours), statistics.median(t_base), statistics.median(ratios)
