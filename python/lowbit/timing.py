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


def time_against_float(packed, float_model, x: torch.Tensor, images: int, batch_size: int = 64) -> dict:
    """A packed model against its float original on the same inputs, timed alternately:
    batch-1 latency over the first `images` rows of x, then one batch of `batch_size` rows.
    Run it inside `torch_threads_as_lowbit()` so both get the same threads."""
    singles = [x[i:i + 1] for i in range(min(images, len(x)))]
    batch = x[:batch_size]

    def one_by_one(m):
        return lambda: [m(xi) for xi in singles]

    with torch.no_grad():
        t1, f1, r1 = paired_times(one_by_one(packed), one_by_one(float_model), repeat=3, warmup=1)
        repeat = max(3, min(30, images // 10))
        t64, f64, r64 = paired_times(lambda: packed(batch), lambda: float_model(batch), repeat=repeat, warmup=1)
    n = len(singles)
    return {"batch1_us": 1e6 * t1 / n, "float_batch1_us": 1e6 * f1 / n, "batch1_speedup": r1,
            "batch64_ms": 1e3 * t64, "float_batch64_ms": 1e3 * f64, "batch64_speedup": r64,
            "batch": len(batch), "images": n}
