"""benchmarks/repro_capacity.py end to end at --quick sizes (dask workers as threads):
every table and figure is written with the paper's numbers beside ours, and a second
run resumes from the stored trainings instead of training again."""
import csv
import importlib
import math
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")
def test_quick_reproduction_writes_everything_and_resumes(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # benchmarks/ is not a package
    repro = importlib.import_module("repro_capacity")
    args = ["--quick", "--workers", "1", "--threads", "--out", str(tmp_path)]
    assert repro.main(args) == 0
    for name in ("curves", "quantization", "surface"):
        assert (tmp_path / f"repro_capacity_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "repro_capacity.md").read_text()
    assert "--quick" in md and "2.3" in md and "6 / 8 / 10 bits" in md
    with open(tmp_path / "repro_capacity_capacity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"].split("(")[0].split(" ")[0] for r in rows} == {"FCDNN", "CNN", "LSTM"}
    for r in rows:
        assert math.isfinite(float(r["bits_per_param"])) and float(r["paper_bits_per_param"]) > 0
    with open(tmp_path / "repro_capacity_quantization.csv", newline="") as f:
        quant = list(csv.DictReader(f))
    assert {r["bits"] for r in quant} == {"float", "8", "6", "5", "4", "3", "2"}
    assert {r["capacity"] for r in quant} == {"full", "half"}
    runs = (tmp_path / "repro_capacity_runs.jsonl").read_text().splitlines()
    # resume: nothing is trained again, the store does not grow
    calls = []
    import lowbit.capacity as cap
    monkeypatch.setattr(cap.Sweep, "_run", lambda self, fn, todo, desc: calls.append(len(todo)))
    assert repro.main(args) == 0
    assert calls == [] and (tmp_path / "repro_capacity_runs.jsonl").read_text().splitlines() == runs
