"""benchmarks/repro_002.py: the protocol pieces (the paper's convergence rule, the paired
statistics) on scripted inputs, and the whole reproduction end to end at --quick sizes:
every file is written with paper 002's methods and bit widths, and a second run resumes
from the stored units instead of training again."""
import csv
import importlib
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FORTUNES = "/usr/share/games/fortunes"

ADAPTIVE = {"Float", "Direct", "Conventional", "Conventional + search", "Adaptive"}
# table -> (methods, bit widths) its CSV must hold at --quick sizes; "float": the float model
EXPECTED = {
    1: (ADAPTIVE, {"float", "2"}),
    2: ({"Float", "Conventional", "Adaptive", "Gradual", "Adaptive & Gradual"},
        {"float", "6", "5", "4", "3", "2"}),
    3: (ADAPTIVE, {"float", "2"}),
    4: (ADAPTIVE, {"float", "2"}),
}


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # benchmarks/ is not a package
    return lambda name: importlib.import_module(name)


def test_converge_halves_after_patience_and_stops_at_the_floor(bench):
    T = bench("_repro_train")
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scores = iter([1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])
    seen_lr = []

    def train(m, opt):
        seen_lr.append(opt.param_groups[0]["lr"])
        with torch.no_grad():
            m.weight.add_(1.0)

    out = T.converge(model, train, optimizer, lambda m: next(scores), lr=0.4, floor=0.1,
                     patience=2, max_epochs=50)
    # improves at epochs 0, 1; 2 stale -> 0.2; 2 stale -> 0.1 (the floor); improves at
    # epoch 6; 2 stale at the floor: stop
    assert out["stop"] == "floor" and out["epochs"] == 9
    assert seen_lr == [0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1, 0.1] == out["lrs"]
    assert out["best_epoch"] == 6 and out["best_val"] == 3
    capped = T.converge(nn.Linear(2, 1), lambda m, o: None, torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0),
                        lambda m: 0.0, lr=1.0, floor=0.001, patience=100, max_epochs=3)
    assert capped["stop"] == "cap" and capped["epochs"] == 3


def test_converge_restores_the_best_state(bench):
    T = bench("_repro_train")
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)

    def train(m, opt):
        with torch.no_grad():
            m.weight.add_(1.0)

    # score peaks when the weight is 2
    out = T.converge(model, train, torch.optim.SGD(model.parameters(), lr=1.0),
                     lambda m: -abs(float(m.weight) - 2.0), lr=1.0, floor=1.0, patience=2, max_epochs=20)
    assert out["epochs"] == 4 and float(model.weight) == 2.0


def test_paired_t_and_holm(bench):
    S = bench("_stats")
    t = S.paired_t([1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5)
    # mean 3, sd sqrt(2.5), t(0.975, 4 df) = 2.776445
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert t.df == 4 and t.mean == 3.0
    assert t.ci_low == pytest.approx(3 - half, abs=1e-5) and t.ci_high == pytest.approx(3 + half, abs=1e-5)
    assert 0 < t.p < 0.05 and t.significant
    one = S.paired_t([1.0], [0.5])
    assert one.mean == 0.5 and one.ci_low is None and not one.significant
    assert S.holm([0.01, 0.04, 0.03, None]) == [True, False, False, None]
    assert S.holm([0.001, 0.02, 0.04]) == [True, True, True]


@pytest.mark.skipif(not (os.path.isdir(FASHION_MNIST) and os.path.isdir(FORTUNES)),
                    reason="needs dataset-fashion-mnist and fortunes")
def test_quick_reproduction_writes_every_file_and_resumes(tmp_path, bench, monkeypatch):
    repro = bench("repro_002")
    args = ["--quick", "--seeds", "2", "--workers", "1", "--out", str(tmp_path)]
    assert repro.main(args) == 0

    png = tmp_path / "repro_002_fig2.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "repro_002.md").read_text()
    assert "repro_002.py --quick --seeds 2" in md and "Claims and verdicts" in md
    assert "Conventional + search" in md and "95 % CI" in md and "cores" in md
    for n, (methods, bits) in EXPECTED.items():
        assert f"## Table {n}" in md
        with open(tmp_path / f"repro_002_table{n}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["method"] for r in rows} == methods
        assert {r["bits"] for r in rows} == bits
        for r in rows:
            value = float(r["ours_mean"])
            assert math.isfinite(value)
            assert value > 0 if n == 4 else 0 <= value <= 100
            assert r["n_seeds"] == "2" and r["ours_std"] != ""
            if r["paper"]:
                assert math.isfinite(float(r["paper"]))
    with open(tmp_path / "repro_002_steps.csv", newline="") as f:
        steps = list(csv.DictReader(f))
    assert "output.weight" in {r["layer"] for r in steps}          # the output layer is quantized
    assert "decoder.weight" in {r["layer"] for r in steps}
    with open(tmp_path / "repro_002_comparisons.csv", newline="") as f:
        comparisons = list(csv.DictReader(f))
    assert all(r["n_seeds"] == "2" and r["ci95_low"] for r in comparisons)
    with open(tmp_path / "repro_002_claims.csv", newline="") as f:
        verdicts = [r["verdict"] for r in csv.DictReader(f)]
    assert verdicts and all(v.split(":")[0].split(" (")[0] in
                            ("reproduced", "not reproduced", "not testable here", "met", "not met")
                            for v in verdicts)

    # resume: every unit is read from the store, nothing trains again
    runs = (tmp_path / "repro_002_runs.jsonl").read_text()
    T = bench("_repro_train")
    monkeypatch.setattr(T, "run_job", lambda job: pytest.fail(f"trained again: {job}"))
    assert repro.main(args) == 0
    assert (tmp_path / "repro_002_runs.jsonl").read_text() == runs
