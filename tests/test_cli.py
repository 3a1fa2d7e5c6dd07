"""The `lowbit` command line: help texts, the subcommands on small settings, and user
mistakes answered with one line on stderr and exit status 2, never a traceback."""
import json
import os
import subprocess
import sys

import pytest
import torch

import lowbit as lb
from lowbit.cli import COMMANDS, build_parser, main

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")
TINY_FLOAT = ["--model", "lenet5"]


@pytest.fixture
def tiny_lenet_cache(tmp_path, monkeypatch):
    """The shipped LeNet-5 recipe, trained in the cache of this test only (its default
    recipe takes minutes); commands then find it as `--model lenet5`."""
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    trained = lb.models.pretrained("lenet5", epochs=1, train_size=1500, progress=False)
    monkeypatch.setattr(lb.models, "pretrained", lambda name, **kw: trained)
    return trained


def test_every_command_has_help_with_examples(capsys):
    parser = build_parser()
    names = [c.NAME for c in COMMANDS]
    assert names[:7] == ["study", "ptq", "retrain", "vbq", "infer", "bench", "report"]
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text or "example:" in text, name
        assert f"\n  lowbit {name}" in text, name      # an example line, not argparse's usage line


def one_line_error(capsys, argv, *fragments):
    code = None
    try:
        code = main(argv)
    except SystemExit as exc:          # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowbit"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, err)


@pytest.mark.parametrize("argv, fragments", [
    (["ptq", "--bits", "9"], ["--bits", "[2, 8]"]),
    (["ptq", "--bits", "four"], ["--bits", "integers"]),
    (["ptq", "--scheme", "fancy"], ["--scheme", "invalid choice"]),
    (["retrain", "--bits", "4,3"], ["one bit width"]),
    (["retrain", "--schedule", "slow"], ["--schedule"]),
    (["study", "--schedules", "direct,slow"], ["unknown slow", "adaptive"]),
    (["study", "--skip", "baseline"], ["--skip", "accepted"]),
    (["study", "--epochs", "0"], ["positive integer"]),
    (["infer", "missing.lbq"], ["no such file", "missing.lbq"]),
    (["bench", "missing.lbq", "--model", "lenet5"], ["no such file"]),
    (["report", "no-such-folder"], ["no study.json", "lowbit study --out"]),
    (["nope"], ["invalid choice"]),
])
def test_user_mistakes_are_one_line(capsys, argv, fragments):
    one_line_error(capsys, argv, *fragments)


