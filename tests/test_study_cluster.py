"""`lowbit study` with its units on dask: a LocalCluster gives the serial study's results,
so does a real `dask-scheduler` and `dask-worker` started here; an interrupted cluster
study resumes without recomputing its finished units; a failing unit is retried once and
reported, and the other units finish.

Every study here is the smallest one: a 4-input MLP on three Gaussian blobs (the user
code below, written to a folder the workers import from), 6 units per model."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import lowbit as lb
from lowbit.cli import main
from lowbit.study.settings import StudySettings
from lowbit.study.unit_store import UnitStore

distributed = pytest.importorskip("distributed", reason="needs python3-distributed (dask)")

# Named apart from test_study's 'usercode': both are imported into the same test process.
USER_MODULE = "clusterusercode"
USER_CODE = textwrap.dedent('''
    import os
    from pathlib import Path

    import torch
    from torch import nn
    from lowbit.study import StudyData

    ATTEMPTS = Path(__file__).with_name("attempts.txt")   # one line per refused training

    def _blobs(n, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 3, (n,), generator=g)
        centres = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, -1.0], [0.0, 0.0, 2.0, 0.5]])
        return centres[y] + 0.6 * torch.randn(n, 4, generator=g), y

    def data():
        return StudyData(train=_blobs(600, 1), test=_blobs(400, 2), classes=["a", "b", "c"], name="blobs")

    def _trained(net):
        torch.manual_seed(0)
        x, y = _blobs(600, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(150):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        return net.eval()

    def model():
        torch.manual_seed(0)
        return _trained(nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3)))

    class RefusesTraining(nn.Sequential):
        """Fine in eval mode; raises on every training batch."""
        def forward(self, x):
            if self.training:
                with open(ATTEMPTS, "a") as f:
                    f.write("attempt\\n")
                raise RuntimeError("this model refuses to train")
            return super().forward(x)

    def refuses_training():
        net = RefusesTraining(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
        net.load_state_dict(model().state_dict())
        return net.eval()

    def different_in_every_process():
        torch.manual_seed(os.getpid())                   # other weights on every worker
        return nn.Sequential(nn.Linear(4, 3)).eval()
''')
SETTINGS = StudySettings.quick(ptq_bits=(3,), retrain_bits=(3,), schedules=("direct", "adaptive"),
                               train_size=600, epochs=1, vbq_bits=(3,), vbq_iterations=2, calib_size=100,
                               val_size=150, eval_size=250, timing_images=10)
UNITS = 3 + 2 + 1                # PTQ schemes x widths, retraining schedules, VBQ widths
# What differs between two runs of the same study: wall-clock times and the timing of the
# packed models (measured in the main process each time).
WALL_CLOCK = {"seconds", "batch1_us", "float_batch1_us", "batch1_speedup", "batch64_ms", "float_batch64_ms",
              "batch64_speedup"}


def results(out: Path, ignore=()) -> dict:
    """study.json's per-model results without wall-clock fields (nor those in `ignore`)."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in WALL_CLOCK and k not in ignore}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(json.loads((out / "study.json").read_text())["models"])


def units_of(out: Path) -> dict:
    return json.loads((out / "study.json").read_text())["units"]


def errors(out: Path) -> list:
    """Every failed unit's error (for assertion messages)."""
    models = json.loads((out / "study.json").read_text())["models"]
    return [(label, name, f["error"]) for label, m in models.items() for name, step in m["steps"].items()
            for f in step.get("failures", [])]


@pytest.fixture(scope="module")
def usercode(tmp_path_factory):
    """The folder of clusterusercode.py; the tests run from it (entry points resolve
    from the current folder, and LocalCluster workers start in it)."""
    folder = tmp_path_factory.mktemp("usercode")
    (folder / f"{USER_MODULE}.py").write_text(USER_CODE)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.syspath_prepend(str(folder))
        yield folder


def run(out: Path, model=f"{USER_MODULE}:model", **kwargs) -> Path:
    models = model if isinstance(model, list) else [model]
    lb.study.run_study(models, data=f"{USER_MODULE}:data", out=out, settings=SETTINGS, progress=False, **kwargs)
    return out


