"""`lowbit study`: run every step for every model, caching each finished step, then render
the report."""
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from torch import nn

from .. import __version__
from ..files import write_json_atomically
from . import advisor, baseline, diagnostics, packed_inference, ptq_sweep, retraining, vbq_search
from .cache import StepCache, step_key
from .context import StepContext
from .model_run import ModelRun
from .runner import Runner
from .settings import StudySettings
from .source import WorkloadSource
from .unit_store import UNITS_FILE, UnitStore
from .units import is_unit_step, run_unit_steps
from .workload import StudyData, Workload, load_data, load_model

# The steps, in order. Each module has NAME, TITLE, settings_of(settings) -> dict (what its
# cache key depends on) and either run(ctx) -> JSON-able dict (it runs in this process) or
# the unit functions of units.py (its units run wherever the study's runner sends them).
# A new step (e.g. capacity) is appended here; its key chains onto the earlier steps' keys
# (the capacity advisor is last).
STEPS = [baseline, ptq_sweep, retraining, vbq_search, packed_inference, diagnostics, advisor]
DEFAULT_MODELS = ("lenet5", "ffdnn")
SUMMARY = "study.json"


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"lowbit study: {message}", file=sys.stderr, flush=True)


def _phases(settings: StudySettings) -> List[tuple]:
    """The steps not skipped, cut into runs of (unit steps?, [steps]) in their order: the
    units of consecutive unit steps run together, for every model at once."""
    phases = []
    for step in STEPS:
        if step.NAME in settings.skip:
            continue
        units = is_unit_step(step)
        if phases and phases[-1][0] == units:
            phases[-1][1].append(step)
        else:
            phases.append((units, [step]))
    return phases


def _run_step(run: ModelRun, step, settings: StudySettings, cache: StepCache, progress: bool) -> None:
    """A step that runs in this process (its result cached as it finishes)."""
    key = step_key(step.NAME, step.settings_of(settings), run.chain)
    run.chain = [key]
    result = cache.get(run.label, step.NAME, key, run.ctx.root)
    if result is not None:
        _log(progress, f"{run.label}: {step.TITLE}: done before (cached)")
        run.record(step, result, cached=True)
        return
    _log(progress, f"{run.label}: {step.TITLE} ...")
    t0 = time.perf_counter()
    result = step.run(run.ctx)
    result["seconds"] = time.perf_counter() - t0
    cache.put(run.label, step.NAME, key, result)
    run.record(step, result, cached=False)


def run_study(models: Iterable[Union[str, nn.Module]] = DEFAULT_MODELS,
              data: Union[None, str, StudyData, dict] = None, out: Union[str, Path] = "lowbit-report",
              settings: Optional[StudySettings] = None, quick: bool = False, fresh: bool = False,
              progress: bool = True, command: Optional[str] = None, scheduler: Optional[str] = None,
              workers: Optional[int] = None) -> Path:
    """Answer "how few bits can this model take, and with which method" for each model and
    write the report folder `out`; returns the path of its index.html.

    models: shipped names ("lenet5", "ffdnn", "vgg"; trained once and cached), entry points
        'module:function' returning a trained float nn.Module, or nn.Module instances.
    data: None (Fashion-MNIST), a StudyData / dict, or a 'module:function' returning one.
    settings: a StudySettings (default: StudySettings.quick() if quick else .full()).
    fresh: ignore finished steps and units cached in `out` (they are recomputed and overwritten).
    scheduler / workers: where the independent units (PTQ widths, retrainings, VBQ
        searches) run: None / None, here one after another; workers=N, a LocalCluster of
        N processes; scheduler="tcp://host:8786", a running dask cluster. The results are
        the same; the float baselines, packed-inference timing and the report stay here.
    """
    runner = Runner(scheduler, workers)
    settings = settings or (StudySettings.quick() if quick else StudySettings.full())
    if not isinstance(settings, StudySettings):
        raise TypeError(f"settings must be a StudySettings, got {type(settings).__name__}")
    models = list(models)
    if not models:
        raise ValueError("models must name at least one model")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out (--out) must be a folder, but {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    cache = StepCache(out / "steps", enabled=not fresh)
    store = UnitStore(out / "steps" / UNITS_FILE, out, fresh=fresh)
    with runner.sweep(store, progress) as sweep:
        if runner.scheduler:
            sweep.start()           # an unreachable scheduler fails now, before any training
        study_data = load_data(data)
        runs = []
        for spec in models:
            label, model = load_model(spec, settings, progress)
            if any(r.label == label for r in runs):
                raise ValueError(f"models: {label!r} is given twice")
            spec_text = spec if isinstance(spec, str) else label
            workload = Workload(label, spec_text, model, study_data, settings)
            runs.append(ModelRun(label, spec_text, StepContext(workload, settings, out, progress),
                                 WorkloadSource(workload, settings, spec, data),
                                 chain=[workload.fingerprint, __version__]))
        units = {"runner": runner.describe(), "units": 0, "reused": 0, "computed": 0, "failed": 0,
                 "seconds": 0.0}
        for unit_phase, steps in _phases(settings):
            if unit_phase:
                _log(progress, f"units run on: {runner.describe()}")
                counts = run_unit_steps(runs, steps, sweep, settings, cache, lambda m: _log(progress, m))
                for k, v in counts.items():
                    units[k] += v
                continue
            for run in runs:
                for step in steps:
                    _run_step(run, step, settings, cache, progress)
    summary = {"lowbit": __version__, "command": command, "settings": settings.as_dict(),
               "data": study_data.name, "units": units, "models": {r.label: r.summary() for r in runs}}
    write_json_atomically(out / SUMMARY, summary)
    from ..report import render
    return render(out)


def study_models(names: Sequence[str]) -> list:
    """Split comma-separated model lists ('lenet5,ffdnn')."""
    return [n.strip() for item in names for n in item.split(",") if n.strip()]
