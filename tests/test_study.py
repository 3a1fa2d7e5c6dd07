"""`lowbit study` end to end on a tiny budget, its step cache, its choice of the best result,
and a user's own model and data through entry points."""
import csv
import json
import os
import re
import textwrap
from pathlib import Path

import pytest
import torch

import lowbit as lb
from lowbit.cli import main
from lowbit.study.cache import StepCache
from lowbit.study.context import choose_best
from lowbit.study.settings import StudySettings

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")

# A study small enough for the test suite: a LeNet-5 trained on 2000 images for one epoch,
# every step at its smallest useful size.
TINY = ["--float-train-size", "2000", "--float-epochs", "1", "--ptq-bits", "8,4,2", "--retrain-bits", "2",
        "--train-size", "500", "--epochs", "1", "--vbq-bits", "3", "--vbq-iterations", "2", "--calib-size", "100",
        "--val-size", "300", "--eval-size", "500", "--timing-images", "10", "--no-progress"]
STEP_NAMES = ["baseline", "ptq", "retrain", "vbq", "inference", "analysis", "advisor"]


def referenced_files(html: str):
    return re.findall(r'(?:src|href)="([^"#:]+)"', html)


def check_complete_report(out: Path, figures: int = 5):
    html = (out / "index.html").read_text()
    refs = referenced_files(html)
    assert sum(r.endswith(".png") for r in refs) == figures and sum(r.endswith(".csv") for r in refs) >= 4
    for ref in refs:                       # every image and table the page points at exists
        path = out / ref
        assert path.is_file() and path.stat().st_size > 0, ref
        if ref.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", ref
    md = (out / "report.md").read_text()
    for ref in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (out / ref).is_file(), ref
    return html


@needs_fmnist
def test_quick_study_end_to_end_then_resumes_from_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    args = ["study", "--quick", "--model", "lenet5", "--out", str(out)] + TINY
    assert main(args) == 0
    assert "report:" in capsys.readouterr().out
    html = check_complete_report(out)
    for fig in ("accuracy", "size", "speed", "bit_efficiency", "grouping"):
        assert f"lenet5/{fig}.png" in html

    summary = json.loads((out / "study.json").read_text())
    steps = summary["models"]["lenet5"]["steps"]
    assert list(steps) == STEP_NAMES and summary["models"]["lenet5"]["cached_steps"] == []
    assert summary["command"].startswith("lowbit study --quick")
    rows = [r for s in ("ptq", "retrain", "vbq") for r in steps[s]["rows"]]
    assert {(r["method"], r["bits"]) for r in rows} == {("ptq", 8), ("ptq", 4), ("ptq", 2), ("retrain", 2),
                                                        ("vbq", 3)}
    assert {r["variant"] for r in steps["retrain"]["rows"]} == {"direct", "conventional", "adaptive", "gradual"}
    for r in rows:
        assert 0 <= r["test_accuracy"] <= 100 and r["packed_bytes"] < r["float32_bytes"]

    # The answer follows the documented rule, recomputed here from the rows.
    base = steps["baseline"]
    best = steps["inference"]["best"]
    ok = [r for r in rows if r["val_accuracy"] >= base["val_accuracy"] - 1.0]
    if ok:
        assert best["bits"] == min(r["bits"] for r in ok)
        assert best["val_accuracy"] == max(r["val_accuracy"] for r in ok if r["bits"] == best["bits"])
    else:
        assert best["val_accuracy"] == max(r["val_accuracy"] for r in rows)

    # The packed model file holds the chosen result: same accuracy on the quoted split.
    chosen = steps["inference"]["models"][0]
    assert chosen["role"] == "chosen" and chosen["file"] == "lenet5/best.lbq"
    x, y = lb.data.load_fashion_mnist("test", normalize=True)
    x, y = x[300:800], y[300:800]
    loaded = lb.load_quantized(out / "lenet5" / "best.lbq", lb.models.LeNet5())
    assert lb.models.accuracy(loaded, x, y) == pytest.approx(best["test_accuracy"])
    assert chosen["packed_bytes"] < chosen["float_bytes"] and chosen["batch1_speedup"] > 0
    assert chosen["modules"], "the report names the packed modules the chosen model runs on"
    if best["scheme"] != "pow2":           # the shift kernels are always shown too
        assert [m["mode"] for m in steps["inference"]["models"]] == ["auto", "shift"]

    with open(out / "lenet5" / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) + 1 and table[0]["method"] == "float32"

    # The capacity advisor's bits (2000 training images, 10 classes) beside the measured answer.
    ref = lb.capacity.advise_bits(lb.models.LeNet5(), 2000, num_classes=10)
    assert steps["advisor"]["n_samples"] == 2000 and steps["advisor"]["bits"] == ref.bits
    assert steps["advisor"]["utilization"] == pytest.approx(ref.utilization)
    with open(out / "lenet5" / "advisor.csv", newline="") as f:
        advice = {r["layer kind"]: r for r in csv.DictReader(f)}
    assert {k: int(advice[k]["advised bits"]) for k in ("fc", "conv")} == ref.bits
    assert advice["output (fc)"]["advised bits"] == "float"
    if best["within_max_drop"]:
        assert advice["fc"]["study: fewest bits (method)"] == f"{best['bits']} ({best['label']})"
    assert "lenet5/advisor.csv" in html and "bit-width advisor" in (out / "report.md").read_text()

    # A rerun with the same settings computes nothing; a changed retraining setting redoes
    # retraining and what depends on it, and keeps the float baseline and the PTQ sweep.
    assert main(args) == 0
    again = json.loads((out / "study.json").read_text())["models"]["lenet5"]
    assert again["cached_steps"] == STEP_NAMES
    assert main(args[:-1] + ["--lr", "0.0005", "--no-progress"]) == 0
    changed = json.loads((out / "study.json").read_text())["models"]["lenet5"]
    assert changed["cached_steps"] == ["baseline", "ptq"]      # (the advisor chains after retraining)
    check_complete_report(out)

    # `lowbit report` re-renders from study.json alone.
    (out / "index.html").unlink()
    assert main(["report", str(out)]) == 0
    check_complete_report(out)


