"""The model and data a study works on: shipped ones by name, a user's through entry points.

A user's model entry point is `def make_model() -> nn.Module` returning a *trained* float
classifier (it is deep-copied, never changed). A data entry point is
`def make_data() -> lowbit.study.StudyData` (or a dict with the same keys): `train` and
`test` as (inputs, int64 labels) pairs, optionally `val` (else the test split is cut in
two: the first `val_size` examples to choose, the next `eval_size` to report) and
`classes` (names for the confusion grouping).
"""
import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .. import models as _models
from ..data import FASHION_MNIST_CLASSES, ShuffledBatches, load_fashion_mnist
from ..devices import module_device
from ..entry import is_entry_point, load_entry_point
from .settings import StudySettings

Split = Tuple[torch.Tensor, torch.Tensor]
SHIPPED = ("lenet5", "ffdnn", "vgg")


@dataclass
class StudyData:
    """Classification data: (inputs, labels) pairs; labels int64 class indices."""
    train: Split
    test: Split
    val: Optional[Split] = None
    classes: Optional[Sequence[str]] = None
    name: str = "data"

    def __post_init__(self):
        for split in ("train", "test", "val"):
            value = getattr(self, split)
            if value is None and split == "val":
                continue
            if not (isinstance(value, (tuple, list)) and len(value) == 2
                    and all(isinstance(t, torch.Tensor) for t in value)):
                raise TypeError(f"StudyData.{split} must be a pair (inputs, labels) of tensors")
            x, y = value
            if len(x) != len(y) or len(y) == 0:
                raise ValueError(f"StudyData.{split}: {len(x)} inputs but {len(y)} labels (need > 0, equal)")
            if y.dtype != torch.int64:
                raise TypeError(f"StudyData.{split} labels must be int64 class indices, got {y.dtype}")


def fashion_mnist() -> StudyData:
    """The default data: Fashion-MNIST, standardized as the shipped models expect."""
    return StudyData(train=load_fashion_mnist("train", normalize=True),
                     test=load_fashion_mnist("test", normalize=True),
                     classes=FASHION_MNIST_CLASSES, name="fashion-mnist")


def data_or_dict(value, what: str):
    """A dict becomes StudyData (its keys checked); anything else is returned as it is."""
    if not isinstance(value, dict):
        return value
    unknown = set(value) - {"train", "test", "val", "classes", "name"}
    if unknown or not {"train", "test"} <= set(value):
        raise ValueError(f"{what} must give keys train, test (optional val, classes, name); got {sorted(value)}")
    return StudyData(**value)


def load_data(data: Union[None, str, StudyData, dict]) -> StudyData:
    if data is None:
        return fashion_mnist()
    if isinstance(data, str):
        spec = data
        func = load_entry_point(spec, "--data")
        try:
            data = func()
        except Exception as exc:
            raise ValueError(f"--data: {spec}() failed: {type(exc).__name__}: {exc}") from exc
        data = data_or_dict(data, f"--data: {spec}()")
        if not isinstance(data, StudyData):
            raise TypeError(f"--data: {spec}() must return a StudyData or a dict with keys train, test "
                            f"(optional val, classes, name), got {type(data).__name__}")
    elif isinstance(data, dict):
        data = data_or_dict(data, "data")
    if not isinstance(data, StudyData):
        raise TypeError(f"data must be a StudyData, a dict of its fields or a 'module:function' "
                        f"returning one, got {type(data).__name__}")
    return data


