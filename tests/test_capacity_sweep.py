"""Sweeps on a dask LocalCluster: results stream to a JSON-lines store and an interrupted
sweep resumes, running only the jobs that did not finish."""
import json
import threading

import pytest

import lowbit.capacity as cap

CALLS = []
_LOCK = threading.Lock()
FAIL_ON = set()


def square(job):
    """A stand-in training: records that it ran, fails on request (a crash mid-sweep)."""
    with _LOCK:
        CALLS.append(job["i"])
    if job["i"] in FAIL_ON:
        raise RuntimeError(f"worker lost on job {job['i']}")
    return {"value": job["i"] ** 2}


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_ON.clear()
    yield
    FAIL_ON.clear()


def test_sweep_resumes_after_interruption(tmp_path):
    store = tmp_path / "runs.jsonl"
    jobs = [{"i": i} for i in range(8)]
    FAIL_ON.add(5)
    with cap.Sweep(store, n_workers=1, processes=False, progress=False) as sweep:
        with pytest.raises(RuntimeError, match="worker lost on job 5"):
            sweep.map(square, jobs)
    done_first = cap.ResultStore(store)
    assert 0 < len(done_first) < 8
    # A crash while writing leaves a partial last line: it is dropped, that job reruns.
    with open(store, "a") as f:
        f.write('{"key": "half-writ')
    FAIL_ON.clear()
    CALLS.clear()
    with cap.Sweep(store, n_workers=1, processes=False, progress=False) as sweep:
        results = sweep.map(square, jobs)
    assert [r["value"] for r in results] == [i * i for i in range(8)]
    assert len(CALLS) == 8 - len(done_first)          # only the unfinished jobs ran
    assert not set(CALLS) & {json.loads(k)["job"]["i"] for k, _ in done_first.items()}
    lines = store.read_text().splitlines()
    assert len(lines) == 8 and all(json.loads(l)["result"] for l in lines)
    # everything done: a third run starts no cluster and calls nothing
    CALLS.clear()
    sweep = cap.Sweep(store, progress=False)
    assert [r["value"] for r in sweep.map(square, jobs)] == [i * i for i in range(8)]
    assert CALLS == [] and sweep._client is None


def test_tiny_memorization_sweep_on_local_cluster(tmp_path):
    spec = {"model": "fcdnn", "width": 8, "depth": 1}
    jobs = [{"spec": spec, "n": n, "hparams": {"lr": 0.05}, "seed": 0, "max_epochs": 30}
            for n in (16, 64)]
    with cap.Sweep(tmp_path / "m.jsonl", n_workers=1, processes=False, progress=False) as sweep:
        results = sweep.map(cap.memorize, jobs)
    assert results[0]["params"] == 8 * 8 + 8 + 8 * 2 + 2
    for job, r in zip(jobs, results):
        assert 0.5 <= r["accuracy"] <= 1 and r["mi"] == pytest.approx(cap.mutual_information(r["accuracy"], job["n"]))
    # same job, same seed: the same result (what makes a resumed sweep consistent)
    assert cap.memorize(jobs[1])["accuracy"] == results[1]["accuracy"]


def test_store_and_sweep_bad_input(tmp_path):
    bad = tmp_path / "other.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1: not a result record"):
        cap.ResultStore(bad)
    with pytest.raises(TypeError, match="JSON-serializable"):
        cap.job_key({"x": object()})
    with pytest.raises(ValueError, match="n_workers must be a positive integer"):
        cap.Sweep(tmp_path / "s.jsonl", n_workers=0)
    with pytest.raises(TypeError, match="scheduler must be an address"):
        cap.Sweep(tmp_path / "s.jsonl", scheduler=8786)