DEVICE_COMMANDS = [["retrain"], ["vbq"], ["study", "--out", "never"], ["capacity", "measure", "--out", "never"]]


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=lambda c: c[0])
def test_device_mistakes_are_one_line_before_any_work(tmp_path, capsys, monkeypatch, command):
    """--device is checked first: no model is trained, no folder is made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(lb.models, "pretrained", lambda *a, **k: pytest.fail("trained before the check"))
    one_line_error(capsys, command + ["--device", "cuda"],
                   "error: cuda requested but torch.cuda.is_available() is False")
    one_line_error(capsys, command + ["--device", "cuda:1"], "cuda requested but")
    one_line_error(capsys, command + ["--device", "tpu"], "--device", "cpu, cuda or cuda:N", "'tpu'")
    one_line_error(capsys, command + ["--device", "meta"], "cpu, cuda or cuda:N", "'meta'")
    assert not (tmp_path / "never").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_this_cuda_less_machine_from_a_fresh_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "retrain", "--device", "cuda"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "lowbit retrain: error: cuda requested but torch.cuda.is_available() is False"


def test_every_long_job_takes_device():
    parser = build_parser()
    for command in DEVICE_COMMANDS:
        args = parser.parse_args(command)
        assert args.device in ("cpu", None), command     # study: None, the preset's "cpu"
        assert parser.parse_args(command + ["--device", "cuda:1"]).device == "cuda:1"
    from lowbit.cli.study import settings_from
    assert settings_from(parser.parse_args(["study"])).device == "cpu"
    assert settings_from(parser.parse_args(["study", "--quick", "--device", "cpu"])).device == "cpu"


def test_bad_files_and_entry_points_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.lbq").write_bytes(b"not a model")
    (tmp_path / "usermod.py").write_text("def broken():\n    raise RuntimeError('boom')\nvalue = 3\n")
    one_line_error(capsys, ["infer", "junk.lbq", "--model", "lenet5"], "bad magic")
    one_line_error(capsys, ["infer", "junk.lbq"], "bad magic")
    one_line_error(capsys, ["study", "--model", "no_such_module:f", "--out", "r"], "--model", "cannot import")
    one_line_error(capsys, ["study", "--model", "usermod:nothing", "--out", "r"], "has no attribute 'nothing'")
    one_line_error(capsys, ["study", "--model", "usermod:value", "--out", "r"], "not callable")
    one_line_error(capsys, ["study", "--model", "usermod:broken", "--out", "r"], "RuntimeError: boom")
    one_line_error(capsys, ["study", "--model", "nomodule", "--out", "r"], "unknown model 'nomodule'")
    one_line_error(capsys, ["study", "--model", "missing.py:f", "--out", "r"], "no such file")
    (tmp_path / "afile").write_text("x")
    one_line_error(capsys, ["study", "--out", "afile"], "must be a folder")
    one_line_error(capsys, ["ptq", "--out", str(tmp_path), "--bits", "4"], "is a folder")
    one_line_error(capsys, ["ptq", "--out", "x.lbq", "--bits", "8,4"], "--out needs one bit width")


def test_missing_data_from_a_fresh_process(tmp_path):
    """Through `python -m lowbit`, as a user runs it: no traceback, status 2."""
    env = dict(os.environ, LOWBIT_FASHION_MNIST=str(tmp_path), LOWBIT_CACHE=str(tmp_path / "c"))
    proc = subprocess.run([sys.executable, "-m", "lowbit", "ptq", "--bits", "4"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("lowbit ptq: error:") and "dataset-fashion-mnist" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_fmnist
def test_ptq_retrain_vbq_infer_bench_on_small_settings(tmp_path, capsys, tiny_lenet_cache):
    q4 = tmp_path / "pow2-4.lbq"
    assert main(["ptq", "--scheme", "pow2", "--bits", "4", "--eval-size", "300", "--out", str(q4)]) == 0
    out = capsys.readouterr().out
    assert "pow2" in out and f"wrote {q4}" in out
    x, y = lb.data.load_fashion_mnist("test", limit=300, normalize=True)
    reference = lb.ptq(tiny_lenet_cache, "pow2", 4)
    loaded = lb.load_quantized(q4, lb.models.LeNet5())
    assert torch.equal(loaded(x), reference(x))                 # the file is what ptq makes
    assert f"{lb.models.accuracy(reference, x, y):.2f}" in out  # and the printed accuracy is its own

    assert main(["ptq", "--bits", "8,2", "--eval-size", "300"]) == 0
    assert len([l for l in capsys.readouterr().out.splitlines() if l.startswith("asymmetric")]) == 2

    assert main(["infer", str(q4), "--eval-size", "300"]) == 0   # the file names its model
    out = capsys.readouterr().out
    assert "ShiftConv2d" in out and "ShiftLinear" in out
    assert main(["bench", str(q4), "--images", "8"]) == 0
    out = capsys.readouterr().out
    assert "batch 1:" in out and "fused" in out and "not fused" not in out

    r2 = tmp_path / "r2.lbq"
    assert main(["retrain", "--bits", "2", "--schedule", "adaptive", "--epochs", "1", "--train-size", "300",
                 "--val-size", "100", "--eval-size", "200", "--out", str(r2), "--device", "cpu"]) == 0
    assert "2-bit symmetric" in capsys.readouterr().out
    model = lb.load_quantized(r2, lb.models.LeNet5())
    assert {qp.bits for qp in lb.recorded_qparams(model).values()} == {2}

    for search in ("sa", "ga"):
        v = tmp_path / f"vbq-{search}.lbq"
        assert main(["vbq", "--bits", "2", "--search", search, "--iterations", "1", "--population", "4",
                     "--calib-size", "50", "--eval-size", "200", "--out", str(v), "--device", "cpu"]) == 0
        assert "Lloyd-Max" in capsys.readouterr().out
        qps = lb.recorded_qparams(lb.load_quantized(v, lb.models.LeNet5()))
        assert {qp.scheme for qp in qps.values()} == {"codebook"} and len(qps) == 5


@pytest.mark.parametrize("argv, fragments", [
    (["capacity"], ["lowbit capacity", "ACTION"]),
    (["capacity", "advise"], ["--n-samples"]),
    (["capacity", "advise", "--n-samples", "0"], ["--n-samples", "positive integer"]),
    (["capacity", "advise", "--n-samples", "100", "--classes", "1"], ["--classes", ">= 2"]),
    (["capacity", "advise", "--n-samples", "100", "--model", "nomodule"], ["unknown model 'nomodule'"]),
    (["capacity", "advise", "--n-samples", "100", "--evidence", "missing.json"], ["--evidence", "no such file"]),
    (["capacity", "measure", "--width", "0"], ["--width", "positive integer"]),
    (["capacity", "measure", "--grid-points", "-1"], ["--grid-points", ">= 0"]),
    (["capacity", "measure", "--n-in", "80"], ["--n-in", "[1, 62]"]),
    (["capacity", "measure", "--lr", "0"], ["--lr", "(0, 10)"]),
    (["capacity", "shrink"], ["invalid choice", "measure"]),
])
def test_capacity_user_mistakes_are_one_line(capsys, argv, fragments):
    one_line_error(capsys, argv, *fragments)


def test_capacity_advise_matches_the_library(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["capacity", "advise", "--model", "lenet5", "--n-samples", "60000"]) == 0
    out = capsys.readouterr().out
    ref = lb.capacity.advise_bits(lb.models.LeNet5(), 60000, num_classes=10)   # classes from the output layer
    assert ref.bits == {"fc": 6, "conv": 8} and "fc 6 bits, conv 8 bits" in out and str(ref) in out

    # a user's model and measured evidence (the file `capacity measure` writes)
    (tmp_path / "usernet.py").write_text("from torch import nn\n"
                                         "def net():\n    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), "
                                         "nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))\n")
    (tmp_path / "ev.json").write_text('{"fc": {"bits_per_param": 0.8, "source": "measured: FCDNN(10)x1"}}')
    assert main(["capacity", "advise", "--model", "usernet:net", "--n-samples", "3000",
                 "--evidence", "ev.json"]) == 0
    out = capsys.readouterr().out
    import usernet
    ref = lb.capacity.advise_bits(usernet.net(), 3000, num_classes=4, evidence={"fc": {"bits_per_param": 0.8}})
    assert f"u = {ref.utilization:.2f}" in out and "[measured: FCDNN(10)x1]" in out
    assert f"fc {ref.bits['fc']} bits" in out

    (tmp_path / "bad.json").write_text('{"gru": {"bits_per_param": 1}}')
    one_line_error(capsys, ["capacity", "advise", "--n-samples", "10", "--evidence", "bad.json"],
                   "--evidence", "evidence keys")
    (tmp_path / "junk.json").write_text("{oops")
    one_line_error(capsys, ["capacity", "advise", "--n-samples", "10", "--evidence", "junk.json"],
                   "not valid JSON")


def test_capacity_measure_tiny_budget_then_resumes(tmp_path, capsys):
    environ = dict(os.environ)
    out = tmp_path / "cap"
    argv = ["capacity", "measure", "--width", "6", "--max-epochs", "3", "--fine-points", "2", "--grid-points", "0",
            "--trials", "0", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "capacity.json").read_text())
    evals = summary["evaluations"]
    assert summary["params"] == lb.capacity.count_parameters(lb.capacity.FCDNN(6, 1)) == 56
    for e in evals:                        # every point is a real training, I = N (1 - H(p))
        assert e["mi"] == pytest.approx(lb.capacity.mutual_information(e["accuracy"], e["n"]))
        assert e["n"] <= 2 ** 6
    best = max(evals, key=lambda e: e["mi"])
    assert summary["capacity_bits"] == pytest.approx(best["mi"]) and summary["n"] == best["n"]
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["fc"]["bits_per_param"] == pytest.approx(summary["capacity_bits"] / 56, abs=1e-4)
    assert (out / "capacity_curve.png").read_bytes()[:4] == b"\x89PNG"
    lines = (out / "capacity_runs.jsonl").read_text().splitlines()
    assert len(lines) == len(evals) and f"{len(evals)} run now" in printed
    assert dict(os.environ) == environ     # dask's worker settings (OMP_NUM_THREADS=1) stay out of ours

    assert main(argv) == 0                 # every training is in the JSONL: nothing runs again
    assert "(0 run now" in capsys.readouterr().out
    assert (out / "capacity_runs.jsonl").read_text().splitlines() == lines
    (tmp_path / "afile").write_text("x")
    one_line_error(capsys, argv[:-3] + ["--out", str(tmp_path / "afile")], "--out must be a folder")
