"""The capacity of one network, measured by real trainings on a dask Sweep: the glue between
`capacity_search` (which N and hyper-parameters to try) and `memorize` (one training).

    with cap.Sweep("runs.jsonl", n_workers=2) as sweep:
        result = cap.measure_capacity({"model": "fcdnn", "width": 16, "depth": 1}, sweep)

`lowbit capacity measure` and benchmarks/repro_capacity.py both use it.
"""
from typing import Dict, Optional

from ..models._checks import positive_int
from .information import count_parameters
from .search import CapacityResult, capacity_search
from .sweep import Sweep
from .tasks import build, memorize, spec_name

DEFAULT_DEFAULTS = {"lr": 0.02, "momentum": 0.9, "decay": 0.3}


def input_limit(spec: Dict) -> Optional[int]:
    """How many distinct inputs the spec's memorization set can have (None: practically
    unbounded): 2^n_in for an FCDNN, 2^(n_seq n_in) for an LSTM."""
    if spec["model"] == "fcdnn":
        bits = spec.get("n_in") or spec["width"]
    elif spec["model"] == "lstm":
        bits = spec.get("n_seq", 5) * spec.get("n_in", 32)
    else:
        return None
    return 2 ** bits if bits < 40 else None


def measure_capacity(spec: Dict, sweep: Sweep, max_epochs: int = 250, batch_size: int = 32,
                     fine_points: int = 4, grid_points: int = 2, trials: int = 4, seed: int = 0,
                     batch: int = 1, defaults: Optional[Dict] = None) -> CapacityResult:
    """Search N and the hyper-parameters that maximize N (1 - H(p)) for the network `spec`
    names (see `lowbit.capacity.tasks`), every training a `memorize` job on `sweep` (cached
    in its store, so a rerun resumes). The first N is half the parameter count (capacities
    are ~2-4 bits per parameter, so the coarse doubling starts close). batch: points
    trained in parallel (the sweep's workers)."""
    positive_int("max_epochs", max_epochs)
    positive_int("batch_size", batch_size)
    if not isinstance(sweep, Sweep):
        raise TypeError(f"sweep must be a lowbit.capacity.Sweep, got {type(sweep).__name__}")
    params = count_parameters(build(spec))
    n_max = input_limit(spec)

    def evaluate(points):
        jobs = [{"spec": spec, "n": n, "hparams": h, "seed": seed, "max_epochs": max_epochs}
                for n, h in points]
        return [r["accuracy"] for r in sweep.map(memorize, jobs, desc=spec_name(spec))]

    return capacity_search(evaluate_batch=evaluate, n_start=max(16, min(params // 2, n_max or params)),
                           defaults={"batch_size": batch_size, **DEFAULT_DEFAULTS, **(defaults or {})},
                           fine_points=fine_points, grid_points=grid_points, trials=trials, n_max=n_max,
                           seed=seed, batch=batch)
