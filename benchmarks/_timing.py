"""Shared benchmark helpers: same-thread-count set-up, median timing, result files."""
import ctypes
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

import lowbit as lb
from lowbit.files import write_text_atomically
from lowbit.timing import paired_times  # noqa: F401  (re-exported for the benchmarks)

RESULTS = Path(__file__).resolve().parent / "results"


def keep_allocations_warm() -> bool:
    """Serve big tensors from the heap instead of fresh mmap pages, for every measurement.

    glibc maps blocks above 32 MiB freshly on each allocation, so a 64 MiB output costs
    16K page faults, more than the arithmetic. A training loop reuses memory (as torch's
    CUDA caching allocator does); raising the mmap threshold gives ours and the baselines
    that steady state alike. Returns False where mallopt is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 31))
    except OSError:
        return False


def set_threads(n: int = 0) -> int:
    """Runs lowbit and torch with the same thread count (default: lowbit's default)."""
    lb.set_num_threads(n)
    threads = lb.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)




def environment(threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The 1-minute load average at the start: other jobs on the machine skew absolute times.
    return {"threads": threads, "isa": lb.kernel_isa(), "torch": torch.__version__,
            "cpu": cpu, "cpus_available": len(os.sched_getaffinity(0)),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}


def write_results(name: str, payload: dict, markdown: str) -> None:
    write_text_atomically(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    write_text_atomically(RESULTS / f"{name}.md", markdown)
