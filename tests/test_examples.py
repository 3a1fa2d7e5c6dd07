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
