"""`lowbit study`: run every step for every model, caching each finished step, then render
the report."""
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from torch import nn

from .. import __version__
from ..files import write_json_atomically
from . import advisor, baseline, diagnostics, packed_inference, ptq_sweep, retraining, vbq_search
from .cache import StepCache, step_key
from .context import StepContext
from .settings import StudySettings
from .workload import StudyData, Workload, load_data, load_model

# The steps, in order. Each module has NAME, TITLE, settings_of(settings) -> dict (what its
# cache key depends on) and run(ctx) -> JSON-able dict. A new step (e.g. capacity) is
# appended here; its key chains onto the earlier steps' keys (the capacity advisor is last).
STEPS = [baseline, ptq_sweep, retraining, vbq_search, packed_inference, diagnostics, advisor]
DEFAULT_MODELS = ("lenet5", "ffdnn")
SUMMARY = "study.json"


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"lowbit study: {message}", file=sys.stderr, flush=True)


def run_study(models: Iterable[Union[str, nn.Module]] = DEFAULT_MODELS,
              data: Union[None, str, StudyData, dict] = None, out: Union[str, Path] = "lowbit-report",
              settings: Optional[StudySettings] = None, quick: bool = False, fresh: bool = False,
              progress: bool = True, command: Optional[str] = None) -> Path:
    """Answer "how few bits can this model take, and with which method" for each model and
    write the report folder `out`; returns the path of its index.html.

    models: shipped names ("lenet5", "ffdnn", "vgg"; trained once and cached), entry points
        'module:function' returning a trained float nn.Module, or nn.Module instances.
    data: None (Fashion-MNIST), a StudyData / dict, or a 'module:function' returning one.
    settings: a StudySettings (default: StudySettings.quick() if quick else .full()).
    fresh: ignore finished steps cached in `out` (they are recomputed and overwritten).
    """
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
    data = load_data(data)
    cache = StepCache(out / "steps", enabled=not fresh)
    summary = {"lowbit": __version__, "command": command, "settings": settings.as_dict(),
               "data": data.name, "models": {}}
    for spec in models:
        label, model = load_model(spec, settings, progress)
        if label in summary["models"]:
            raise ValueError(f"models: {label!r} is given twice")
        spec_text = spec if isinstance(spec, str) else label
        workload = Workload(label, spec_text, model, data, settings)
        ctx = StepContext(workload, settings, out, progress)
        chain, timings, cached = [workload.fingerprint, __version__], {}, []
        for step in STEPS:
            if step.NAME in settings.skip:
                continue
            key = step_key(step.NAME, step.settings_of(settings), chain)
            chain = [key]
            result = cache.get(label, step.NAME, key, out)
            if result is not None:
                cached.append(step.NAME)
                _log(progress, f"{label}: {step.TITLE}: done before (cached)")
            else:
                _log(progress, f"{label}: {step.TITLE} ...")
                t0 = time.perf_counter()
                result = step.run(ctx)
                result["seconds"] = time.perf_counter() - t0
                cache.put(label, step.NAME, key, result)
            ctx.results[step.NAME] = result
            timings[step.NAME] = result["seconds"]
        summary["models"][label] = {"spec": spec_text, "fingerprint": workload.fingerprint,
                                    "steps": ctx.results, "cached_steps": cached, "seconds": timings}
        write_json_atomically(out / SUMMARY, summary)
    from ..report import render
    return render(out)


def study_models(names: Sequence[str]) -> list:
    """Split comma-separated model lists ('lenet5,ffdnn')."""
    return [n.strip() for item in names for n in item.split(",") if n.strip()]
