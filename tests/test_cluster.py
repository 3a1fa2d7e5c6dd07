"""lowbit.cluster's Sweep beyond what the capacity sweeps use: serial runs, retries,
keep_going (a failing job is reported, the others finish), and the watch that keeps a
sweep from waiting forever on a cluster without workers."""
import os
import threading

import pytest

from lowbit.cluster import JobFailure, ResultStore, Sweep
from lowbit.cluster.connect import WorkerWatch

CALLS = {}
_LOCK = threading.Lock()


def flaky(job):
    """Fails on its first call per job when job["fail"] is 1, on every call when it is 2."""
    with _LOCK:
        CALLS[job["i"]] = CALLS.get(job["i"], 0) + 1
        calls = CALLS[job["i"]]
    if job["fail"] == 2 or (job["fail"] == 1 and calls == 1):
        raise ValueError(f"job {job['i']} failed on call {calls}")
    return {"value": job["i"] * 10}


def add(job, offset):
    return {"value": job["i"] + offset}


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


JOBS = [{"i": 0, "fail": 0}, {"i": 1, "fail": 1}, {"i": 2, "fail": 2}, {"i": 3, "fail": 0}]


@pytest.mark.parametrize("where", ["serial", "local cluster"])
def test_retries_and_keep_going(tmp_path, where):
    kwargs = {"serial": True} if where == "serial" else {"n_workers": 1, "processes": False}
    with Sweep(tmp_path / "s.jsonl", progress=False, **kwargs) as sweep:
        out = sweep.map(flaky, JOBS, retries=1, keep_going=True)
    assert [o["value"] if isinstance(o, dict) else None for o in out] == [0, 10, None, 30]
    failed = out[2]
    assert isinstance(failed, JobFailure) and failed.attempts == 2
    assert failed.error == "ValueError: job 2 failed on call 2" and "flaky" in failed.traceback
    assert CALLS == {0: 1, 1: 2, 2: 2, 3: 1}
    assert len(ResultStore(tmp_path / "s.jsonl")) == 3          # the failure is not stored: a rerun tries it
    CALLS.clear()
    with Sweep(tmp_path / "s.jsonl", progress=False, **kwargs) as sweep:
        assert isinstance(sweep.map(flaky, JOBS, retries=1, keep_going=True)[2], JobFailure)
    assert CALLS == {2: 2}


def test_serial_sweep_raises_without_keep_going_and_passes_args(tmp_path):
    sweep = Sweep(tmp_path / "s.jsonl", serial=True, progress=False)
    with pytest.raises(ValueError, match="job 1 failed on call 1"):
        sweep.map(flaky, JOBS)
    assert [r["value"] for r in sweep.map(add, [{"i": 1}, {"i": 2}], args=(100,))] == [101, 102]
    assert sweep.start() is None                                # serial: no dask client
    with pytest.raises(ValueError, match="serial=True runs the jobs in this process"):
        Sweep(tmp_path / "t.jsonl", serial=True, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        sweep.map(add, [{"i": 1}], args=(1,), retries=-1)


class FakeClient:
    def __init__(self):
        self.workers = {}

    def nthreads(self):
        return self.workers


class FakeCluster:
    def __init__(self):
        self.scaled = []

    def scale(self, n):
        self.scaled.append(n)


def test_worker_watch_revives_a_local_cluster_then_gives_up(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("lowbit.cluster.connect.time.monotonic", lambda: now[0])
    client, cluster = FakeClient(), FakeCluster()
    watch = WorkerWatch(client, cluster, n_workers=2)
    client.workers = {"tcp://w": 1}
    watch.check()
    client.workers = {}
    now[0] += WorkerWatch.GRACE / 2
    watch.check()
    assert cluster.scaled == []                                 # its nannies may be restarting them
    for revival in range(WorkerWatch.REVIVALS):
        now[0] += WorkerWatch.GRACE + 1
        watch.check()
        assert cluster.scaled == [0, 2] * (revival + 1)
    now[0] += WorkerWatch.GRACE + 1
    with pytest.raises(RuntimeError, match="lost all its workers 4 times"):
        watch.check()


def test_worker_watch_on_a_scheduler_waits_then_stops(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("lowbit.cluster.connect.time.monotonic", lambda: now[0])
    watch = WorkerWatch(FakeClient(), None, address="tcp://h:8786", patience=60)
    now[0] = 59
    watch.check()
    now[0] = 61
    with pytest.raises(ConnectionError, match="no dask worker at tcp://h:8786 for 61 s"):
        watch.check()


def dies_once(job):
    """Kills its worker process the first time it runs (a segfault, the OOM killer), then
    succeeds; with job["always"] it kills every worker that runs it."""
    import os
    marker = job.get("marker")
    if job.get("always") or (marker and not os.path.exists(marker)):
        if marker:
            open(marker, "a").close()
        os._exit(1)
    return {"value": job["i"]}


def test_a_job_that_kills_its_worker_is_rerun_and_one_that_always_does_is_reported(tmp_path):
    import dask
    jobs = [{"i": 0}, {"i": 1, "marker": str(tmp_path / "died")}, {"i": 2, "always": True}, {"i": 3}]
    # the scheduler gives up on a job after one worker died running it (dask's default: 3
    # reruns), so the retry after a KilledWorker is what saves the job that dies once
    before = dict(os.environ)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with Sweep(tmp_path / "s.jsonl", n_workers=2, progress=False) as sweep:
            out = sweep.map(dies_once, jobs, retries=1, keep_going=True)
    assert out[0] == {"value": 0} and out[1] == {"value": 1} and out[3] == {"value": 3}
    assert isinstance(out[2], JobFailure) and out[2].error.startswith("KilledWorker")
    assert out[2].attempts == 2                 # the scheduler's reruns, then one retry
    assert len(ResultStore(tmp_path / "s.jsonl")) == 3
    assert dict(os.environ) == before           # the nannies' restarts leave no variables here