USER_CODE = textwrap.dedent('''
    import torch
    from torch import nn
    from lowbit.study import StudyData

    def _blobs(n, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 3, (n,), generator=g)
        centres = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, -1.0], [0.0, 0.0, 2.0, 0.5]])
        return centres[y] + 0.6 * torch.randn(n, 4, generator=g), y

    def data():
        return StudyData(train=_blobs(600, 1), test=_blobs(400, 2), classes=["a", "b", "c"], name="blobs")

    def data_dict():
        return {"train": _blobs(600, 1), "test": _blobs(400, 2)}

    def model():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
        x, y = _blobs(600, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(150):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        return net.eval()

    def not_a_model():
        return 42
''')


def run_user_study(tmp_path, monkeypatch, out: str):
    """The smallest whole study, on USER_CODE's model and data as entry points: (its
    index.html, the settings it ran with)."""
    (tmp_path / "usercode.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    settings = StudySettings.quick(ptq_bits=(8, 3), retrain_bits=(3,), schedules=("direct", "adaptive"),
                                   train_size=600, epochs=1, vbq_bits=(3,), vbq_iterations=2, calib_size=100,
                                   val_size=150, eval_size=250, timing_images=10)
    index = lb.study.run_study(["usercode:model"], data="usercode:data", out=tmp_path / out,
                               settings=settings, progress=False)
    return index, settings


def test_user_model_and_data_as_entry_points(tmp_path, monkeypatch):
    index, settings = run_user_study(tmp_path, monkeypatch, "r")
    check_complete_report(tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "study.json").read_text())
    steps = summary["models"]["model"]["steps"]
    assert summary["data"] == "blobs" and steps["baseline"]["classes"] == ["a", "b", "c"]
    assert steps["baseline"]["test_accuracy"] > 90      # the blobs are easy
    assert steps["inference"]["best"] is not None
    assert index.name == "index.html"
    meta = lb.serialize.read_metadata(tmp_path / "r" / "model" / "best.lbq")
    assert meta["model"] == "usercode:model"
    # the report lists every parameter of the chosen model: quantized, or float and why
    chosen = next(m for m in steps["inference"]["models"] if m["role"] == "chosen")
    assert [r["name"] for r in chosen["coverage"]] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(r["quantized"] or r["reason"] for r in chosen["coverage"])
    assert "model/coverage.csv" in referenced_files((tmp_path / "r" / "index.html").read_text())

    # the same model through a file path, the data as a dict
    lb.study.run_study([str(tmp_path / "usercode.py") + ":model"], data="usercode:data_dict",
                       out=tmp_path / "r2", settings=settings.replace(skip=("vbq", "analysis")), progress=False)
    html = check_complete_report(tmp_path / "r2", figures=3)
    assert "grouping.png" not in html and "bit_efficiency.png" not in html

    with pytest.raises(TypeError, match="must return an nn.Module"):
        lb.study.run_study(["usercode:not_a_model"], data="usercode:data", out=tmp_path / "r3",
                           settings=settings, progress=False)
    with pytest.raises(ValueError, match="eval_size"):
        lb.study.run_study(["usercode:model"], data="usercode:data", out=tmp_path / "r4",
                           settings=settings.replace(eval_size=1000), progress=False)


