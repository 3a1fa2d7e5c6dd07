"""The study's independent units: one PTQ width (scheme x bits), one retraining (bits x
schedule), one VBQ search (bits). They run on lowbit.cluster's Sweep (here, on a
LocalCluster or on a dask scheduler, see runner.py), all units of all models at once.

A unit step is a module with, besides NAME, TITLE and settings_of (its step's cache key):
    units(settings) -> [unit dict]             the step's units, in the step's order
    unit_settings(settings) -> dict            what one unit depends on beyond itself
    run_unit(ctx, unit) -> dict                 {"row": ..., "files": {path: bytes}, ...}
    assemble([unit result]) -> step result      in units() order, failed units left out

A unit's key is its step, unit_settings, the unit, the workload's fingerprint (float
weights and data) and lowbit's version; its seed comes from the settings, never from its
position, so units give the same results in any order and on any worker. Each finished
unit is stored as it arrives (unit_store.py). A unit that raises, or whose worker dies, is
tried once more; if it fails again the step lists it under "failures" with its error, the
other units finish, the step is not cached (a rerun tries the failed units again) and the
steps after it are keyed on the failures too.
"""
import time
from typing import Callable, Dict, List

from .. import __version__
from ..cluster import JobFailure, Sweep
from . import ptq_sweep, retraining, vbq_search
from .cache import StepCache, step_key
from .context import StepContext
from .model_run import ModelRun
from .settings import StudySettings
from .source import WorkloadSource

UNIT_STEPS = {m.NAME: m for m in (ptq_sweep, retraining, vbq_search)}
RETRIES = 1


def _units(n: int) -> str:
    return f"{n} unit" if n == 1 else f"{n} units"


def is_unit_step(step) -> bool:
    return step.NAME in UNIT_STEPS


def unit_job(step, run: ModelRun, settings: StudySettings, unit: dict) -> dict:
    """The JSON job of one unit: everything its result depends on (its key)."""
    return {"step": step.NAME, "model": run.label, "fingerprint": run.workload.fingerprint,
            "lowbit": __version__, "settings": step.unit_settings(settings), "unit": unit}


def run_unit(job: dict, sources: Dict[str, WorkloadSource]) -> dict:
    """One unit, wherever it runs (a dask worker or this process): its step's run_unit
    on the workload its source gives, without progress bars (the main process shows one)."""
    source = sources[job["fingerprint"]]
    ctx = StepContext(source.workload(), source.settings, root=None, progress=False)
    t0 = time.perf_counter()
    result = UNIT_STEPS[job["step"]].run_unit(ctx, job["unit"])
    return {**result, "seconds": time.perf_counter() - t0}


def run_unit_steps(runs: List[ModelRun], steps: list, sweep: Sweep, settings: StudySettings, cache: StepCache,
                   log: Callable[[str], None]) -> dict:
    """Run consecutive unit steps for every model: cached steps are read, the units of the
    others go to the sweep together (one progress bar), and each step's result is
    assembled from its units in their fixed order. Returns the unit counts."""
    todo = []                                   # (run, step, step key, jobs)
    for run in runs:
        for step in steps:
            key = step_key(step.NAME, step.settings_of(settings), run.chain)
            run.chain = [key]
            cached = cache.get(run.label, step.NAME, key, run.ctx.root)
            if cached is not None:
                log(f"{run.label}: {step.TITLE}: done before (cached)")
                run.record(step, cached, cached=True)
                continue
            run.reserve(step)
            todo.append((run, step, key, [unit_job(step, run, settings, u) for u in step.units(settings)]))
    jobs = [job for *_, js in todo for job in js]
    reused = sum(sweep.key(run_unit, job) in sweep.store for job in jobs)
    counts = {"units": len(jobs), "reused": reused, "computed": len(jobs) - reused, "failed": 0, "seconds": 0.0}
    if not jobs:
        return counts
    for run, step, _, js in todo:
        log(f"{run.label}: {step.TITLE}: {_units(len(js))}")
    sources = {run.workload.fingerprint: run.source for run, *_ in todo}
    t0 = time.perf_counter()
    results = sweep.map(run_unit, jobs, desc="study units", args=(sources,), retries=RETRIES, keep_going=True)
    counts["seconds"] = time.perf_counter() - t0
    at, failed_keys = 0, {}
    for run, step, key, js in todo:
        mine, at = results[at:at + len(js)], at + len(js)
        failed = [(job, r) for job, r in zip(js, mine) if isinstance(r, JobFailure)]
        done = [r for r in mine if not isinstance(r, JobFailure)]
        result = step.assemble(done)
        result["seconds"] = sum(r["seconds"] for r in done)     # the units' own times: on a cluster they overlap
        if failed:
            result["failures"] = [{"unit": job["unit"], **f.as_dict(), "traceback": f.traceback[-4000:]}
                                  for job, f in failed]
            counts["failed"] += len(failed)
            failed_keys.setdefault(run.label, []).extend(sweep.key(run_unit, job) for job, _ in failed)
            log(f"{run.label}: {step.TITLE}: {len(failed)} of {_units(len(js))} failed (first: {failed[0][1].error})")
        else:
            cache.put(run.label, step.NAME, key, result)
        run.record(step, result, cached=False)
    for run in runs:            # the steps after these are computed from incomplete results
        if run.label in failed_keys:
            run.chain = run.chain + [{"failed units": sorted(failed_keys[run.label])}]
    return counts
