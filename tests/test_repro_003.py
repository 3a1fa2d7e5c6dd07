"""benchmarks/repro_003.py end to end at --quick sizes: every figure and the table are
written, with paper 003's methods and bit widths and accuracies in range."""
import csv
import importlib
import math
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")
def test_quick_reproduction_writes_every_figure_and_the_table(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # benchmarks/ is not a package
    repro = importlib.import_module("repro_003")
    assert repro.main(["--quick", "--out", str(tmp_path)]) == 0

    for fig in (5, 6, 8, 9, 10, 11):
        assert (tmp_path / f"repro_003_fig{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"repro_003_fig{fig}.csv").stat().st_size > 0
    md = (tmp_path / "repro_003.md").read_text()
    assert "Paper:" in md and "Lloyd-Max" in md and "repro_003.py --quick" in md
    with open(tmp_path / "repro_003_table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"VBQ-GA", "VBQ-SA", "Lloyd-Max", "uniform symmetric",
                                           "power of two", "float"}
    assert {r["bits"] for r in rows} == {"3", "4", "5", "float"}
    for r in rows:
        assert 0 <= float(r["held_out"]) <= 100 and math.isfinite(float(r["calib"]))
    with open(tmp_path / "repro_003_fig8.csv", newline="") as f:
        for r in csv.DictReader(f):
            assert float(r["r2"]) <= 1.0
