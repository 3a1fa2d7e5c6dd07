"""Every notebook in notebooks/ is stored executed (outputs and plots, so a reader browsing
the repository sees results; `./dev notebooks` re-executes them) and still runs top to
bottom (nbclient, Debian's python3-nbclient) with this interpreter as its kernel."""
import importlib.util
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs python3-nbformat")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def _runner():
    spec = importlib.util.spec_from_file_location("lowbit_notebook_runner", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _shows_a_plot(nb) -> bool:
    return any("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_notebooks_are_stored_executed_in_order():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "adaptive_vs_gradual.ipynb", "vbq_ga_sa.ipynb",
                                          "capacity_and_advisor.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        # run top to bottom in one kernel: execution counts 1, 2, 3, ...
        assert [c.get("execution_count") for c in code] == list(range(1, len(code) + 1)), \
            f"{path.name} is not stored executed top to bottom: run ./dev notebooks"
        assert not [o for o in _outputs(nb) if o.output_type == "error"], path.name
        assert _shows_a_plot(nb), f"{path.name} is stored without its plots"


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs dataset-fashion-mnist")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="needs python3-nbclient")
    pytest.importorskip("ipykernel", reason="needs python3-ipykernel")
    runner = _runner()
    runner.kernelspec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "passive"))
    out = tmp_path / path.name
    nb = runner.execute(path, out=out, workdir=tmp_path)   # raises CellExecutionError on a failing cell
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _shows_a_plot(nb), f"{path.name} shows no plot"
    assert nbformat.read(out, as_version=4).cells[-1].source == nb.cells[-1].source


def test_runner_leaves_the_stored_notebook_alone_when_a_cell_fails(tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="needs python3-nbclient")
    pytest.importorskip("ipykernel", reason="needs python3-ipykernel")
    runner = _runner()
    runner.kernelspec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("raise ValueError('broken cell')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="broken cell"):
        runner.execute(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
