"""Getting a dask client: a LocalCluster started here, or a running scheduler's address.

dask.distributed is imported only here, when a sweep first has a job to send out, so that
`import lowbit` and a serial sweep need no optional package.
"""
import logging
import os
import time
from typing import Optional, Tuple

from ..optional import require

log = logging.getLogger("lowbit.cluster")


def distributed():
    """dask.distributed, or an ImportError naming its Debian and pip packages."""
    return require("distributed", "python3-distributed", "distributed",
                   "sweeps on dask (lowbit capacity, lowbit study --workers / --scheduler)")


def restore_environ(saved: dict) -> None:
    """dask's nanny writes its pre-spawn variables (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, ...)
    into the environment of the process that starts the workers; they are meant for the
    workers only, and left here they would change this process's thread count later."""
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def local_cluster(n_workers: int, processes: bool, environ: Optional[dict] = None) -> Tuple[object, object]:
    """(client, cluster) of a new LocalCluster of n_workers single-threaded workers.

    environ: variables set for the worker processes before they start (dask's
    distributed.nanny.pre-spawn-environ). None: dask's (OMP_NUM_THREADS, MKL_NUM_THREADS and
    OPENBLAS_NUM_THREADS at 1) without its MALLOC_TRIM_THRESHOLD_, which makes glibc map and
    unmap every large torch allocation (a LeNet-5 retraining ran 5x slower); {}: none, the
    workers inherit this process's environment."""
    dist = distributed()
    import dask
    if environ is None:
        environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                   if k != "MALLOC_TRIM_THRESHOLD_"}
    saved = dict(os.environ)
    # worker-saturation 1: a worker holds only the job it runs (dask queues one more by
    # default), so a job that kills its worker takes no queued job down with it
    config = {"distributed.nanny.pre-spawn-environ": dict(environ), "distributed.scheduler.worker-saturation": 1.0}
    try:
        with dask.config.set(config):
            # no dashboard; the scheduler's HTTP routes on a free port, not 8787 (another
            # cluster on this machine may hold it, and dask would warn)
            cluster = dist.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                                        dashboard_address=None, silence_logs=logging.ERROR,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    finally:
        restore_environ(saved)
    return dist.Client(cluster), cluster


def scheduler_client(address: str):
    """A client of the running scheduler at `address`, or a ConnectionError (an OSError:
    one line on the command line) that names the address. How long it tries is dask's
    distributed.comm.timeouts.connect (30 s unless configured)."""
    dist = distributed()
    try:
        return dist.Client(address)
    except (OSError, ValueError, TypeError) as exc:   # timeouts are OSErrors; a malformed address, ValueError
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConnectionError(f"cannot reach the dask scheduler at {address}: {reason}") from None


class WorkerWatch:
    """Keeps a sweep from waiting forever on a cluster without workers.

    dask 2022.12's LocalCluster can lose every worker after one dies mid-job (the scheduler
    shuts down the workers it could not gather a result from, and their nannies do not
    restart them): the watch starts fresh workers then, a few times. On a running
    scheduler, which may be scaling up, it waits `patience` seconds for a worker, then
    stops the sweep with an error (the finished jobs are stored)."""
    GRACE = 15.0            # seconds without workers before a LocalCluster is revived
    REVIVALS = 3

    def __init__(self, client, cluster=None, n_workers: int = 1, address: str = "", patience: float = 300.0):
        self.client, self.cluster, self.n_workers = client, cluster, n_workers
        self.address, self.patience = address, patience
        self.last_seen, self.revivals = time.monotonic(), 0

    def check(self) -> None:
        """Call when no job finished for a while: raises, or revives, or returns."""
        if self.client.nthreads():
            self.last_seen = time.monotonic()
            return
        idle = time.monotonic() - self.last_seen
        if self.cluster is None:
            if idle > self.patience:
                raise ConnectionError(f"no dask worker at {self.address} for {idle:.0f} s; finished jobs are "
                                      "stored: start workers and run again")
            return
        if idle < self.GRACE:
            return                  # nannies may still be restarting them
        if self.revivals >= self.REVIVALS:
            raise RuntimeError(f"the LocalCluster lost all its workers {self.revivals + 1} times (a job that "
                               "kills its process?); finished jobs are stored: run again to resume")
        self.revivals += 1
        log.warning("the LocalCluster has had no worker for %.0f s: starting %d new ones", idle, self.n_workers)
        self.cluster.scale(0)
        self.cluster.scale(self.n_workers)
        self.last_seen = time.monotonic()
