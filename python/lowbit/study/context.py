"""What every study step receives, and the helpers the steps share: measuring a quantized
model, choosing the best result, and getting a result's model back."""
import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from torch import nn

from ..analysis.sizes import lzma_size
from ..analysis.sweep import FLOAT, SweepRow, knee_bits
from ..ptq import ptq
from ..serialize import load_quantized, save_quantized, to_bytes
from .settings import StudySettings
from .workload import Workload

# Result rows of the accuracy steps (ptq, retrain, vbq) share these fields.
ROW_FIELDS = ("method", "variant", "label", "scheme", "bits", "val_accuracy", "test_accuracy",
              "float32_bytes", "packed_bytes", "packed_lzma_bytes", "artifact", "seconds")
ACCURACY_STEPS = ("ptq", "retrain", "vbq")


@dataclass
class StepContext:
    workload: Workload
    settings: StudySettings
    root: Optional[Path]            # the report folder (None in a study unit on a worker)
    progress: bool = True
    results: Dict[str, dict] = field(default_factory=dict)   # earlier steps' results

    @property
    def float_model(self) -> nn.Module:
        return self.workload.model

    @functools.cached_property
    def float32_bytes(self) -> int:
        return len(to_bytes(self.float_model, pack=False))

    def artifact_name(self, name: str, under: Optional[str] = "models") -> str:
        """The report-relative path of a file this step writes (under <model>/<under>/)."""
        return f"{self.workload.label}/{under}/{name}" if under else f"{self.workload.label}/{name}"

    def artifact(self, name: str, under: Optional[str] = "models") -> str:
        """artifact_name, with its folder made in the report folder."""
        rel = self.artifact_name(name, under)
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        return rel

    def model_file(self, model: nn.Module, name: str, under: Optional[str] = "models",
                   **metadata) -> Tuple[str, bytes]:
        """(report-relative path, the bytes save_model would write there): what a study unit
        returns, since a worker may not see the report folder."""
        return self.artifact_name(name, under), to_bytes(model, {"model": self.workload.spec, **metadata})

    def save_model(self, model: nn.Module, name: str, under: Optional[str] = "models", **metadata) -> str:
        rel = self.artifact(name, under)
        save_quantized(model, self.root / rel, metadata={"model": self.workload.spec, **metadata})
        return rel

    def measure(self, quantized: nn.Module, **fields) -> dict:
        """A result row: accuracies on the validation and report splits, real sizes."""
        packed = to_bytes(quantized)     # the file save_quantized writes
        row = dict(fields)
        row.update(self.workload.scores(quantized))
        row.update(float32_bytes=self.float32_bytes, packed_bytes=len(packed), packed_lzma_bytes=lzma_size(packed))
        row.setdefault("artifact", None)
        return row

    def rows(self) -> List[dict]:
        """Every accuracy row computed so far (PTQ, retraining, VBQ)."""
        return [r for step in ACCURACY_STEPS for r in self.results.get(step, {}).get("rows", [])]

    def load(self, row: dict) -> nn.Module:
        """The quantized model of a result row (PTQ is recomputed, the others are loaded)."""
        if row.get("artifact"):
            return load_quantized(self.root / row["artifact"], copy.deepcopy(self.float_model)).eval()
        if row["method"] == "ptq":
            return ptq(self.float_model, row["scheme"], row["bits"]).eval()
        raise ValueError(f"result {row['label']} at {row['bits']} bits has no saved model")


def choose_best(rows: List[dict], float_val: float, max_drop: float, scheme: Optional[str] = None) -> Optional[dict]:
    """The fewest bits whose best result stays within `max_drop` points of float on the
    validation split, and at those bits the most accurate (then smallest) result. When no
    result is that close, the most accurate one. scheme: only rows of that scheme."""
    rows = [r for r in rows if scheme is None or r["scheme"] == scheme]
    if not rows:
        return None
    ok = [r for r in rows if r["val_accuracy"] >= float_val - max_drop]
    if ok:
        fewest = min(r["bits"] for r in ok)
        pick = max((r for r in ok if r["bits"] == fewest),
                   key=lambda r: (r["val_accuracy"], -r["packed_bytes"]))
        return dict(pick, within_max_drop=True)
    pick = max(rows, key=lambda r: (r["val_accuracy"], -r["bits"], -r["packed_bytes"]))
    return dict(pick, within_max_drop=False)


def knees(rows: List[dict], float_test: float, max_drop: float) -> Dict[str, Optional[int]]:
    """Per result label: paper 004's knee (lowest bits with every wider width within
    max_drop of float), on the report split."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    sweep = [SweepRow(FLOAT, 32, float_test, None)] + [
        SweepRow(r["label"], r["bits"], r["test_accuracy"], None) for r in rows]
    return {label: knee_bits(sweep, label, max_drop) for label in labels}