def _label(spec: str) -> str:
    """A folder-safe name: 'lenet5', or the function name of an entry point."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.split(":")[-1]) or "model"


def _model_from_spec(spec: str, shipped: Callable[[str], nn.Module], returning: str) -> nn.Module:
    """A user's entry point's model (its errors wrapped into one line), or shipped(name)."""
    if is_entry_point(spec):
        func = load_entry_point(spec, "--model")
        try:
            model = func()
        except Exception as exc:
            raise ValueError(f"--model: {spec}() failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise TypeError(f"--model: {spec}() must return an nn.Module, got {type(model).__name__}")
        return model
    if spec.lower() not in SHIPPED:
        raise ValueError(f"unknown model {spec!r}: use a shipped one ({', '.join(SHIPPED)}) or "
                         f"'module:function'{returning}")
    return shipped(spec.lower())


def load_model(spec: Union[str, nn.Module], settings: StudySettings, progress: bool = True) -> Tuple[str, nn.Module]:
    """(label, trained float model in eval mode) for a shipped name or an entry point."""
    if isinstance(spec, nn.Module):
        return type(spec).__name__.lower(), spec.eval()
    if not isinstance(spec, str):
        raise TypeError(f"model must be a shipped name ({', '.join(SHIPPED)}), 'module:function' or "
                        f"an nn.Module, got {type(spec).__name__}")

    def trained(name: str) -> nn.Module:
        return _models.pretrained(name, epochs=settings.float_epochs, train_size=settings.float_train_size,
                                  seed=settings.seed, progress=progress)

    model = _model_from_spec(spec, trained, " returning a trained nn.Module")
    if is_entry_point(spec):
        return _label(spec), model.eval()
    return spec.lower(), model


def load_architecture(spec: str) -> nn.Module:
    """An instance of the model's architecture, for a file's weights to fill: a shipped
    name's model untrained (no training), or what a user's entry point returns."""
    if not isinstance(spec, str):
        raise TypeError(f"model must be a shipped name ({', '.join(SHIPPED)}) or 'module:function', "
                        f"got {type(spec).__name__}")
    return _model_from_spec(spec, _models.build_model, "")


def _take(split: Split, start: int, size: int, what: str, option: str) -> Split:
    x, y = split
    if start + size > len(y):
        raise ValueError(f"{option}: need {start + size} {what} examples, the data has {len(y)}; "
                         "pass smaller sizes")
    return x[start:start + size], y[start:start + size]


class Workload:
    """One model with the data cut to the study's sizes, plus helpers every step needs."""

    def __init__(self, label: str, spec: str, model: nn.Module, data: StudyData, settings: StudySettings):
        self.label, self.spec, self.model, self.data = label, spec, model, data
        s = settings
        self.device = torch.device(s.device)   # where scores() measures; checked by StudySettings
        self._moved: Dict[Tuple[str, str], Split] = {}
        self.train = _take(data.train, 0, s.train_size, "training", "train_size (--train-size)")
        self.calib = _take(data.train, 0, s.calib_size, "training", "calib_size (--calib-size)")
        if data.val is not None:
            self.val = _take(data.val, 0, s.val_size, "validation", "val_size (--val-size)")
            self.eval = _take(data.test, 0, s.eval_size, "test", "eval_size (--eval-size)")
        else:
            self.val = _take(data.test, 0, s.val_size, "test", "val_size (--val-size)")
            self.eval = _take(data.test, s.val_size, s.eval_size, "test",
                              "val_size + eval_size (--val-size, --eval-size)")
        with torch.no_grad():
            classes = int(model(self.eval[0][:2]).shape[1])
        self.classes = list(data.classes) if data.classes else [str(i) for i in range(classes)]
        if len(self.classes) != classes:
            raise ValueError(f"data has {len(self.classes)} class names, the model {classes} outputs")
        self.fingerprint = self._fingerprint(spec)

    def _fingerprint(self, spec: str) -> str:
        """Changes when the float weights or any data the study uses change."""
        h = hashlib.sha1(spec.encode())
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        for x, y in (self.train, self.calib, self.val, self.eval):
            h.update(x.contiguous().numpy().tobytes())
            h.update(y.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def split_on(self, split: str, device: torch.device) -> Split:
        """A split's tensors on device (moved once, then kept)."""
        x, y = getattr(self, split)
        if device.type == "cpu":
            return x, y
        key = (split, str(device))
        if key not in self._moved:
            self._moved[key] = (x.to(device), y.to(device))
        return self._moved[key]

    def accuracy(self, model: nn.Module, split: str, device: Optional[torch.device] = None) -> float:
        """Top-1 accuracy in percent on a split: where the model is, or on `device` (a copy
        of the model moved there when it lies elsewhere; the model itself never moves)."""
        here = module_device(model)
        if device is not None and device != here:
            model, here = copy.deepcopy(model).to(device), device
        return _models.accuracy(model, *self.split_on(split, here))

    def scores(self, model: nn.Module) -> dict:
        """Validation and report accuracies, measured on the study's device."""
        return {"val_accuracy": self.accuracy(model, "val", self.device),
                "test_accuracy": self.accuracy(model, "eval", self.device)}

    def batches(self, batch_size: int, seed: int) -> ShuffledBatches:
        return ShuffledBatches(*self.train, batch_size=batch_size, seed=seed)
