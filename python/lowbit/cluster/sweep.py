"""Many independent jobs on dask.distributed (or one after another in this process),
streamed to a ResultStore.

    with Sweep("runs.jsonl", n_workers=2) as sweep:            # a LocalCluster
        results = sweep.map(memorize, jobs)
    Sweep("runs.jsonl", scheduler="tcp://host:8786")            # a user's cluster
    Sweep("runs.jsonl", serial=True)                            # here, no dask

Jobs already in the store are not run again, so a sweep that was interrupted (Ctrl-C, a
crash, a lost worker) resumes when the same command runs again. The cluster starts only
when some job is left to run. The capacity sweeps and `lowbit study --workers /
--scheduler` both run on this engine.
"""
import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..models._checks import positive_int
from ..optional import tqdm
from . import connect
from .store import ResultStore, job_key


@dataclass(frozen=True)
class JobFailure:
    """A job that still failed after its retries (returned by map(keep_going=True) in
    place of its result; never stored, so the next map runs it again)."""
    error: str          # "ValueError: what went wrong", one line
    attempts: int
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException, attempts: int) -> "JobFailure":
        message = " ".join(str(exc).split())
        error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(error, attempts, tb)

    def as_dict(self) -> dict:
        return {"error": self.error, "attempts": self.attempts}


def _with_threads(fn: Callable, job: Any, args: tuple, threads: Optional[int]):
    """Runs on a worker: torch gets the worker's thread share, not the whole machine
    (threads=None: the worker's own setting)."""
    import torch
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return fn(job, *args)


def _fn_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class Sweep:
    """Runs fn(job, *args) for many JSON-able jobs, caching results in `store`.

    store: a path (JSON lines) or a ResultStore.
    scheduler: address of a running dask scheduler; None starts a LocalCluster of
        n_workers processes (processes=False: threads of this process, for tests and
        notebooks) with threads_per_worker torch threads each (None: leave the workers'
        own setting, as for a user's cluster).
    serial: run the jobs here, one after another, without dask (scheduler must be None).
    worker_environ: environment variables of a LocalCluster's worker processes, set before
        they start (None: dask's, OMP_NUM_THREADS=1 and the like; {}: this process's
        environment, unchanged; see connect.local_cluster).
    """

    WATCH_SECONDS = 5.0      # how often a sweep with nothing finishing checks that workers exist

    def __init__(self, store: Union[str, os.PathLike, ResultStore], scheduler: Optional[str] = None,
                 n_workers: int = 1, threads_per_worker: Optional[int] = 1, processes: bool = True,
                 progress: bool = True, serial: bool = False, worker_environ: Optional[dict] = None):
        self.store = store if isinstance(store, ResultStore) else ResultStore(store)
        if scheduler is not None and not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string like 'tcp://host:8786', got {scheduler!r}")
        if serial and scheduler is not None:
            raise ValueError("serial=True runs the jobs in this process: give no scheduler")
        self.scheduler, self.serial = scheduler, bool(serial)
        self.n_workers = positive_int("n_workers", n_workers)
        self.threads = None if threads_per_worker is None else positive_int("threads_per_worker", threads_per_worker)
        self.processes, self.progress = bool(processes), bool(progress)
        self.worker_environ = worker_environ
        self._client = self._cluster = None
        self._environ: Dict[str, str] = {}

    def key(self, fn: Callable, job: Any) -> str:
        return job_key({"fn": _fn_name(fn), "job": job})

    def start(self):
        """The dask client (started or connected on the first call; None when serial).
        Call it early to fail fast on an unreachable scheduler."""
        if self._client is None and not self.serial:
            if self.scheduler is None:
                # dask's nannies write their workers' variables into this process's
                # environment at every (re)start of a worker; close() puts it back
                self._environ = dict(os.environ)
                self._client, self._cluster = connect.local_cluster(self.n_workers, self.processes,
                                                                    self.worker_environ)
            else:
                self._client = connect.scheduler_client(self.scheduler)
        return self._client

    def map(self, fn: Callable, jobs: Sequence[Any], desc: str = "sweep", args: tuple = (),
            retries: int = 0, keep_going: bool = False) -> List[Any]:
        """[fn(job, *args) for job in jobs], each result read from the store if it is there,
        else computed and appended to the store as soon as it finishes.

        args: passed to every call and part of no key (pickled to the workers): the job
            must name everything that changes its result.
        retries: how many more times a job that raises is tried. A job whose workers died
            is first rerun by dask's scheduler itself (distributed.scheduler.allowed-failures,
            3 by default); its KilledWorker then counts as one failed try. The scheduler
            blames every job a dying worker held, so a job that kills its worker can take
            innocent ones with it: their retry runs them again.
        keep_going: False: a job that still fails stops the sweep with its exception (the
            finished ones stay stored); True: the others finish and its place in the
            returned list holds a JobFailure.
        KeyboardInterrupt and SystemExit always stop the sweep (jobs in flight are cancelled)."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        jobs = list(jobs)
        keys = [self.key(fn, job) for job in jobs]
        todo = {}
        for k, job in zip(keys, jobs):
            if k not in self.store and k not in todo:
                todo[k] = job
        failures: Dict[str, JobFailure] = {}
        if todo:
            run = self._run_here if self.serial else self._run_on_dask
            bar = tqdm(total=len(todo), desc=desc, leave=False) if self.progress else None
            try:
                run(fn, todo, tuple(args), retries, keep_going, failures, bar)
            finally:
                if bar is not None:
                    bar.close()
        return [failures[k] if k in failures else self.store.get(k) for k in keys]

    def _run_here(self, fn, todo, args, retries, keep_going, failures, bar) -> None:
        for k, job in todo.items():
            for attempt in range(1, retries + 2):
                try:
                    result = fn(job, *args)
                except Exception as exc:
                    if attempt <= retries:
                        continue
                    if not keep_going:
                        raise
                    failures[k] = JobFailure.of(exc, attempt)
                else:
                    self.store.put(k, result)
                    break
            if bar is not None:
                bar.update(1)

    def _run_on_dask(self, fn, todo, args, retries, keep_going, failures, bar) -> None:
        wait = connect.distributed().wait
        client = self.start()
        watch = connect.WorkerWatch(client, self._cluster, self.n_workers, self.scheduler or "")

        def submit(k: str, attempt: int) -> None:
            futures[client.submit(_with_threads, fn, todo[k], args, self.threads, pure=False)] = (k, attempt)

        futures: Dict[Any, Tuple[str, int]] = {}
        for k in todo:
            submit(k, 1)
        try:
            while futures:
                try:
                    done = wait(list(futures), timeout=self.WATCH_SECONDS, return_when="FIRST_COMPLETED").done
                except TimeoutError:                    # nothing finished for a while: are there workers?
                    watch.check()
                    continue
                for future in done:
                    k, attempt = futures.pop(future)
                    if future.status == "cancelled":    # the scheduler dropped it: every job would follow
                        raise ConnectionError(f"the dask scheduler cancelled a job ({self.scheduler or 'local cluster'}"
                                              " lost?); finished jobs are stored: run again to resume")
                    try:
                        result = future.result()        # the job's exception, or a lost result's
                    except Exception as exc:
                        if attempt <= retries:
                            submit(k, attempt + 1)
                            continue
                        if not keep_going:
                            raise
                        failures[k] = JobFailure.of(exc, attempt)
                    else:
                        self.store.put(k, result)
                    if bar is not None:
                        bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
            connect.restore_environ(self._environ)
        self._client = self._cluster = None

    def __enter__(self) -> "Sweep":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
