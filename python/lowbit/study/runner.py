"""Where a study's units run: here, one after another (the default); on a LocalCluster of
N worker processes started for the study (workers=N, `--workers N`); or on a running dask
scheduler (scheduler="tcp://host:8786", `--scheduler`). All three run on lowbit.cluster's
Sweep, with the same store, retries and results."""
from typing import Optional

import torch

from ..cluster import ResultStore, Sweep


class Runner:
    def __init__(self, scheduler: Optional[str] = None, workers: Optional[int] = None):
        if scheduler is not None and workers is not None:
            raise ValueError("scheduler (--scheduler) and workers (--workers) exclude each other: workers "
                             "starts a LocalCluster here, scheduler uses a running dask cluster")
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
            raise ValueError(f"scheduler (--scheduler) must be an address like 'tcp://host:8786', got {scheduler!r}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers (--workers) must be a positive integer, got {workers!r}")
        self.scheduler = scheduler.strip() if scheduler else None
        self.workers = workers

    @property
    def serial(self) -> bool:
        return self.scheduler is None and self.workers is None

    def describe(self) -> str:
        if self.scheduler:
            return f"dask scheduler {self.scheduler}"
        if self.workers:
            return f"LocalCluster of {self.workers} worker{'s' if self.workers > 1 else ''}"
        return "serial (this process)"

    def sweep(self, store: ResultStore, progress: bool) -> Sweep:
        if self.scheduler:
            # a user's workers keep their own torch threads
            return Sweep(store, scheduler=self.scheduler, threads_per_worker=None, progress=progress)
        if self.workers:
            # The workers compute as this process would: the same torch threads, and this
            # process's environment (dask would set OPENBLAS_NUM_THREADS=1, and OpenBLAS's
            # sums depend on its thread count), so their results equal the serial study's.
            return Sweep(store, n_workers=self.workers, threads_per_worker=torch.get_num_threads(),
                         progress=progress, worker_environ={})
        return Sweep(store, serial=True, progress=progress)