def pickled_model() -> torch.nn.Module:
    """A model given as an instance (pickled to the workers), not as an entry point."""
    torch.manual_seed(1)
    from clusterusercode import _trained
    return _trained(torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)))


@pytest.fixture(scope="module")
def serial(usercode, tmp_path_factory):
    """The serial study of both models (entry point and instance): the reference."""
    out = run(tmp_path_factory.mktemp("serial") / "r", model=[f"{USER_MODULE}:model", pickled_model()])
    assert units_of(out)["runner"] == "serial (this process)" and units_of(out)["computed"] == 2 * UNITS
    return results(out)


def test_local_cluster_of_two_workers_gives_the_serial_results(serial, tmp_path):
    environ = dict(os.environ)
    out = run(tmp_path / "r", model=[f"{USER_MODULE}:model", pickled_model()], workers=2)
    units = units_of(out)
    assert units["runner"] == "LocalCluster of 2 workers"
    assert (units["units"], units["computed"], units["failed"]) == (2 * UNITS, 2 * UNITS, 0), errors(out)
    assert results(out) == serial
    lines = (out / "steps" / "units.jsonl").read_text().splitlines()
    assert len(lines) == 2 * UNITS and len({json.loads(l)["key"] for l in lines}) == 2 * UNITS
    assert dict(os.environ) == environ        # dask's worker settings (OMP_NUM_THREADS=1, ...) not left here


