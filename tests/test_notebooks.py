"""Every notebook in notebooks/ runs top to bottom (nbclient, Debian's python3-nbclient) with
this interpreter as its kernel, and shows at least one plot inline."""
import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs python3-nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def kernel_of_this_interpreter(tmp_path, monkeypatch):
    """A kernelspec that starts this test's Python (the venv that imports lowbit); Debian's
    default 'python3' kernel runs /usr/bin/python3, which does not see the venv."""
    spec = tmp_path / "jupyter" / "kernels" / "lowbit-venv"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lowbit venv", "language": "python",
        "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}}))   # a debugger warning per cell otherwise
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "passive"))
    return "lowbit-venv"


def test_notebooks_are_present_and_stripped():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "adaptive_vs_gradual.ipynb", "vbq_ga_sa.ipynb",
                                          "capacity_and_advisor.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:                 # outputs are not kept in git
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None, path.name


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel_of_this_interpreter, tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="needs python3-nbclient")
    pytest.importorskip("ipykernel", reason="needs python3-ipykernel")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_of_this_interpreter, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                           # raises CellExecutionError on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} shows no plot"
