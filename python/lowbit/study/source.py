"""How one model's workload reaches the process that runs its study units.

In this process a unit uses the Workload itself. A dask worker gets a WorkloadSource
(pickled with the task) and rebuilds the workload from it once per worker process:

- a shipped model name or a 'module:function' entry point is loaded again there (the
  shipped models from the worker's LOWBIT_CACHE, else trained there; entry points must be
  importable on the worker);
- an nn.Module instance is pickled, and so is in-memory data (StudyData or a dict), cut to
  the examples the study uses; data=None (Fashion-MNIST) and data entry points are loaded
  again.

The rebuilt workload must have the main process's fingerprint (the same float weights and
data), else the unit fails saying so: results computed from other weights would be
silently wrong.
"""
from collections import OrderedDict
from typing import Optional, Union

from torch import nn

from .settings import StudySettings
from .workload import StudyData, Workload, load_data, load_model

# Rebuilt workloads per worker process, by fingerprint: a worker serves many units of the
# same model. A few only, for a long-lived worker that serves many studies.
_REBUILT: "OrderedDict[tuple, Workload]" = OrderedDict()
_KEEP = 4


def _clone(split, n: int):
    """The first n examples as their own tensors: a slice would pickle its whole storage."""
    x, y = split
    return x[:n].clone(), y[:n].clone()


def _study_part(workload: Workload, s: StudySettings) -> StudyData:
    """The data cut to what this workload reads: it rebuilds the same splits."""
    d = workload.data
    train = _clone(d.train, max(s.train_size, s.calib_size))
    if d.val is not None:
        return StudyData(train=train, val=_clone(d.val, s.val_size), test=_clone(d.test, s.eval_size),
                         classes=d.classes, name=d.name)
    return StudyData(train=train, test=_clone(d.test, s.val_size + s.eval_size), classes=d.classes, name=d.name)


class WorkloadSource:
    """Picklable: what a worker needs to rebuild one model's Workload (see the module)."""

    def __init__(self, workload: Workload, settings: StudySettings, model: Union[str, nn.Module],
                 data: Union[None, str, StudyData, dict]):
        self.label, self.spec, self.fingerprint = workload.label, workload.spec, workload.fingerprint
        self.settings = settings
        self.model: Optional[nn.Module] = None if isinstance(model, str) else workload.model
        self.model_spec = model if isinstance(model, str) else None
        self.data = data if data is None or isinstance(data, str) else _study_part(workload, settings)
        self._workload: Optional[Workload] = workload     # this process: no rebuilding

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_workload"] = None
        return state

    def workload(self) -> Workload:
        if self._workload is None:
            self._workload = self._rebuilt()
        return self._workload

    def _rebuilt(self) -> Workload:
        key = (self.fingerprint, repr(self.settings))
        if key in _REBUILT:
            _REBUILT.move_to_end(key)
            return _REBUILT[key]
        if self.model is not None:
            model = self.model.eval()
        else:
            model = load_model(self.model_spec, self.settings, progress=False)[1]
        workload = Workload(self.label, self.spec, model, load_data(self.data), self.settings)
        if workload.fingerprint != self.fingerprint:
            raise RuntimeError(
                f"this worker rebuilt {self.label} with other float weights or data than the main process "
                f"(fingerprint {workload.fingerprint}, expected {self.fingerprint}): a shipped model must come "
                "from the same LOWBIT_CACHE, an entry point must return the same trained model and data on "
                "every worker")
        _REBUILT[key] = workload
        while len(_REBUILT) > _KEEP:
            _REBUILT.popitem(last=False)
        return workload
