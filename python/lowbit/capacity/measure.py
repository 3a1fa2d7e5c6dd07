"""The capacity of one network, measured by real trainings on a dask Sweep: the glue between
`capacity_search` (which N and hyper-parameters to try) and `memorize` (one training).

    with cap.Sweep("runs.jsonl", n_workers=2) as sweep:
        result = cap.measure_capacity({"model": "fcdnn", "width": 16, "depth": 1}, sweep)

`lowbit capacity measure` and benchmarks/repro_capacity.py both use it.
"""
import time
from typing import Dict, Optional, Tuple

import torch

from ..cluster import Sweep
from ..devices import DeviceLike, device_name
from ..models._checks import positive_int
from .information import count_parameters
from .search import CapacityResult, capacity_search
from .tasks import build, dataset, memorize, result_record, spec_name, training_options
from .training import DEFAULT_HPARAMS, train_memorization

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


def memorize_on_device(job: Dict) -> Dict:
    """`tasks.memorize` with the training on job["device"] ("cuda", "cuda:N"): the same
    data, the same seeded initialization (built on the CPU, then moved) and the same
    shuffles, so the result differs from the CPU's by float rounding only."""
    start, cpu = time.perf_counter(), time.process_time()
    h = {**DEFAULT_HPARAMS, **(job.get("hparams") or {})}
    seed = job.get("seed", 0)
    x, y = dataset(job["spec"], job["n"], seed)
    torch.manual_seed(seed)
    model = build(job["spec"])
    result = train_memorization(model, x, y, lr=h["lr"], momentum=h["momentum"], decay=h["decay"],
                                batch_size=int(h["batch_size"]), seed=seed, device=job["device"],
                                **training_options(job))
    return {**result_record(result, job["n"], job.get("accuracy", "best")),
            "params": count_parameters(model), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


def capacity_job(spec: Dict, n: int, hparams: Dict, seed: int = 0, max_epochs: int = 250,
                 eval_every: int = 1) -> Dict:
    """The `memorize` job of one training of `measure_capacity`: look its result up with
    `sweep.store.get(sweep.key(memorize, job))`. It names the reported accuracy ("best")
    so that stores written when `memorize` reported the last epoch's accuracy (same
    fields otherwise) are not read as best accuracies."""
    return {"spec": spec, "n": n, "hparams": hparams, "seed": seed, "max_epochs": max_epochs,
            "accuracy": "best", "eval_every": eval_every}


def measure_capacity(spec: Dict, sweep: Sweep, max_epochs: int = 250, batch_size: int = 32,
                     fine_points: int = 4, grid_points: int = 2, trials: int = 4, seed: int = 0,
                     batch: int = 1, defaults: Optional[Dict] = None,
                     device: DeviceLike = None, n_start: Optional[int] = None,
                     eval_every: int = 1, fine_range: Tuple[float, float] = (0.5, 4.0)) -> CapacityResult:
    """Search N and the hyper-parameters that maximize N (1 - H(p)) for the network `spec`
    names (see `lowbit.capacity.tasks`), every training a `memorize` job on `sweep` (cached
    in its store, so a rerun resumes; `capacity_job` builds its job). Each training reports
    its best accuracy over the epochs. The first N is n_start, by default half the
    parameter count (capacities are ~2-4 bits per parameter, so the coarse doubling starts
    close). batch: points trained in parallel (the sweep's workers); eval_every and
    fine_range: see `train_memorization` and `capacity_search`.

    device: where each training runs ("cpu", default, or "cuda", "cuda:N", checked here
    and on the worker, which must have that device). CPU jobs are `memorize` jobs as they
    always were; a CUDA job is a `memorize_on_device` job that names its device, so it has
    its own entry in the store (its accuracy can differ from the CPU's by float rounding)."""
    dev = device_name(device, "device (--device)", allow_meta=False)
    positive_int("max_epochs", max_epochs)
    positive_int("batch_size", batch_size)
    if not isinstance(sweep, Sweep):
        raise TypeError(f"sweep must be a lowbit.capacity.Sweep, got {type(sweep).__name__}")
    params = count_parameters(build(spec))
    n_max = input_limit(spec)
    if n_start is None:
        n_start = max(16, min(params // 2, n_max or params))
    positive_int("n_start", n_start)

    def evaluate(points):
        jobs = [capacity_job(spec, n, h, seed, max_epochs, eval_every) for n, h in points]
        if dev == "cpu":
            return [r["accuracy"] for r in sweep.map(memorize, jobs, desc=spec_name(spec))]
        jobs = [{**job, "device": dev} for job in jobs]
        return [r["accuracy"] for r in sweep.map(memorize_on_device, jobs, desc=spec_name(spec))]

    return capacity_search(evaluate_batch=evaluate, n_start=n_start,
                           defaults={"batch_size": batch_size, **DEFAULT_DEFAULTS, **(defaults or {})},
                           fine_points=fine_points, grid_points=grid_points, trials=trials, n_max=n_max,
                           seed=seed, batch=batch, fine_range=fine_range)
