"""Many independent trainings on dask.distributed, streamed to a ResultStore.

    with Sweep("runs.jsonl", n_workers=2) as sweep:            # a LocalCluster
        results = sweep.map(memorize, jobs)
    Sweep("runs.jsonl", scheduler="tcp://host:8786")            # a user's cluster

Jobs already in the store are not run again, so a sweep that was interrupted (Ctrl-C, a
crash, a lost worker) resumes when the same command runs again. The cluster starts only
when some job is left to run.
"""
import logging
import os
from typing import Any, Callable, List, Optional, Sequence, Union

from ..models._checks import positive_int
from ..optional import require, tqdm
from .store import ResultStore, job_key


def _with_threads(fn: Callable, job: Any, threads: int):
    """Runs on a worker: torch gets the worker's thread share, not the whole machine."""
    import torch
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return fn(job)


def _restore_environ(saved: dict) -> None:
    """dask's nanny writes its pre-spawn variables (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, ...)
    into the environment of the process that starts the workers; they are meant for the
    workers only, and left here they would change this process's thread count later."""
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _fn_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _distributed():
    """dask.distributed, imported when a sweep first runs a job."""
    return require("distributed", "python3-distributed", "distributed", "capacity sweeps (dask)")


class Sweep:
    """Runs fn(job) for many JSON-able jobs on dask, caching results in `store`.

    store: a path (JSON lines) or a ResultStore.
    scheduler: address of a running dask scheduler; None starts a LocalCluster of
        n_workers processes (processes=False: threads of this process, for tests and
        notebooks) with threads_per_worker torch threads each.
    """

    def __init__(self, store: Union[str, os.PathLike, ResultStore], scheduler: Optional[str] = None,
                 n_workers: int = 1, threads_per_worker: int = 1, processes: bool = True,
                 progress: bool = True):
        self.store = store if isinstance(store, ResultStore) else ResultStore(store)
        if scheduler is not None and not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string like 'tcp://host:8786', got {scheduler!r}")
        self.scheduler = scheduler
        self.n_workers = positive_int("n_workers", n_workers)
        self.threads = positive_int("threads_per_worker", threads_per_worker)
        self.processes, self.progress = bool(processes), bool(progress)
        self._client = self._cluster = None

    def key(self, fn: Callable, job: Any) -> str:
        return job_key({"fn": _fn_name(fn), "job": job})

    def _start(self):
        if self._client is None:
            distributed = _distributed()
            Client, LocalCluster = distributed.Client, distributed.LocalCluster
            if self.scheduler is None:
                saved = dict(os.environ)
                try:
                    self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                                 processes=self.processes, dashboard_address=None,
                                                 silence_logs=logging.ERROR)
                finally:
                    _restore_environ(saved)
                self._client = Client(self._cluster)
            else:
                self._client = Client(self.scheduler)
        return self._client

    def map(self, fn: Callable, jobs: Sequence[Any], desc: str = "sweep") -> List[Any]:
        """[fn(job) for job in jobs], each result read from the store if it is there, else
        computed on the cluster and appended to the store as soon as it finishes.
        A job that raises stops the sweep (the finished ones stay stored)."""
        jobs = list(jobs)
        keys = [self.key(fn, job) for job in jobs]
        todo = {}
        for k, job in zip(keys, jobs):
            if k not in self.store and k not in todo:
                todo[k] = job
        if todo:
            self._run(fn, todo, desc)
        return [self.store.get(k) for k in keys]

    def _run(self, fn: Callable, todo: dict, desc: str) -> None:
        as_completed = _distributed().as_completed
        client = self._start()
        futures = {client.submit(_with_threads, fn, job, self.threads, pure=False): k
                   for k, job in todo.items()}
        bar = None
        if self.progress:
            bar = tqdm(total=len(futures), desc=desc, leave=False)
        try:
            for future in as_completed(futures):
                self.store.put(futures[future], future.result())
                if bar is not None:
                    bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def __enter__(self) -> "Sweep":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
