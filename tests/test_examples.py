"""The scripts in examples/ run end to end with small settings."""
import importlib.util
import os
from pathlib import Path

import pytest

from lowbit.data.text import DEFAULT_ROOT

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT), reason="fortunes package not installed")
def test_char_transformer_walkthrough(capsys):
    assert _load("char_transformer").main(["--steps", "4", "--retrain-steps", "2", "--bits", "4,3",
                                           "--tokens", "3", "--max-chars", "60000"]) == 0
    out = capsys.readouterr().out
    assert "embed.weight" in out and "output layer" in out          # the coverage table
    rows = [line.split() for line in out.splitlines() if line.startswith(("float ", "4 bits", "3 bits"))]
    assert [r[0] for r in rows] == ["float", "4", "3"]
    assert float(rows[2][3]) < float(rows[1][3]) < float(rows[0][2])      # KiB: 3 bits < 4 bits < float


USER_CODE = '''
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))


def load():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.randn(300, 6, generator=g) + 2 * torch.eye(3, 6)[y]
    return {"train": (x[:200], y[:200]), "val": (x[200:], y[200:])}
'''


def test_train_qat_and_ptq_checkpoint(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    import torch

    import lowbit as lb
    (tmp_path / "qatcode.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "m.lbq"
    assert _load("train_qat").main(["--model", "qatcode:build", "--data", "qatcode:load", "--bits", "3",
                                    "--epochs", "2", "--float-epochs", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2" in text and "-> 3-bit symmetric" in text and out.is_file()
    import qatcode
    loaded = lb.load_quantized(out, qatcode.build)
    assert ("0", "weight") in lb.recorded_qparams(loaded)

    torch.save(qatcode.build().state_dict(), tmp_path / "float.pt")
    run = subprocess.run([sys.executable, str(EXAMPLES / "ptq_checkpoint.py"), "qatcode:build",
                          str(tmp_path / "float.pt"), "4", str(tmp_path / "p.lbq")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "wrote" in run.stdout and (tmp_path / "p.lbq").is_file()