def _row(label, bits, val, size=100, scheme="symmetric"):
    return {"label": label, "bits": bits, "val_accuracy": val, "packed_bytes": size, "scheme": scheme}


def test_choose_best_fewest_bits_within_budget_then_most_accurate():
    rows = [_row("a", 8, 90.0), _row("a", 4, 89.5), _row("b", 4, 89.8), _row("a", 2, 70.0),
            _row("c", 3, 89.0, scheme="pow2"), _row("d", 3, 89.05, size=50)]
    best = choose_best(rows, float_val=90.0, max_drop=1.0)
    assert (best["label"], best["bits"], best["within_max_drop"]) == ("d", 3, True)
    assert choose_best(rows, 90.0, 0.5)["label"] == "b"                     # 3 bits now too lossy
    assert choose_best(rows, 90.0, 1.0, scheme="pow2")["label"] == "c"
    far = choose_best(rows, float_val=99.0, max_drop=1.0)                  # none close: most accurate
    assert (far["label"], far["within_max_drop"]) == ("a", False)
    assert choose_best([], 90.0, 1.0) is None


def test_step_cache_rejects_stale_keys_and_missing_artifacts(tmp_path):
    cache = StepCache(tmp_path / "steps")
    cache.put("m", "ptq", "k1", {"rows": [], "artifacts": ["m/x.lbq"]})
    assert cache.get("m", "ptq", "k1", tmp_path) is None          # the artifact is missing
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.lbq").write_bytes(b"x")
    assert cache.get("m", "ptq", "k1", tmp_path) == {"rows": [], "artifacts": ["m/x.lbq"]}
    assert cache.get("m", "ptq", "k2", tmp_path) is None          # other settings
    cache.path("m", "ptq").write_text("{truncated")
    assert cache.get("m", "ptq", "k1", tmp_path) is None
    assert StepCache(tmp_path / "steps", enabled=False).get("m", "ptq", "k1", tmp_path) is None
    assert not list((tmp_path / "steps").rglob("*.tmp"))


@pytest.mark.parametrize("kwargs, match", [
    ({"ptq_bits": (9,)}, r"ptq_bits \(each\) must be an integer in \[2, 8\]"),
    ({"schedules": ("fast",)}, "schedules: unknown"),
    ({"retrain_scheme": "codebook"}, "retrain_scheme must be one of"),
    ({"epochs": 0}, r"epochs must be an integer in \[1, 1000\]"),
    ({"max_drop": -1}, "max_drop must be"),
    ({"skip": ("baseline",)}, "skip: unknown"),
    ({"retrain_bits": (4, 4)}, "must not repeat"),
])
def test_settings_name_the_bad_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StudySettings(**kwargs)


def test_study_data_checks_its_splits():
    x, y = torch.randn(10, 4), torch.randint(0, 2, (10,))
    with pytest.raises(ValueError, match="StudyData.test: 10 inputs but 9 labels"):
        lb.study.StudyData(train=(x, y), test=(x, y[:9]))
    with pytest.raises(TypeError, match="labels must be int64"):
        lb.study.StudyData(train=(x, y.float()), test=(x, y))
    with pytest.raises(TypeError, match="must be a pair"):
        lb.study.StudyData(train=x, test=(x, y))


def test_docs_study_example_runs():
    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "study.md").read_text()
    section = "## Your own model and data"
    block = re.search(re.escape(section) + r".*?```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "docs/guide/study.md", "exec"), {})