# --- a real scheduler and worker, started as processes here ---------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_command(name: str) -> list:
    """dask-scheduler / dask-worker of this interpreter (`python -m`: Debian's scripts in
    /usr/bin run /usr/bin/python3, which may not see the lowbit under test)."""
    return [sys.executable, "-m", f"distributed.cli.dask_{name}"]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (dask shuts down cleanly), then SIGKILL of the process group we started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)      # the nanny's worker process too
    except ProcessLookupError:
        pass
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def scheduler(usercode, tmp_path_factory):
    """The address of a dask-scheduler with one dask-worker (its own process, importing
    the user code from its folder), both stopped after this module's tests."""
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(usercode)] + sys.path)}
    started = []
    try:
        for name, args in (("scheduler", ["--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                          "--no-dashboard", "--no-show"]),
                           ("worker", [address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                       "--local-directory", str(logs / "worker-space")])):
            log = open(logs / f"{name}.log", "w")
            started.append(subprocess.Popen(dask_command(name) + args, cwd=usercode, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
        yield address
    except Exception:
        for name in ("scheduler", "worker"):
            if (logs / f"{name}.log").exists():
                print(f"--- {name} log ---\n" + (logs / f"{name}.log").read_text()[-3000:])
        raise
    finally:
        for proc in reversed(started):
            stop(proc)


def test_study_on_a_dask_scheduler_started_here(serial, scheduler, tmp_path):
    out = run(tmp_path / "r", model=[f"{USER_MODULE}:model", pickled_model()], scheduler=scheduler)
    units = units_of(out)
    assert units["runner"] == f"dask scheduler {scheduler}"
    assert (units["computed"], units["failed"]) == (2 * UNITS, 0), errors(out)
    assert results(out) == serial


def test_interrupted_cluster_study_resumes_without_recomputing(serial, scheduler, tmp_path, monkeypatch):
    """The client stops (Ctrl-C) after 3 units arrived; the rerun computes only the rest
    (the float baseline, finished before the units, comes from the step cache)."""
    put, arrived = UnitStore.put, []

    def put_then_interrupt(self, key, result):
        put(self, key, result)
        arrived.append(key)
        if len(arrived) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(UnitStore, "put", put_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "r", scheduler=scheduler)
    store = tmp_path / "r" / "steps" / "units.jsonl"
    assert len(store.read_text().splitlines()) == 3 and not (tmp_path / "r" / "study.json").exists()
    monkeypatch.setattr(UnitStore, "put", put)

    run(tmp_path / "r", scheduler=scheduler)
    units = units_of(tmp_path / "r")
    assert (units["units"], units["reused"], units["computed"], units["failed"]) == (UNITS, 3, UNITS - 3, 0), \
        errors(tmp_path / "r")
    keys = [json.loads(l)["key"] for l in store.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == UNITS               # no finished unit was computed again
    assert keys[:3] == arrived
    resumed = results(tmp_path / "r", ignore=("cached_steps",))
    assert resumed == {"model": {k: v for k, v in serial["model"].items() if k != "cached_steps"}}


def test_failing_units_are_retried_once_and_reported(usercode, scheduler, tmp_path):
    attempts = usercode / "attempts.txt"
    attempts.unlink(missing_ok=True)
    out = run(tmp_path / "r", model=f"{USER_MODULE}:refuses_training", scheduler=scheduler)
    steps = json.loads((out / "study.json").read_text())["models"]["refuses_training"]["steps"]
    [failure] = steps["retrain"]["failures"]          # "direct" does not train: it finishes
    assert failure["unit"] == {"bits": 3, "schedule": "adaptive"} and failure["attempts"] == 2
    assert failure["error"] == "RuntimeError: this model refuses to train"
    assert "refuses to train" in failure["traceback"]
    assert len(attempts.read_text().splitlines()) == 2          # tried, then retried once
    assert [r["variant"] for r in steps["retrain"]["rows"]] == ["direct"]
    assert len(steps["ptq"]["rows"]) == 3 and len(steps["vbq"]["rows"]) == 1
    assert steps["inference"]["best"] is not None                # chosen from the units that finished
    report = (out / "report.md").read_text()
    assert "1 unit failed (retrain: RuntimeError: this model refuses to train)" in report
    assert "units that failed" in report and "schedule=adaptive" in report
    assert "units that failed" in (out / "index.html").read_text()
    assert not (out / "steps" / "refuses_training" / "retrain.json").exists()   # not cached: retried next time

    # a rerun (here serially) reads the finished steps from the step cache, the finished
    # retraining from the unit store, and tries the failed one again
    run(out, model=f"{USER_MODULE}:refuses_training")
    units = units_of(out)
    assert (units["units"], units["reused"], units["computed"], units["failed"]) == (2, 1, 1, 1)
    cached = json.loads((out / "study.json").read_text())["models"]["refuses_training"]["cached_steps"]
    # the same unit failed again, so the steps after it had the same input: cached too
    assert cached == ["baseline", "ptq", "vbq", "inference", "analysis", "advisor"]
    assert len(attempts.read_text().splitlines()) == 4


def test_worker_with_other_weights_fails_its_units_instead_of_mixing_results(scheduler, tmp_path):
    lb.study.run_study([f"{USER_MODULE}:different_in_every_process"], data=f"{USER_MODULE}:data", out=tmp_path / "r",
                       settings=SETTINGS.replace(skip=("vbq", "analysis", "advisor")), progress=False,
                       scheduler=scheduler)
    steps = json.loads((tmp_path / "r" / "study.json").read_text())["models"]["different_in_every_process"]["steps"]
    failures = steps["ptq"]["failures"] + steps["retrain"]["failures"]
    assert len(failures) == 5 and all("other float weights or data than the main process" in f["error"]
                                      for f in failures)
    assert steps["inference"]["best"] is None


# --- mistakes ----------------------------------------------------------------------------------

def one_line_error(capsys, argv, *fragments):
    try:
        code = main(argv)
    except SystemExit as exc:          # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)


def test_runner_mistakes_are_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    import dask
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lb.models, "pretrained", lambda *a, **k: pytest.fail("trained before the check"))
    one_line_error(capsys, ["study", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
                   "--scheduler", "not allowed with argument --workers")
    one_line_error(capsys, ["study", "--workers", "0"], "--workers", "positive integer")
    address = f"tcp://127.0.0.1:{free_port()}"       # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        t0 = time.perf_counter()
        one_line_error(capsys, ["study", "--scheduler", address, "--out", "r"],
                       f"lowbit study: error: cannot reach the dask scheduler at {address}")
        assert time.perf_counter() - t0 < 30
    with pytest.raises(ValueError, match="exclude each other"):
        lb.study.run_study(["lenet5"], scheduler=address, workers=2)
    with pytest.raises(ValueError, match=r"workers \(--workers\) must be a positive integer"):
        lb.study.run_study(["lenet5"], workers=0)
