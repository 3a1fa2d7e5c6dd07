"""Imports point down the layers: `import lowbit` needs no optional package, and the core
packages do not import the layers above them."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "lowbit"
OPTIONAL = ("tqdm", "matplotlib", "distributed", "dask", "optuna", "scipy", "nbclient", "nbformat",
            "ipykernel", "IPython", "sphinx", "PIL", "pandas")

BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
import lowbit as lb
import torch
m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
lb.attach(m, bits=3); lb.freeze(m); lb.inference.convert(m); print(lb.coverage(m))
import lowbit.analysis, lowbit.capacity, lowbit.cli, lowbit.progress, lowbit.report, lowbit.study, lowbit.vbq
assert not [n for n in sys.modules if n.split(".")[0] in {OPTIONAL!r}], "an optional package was imported"

# what needs an optional package says which one, and how to install it
def error(fn):
    try:
        fn()
    except ImportError as e:
        return str(e)
    raise AssertionError(f"{{fn}} ran without its optional package")
assert lb.progress.progress_bar([1], desc="x", disable=True) == [1]
msg = error(lambda: lb.progress.progress_bar([1], desc="x"))
assert "tqdm" in msg and "python3-tqdm" in msg and "pip install tqdm" in msg, msg
w = torch.randn(64)
assert lb.analysis.weight_histograms({{"w": w}}) is not None  # no png: no matplotlib
msg = error(lambda: lb.analysis.weight_histograms({{"w": w}}, png="never.png"))
assert "python3-matplotlib" in msg and "pip install matplotlib" in msg, msg
msg = error(lambda: lb.capacity.Sweep(lb.capacity.ResultStore("never.jsonl"), progress=False).map(abs, [1]))
assert "python3-distributed" in msg and "pip install distributed" in msg, msg
print("ok")
"""


def test_import_lowbit_and_the_core_need_no_optional_package(tmp_path):
    run = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("ok"), run.stdout[-2000:]


def _imports(path: Path):
    """Module names a file imports, at its top level or inside functions (relative ones
    resolved): an import deferred into a function still points where it points."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = f"{base}.{node.module}" if node.level and node.module else node.module or base
            yield name
            for a in node.names:     # `from .. import x`, or `from ..study import run` (a module)
                sub = PACKAGE.parent.joinpath(*name.split("."), a.name)
                if node.module is None or sub.is_dir() or sub.with_suffix(".py").is_file():
                    yield f"{name}.{a.name}"
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


APPS = ("lowbit.study", "lowbit.report", "lowbit.cli")
# package or module -> prefixes of what it must not import. The CLI uses the study's public
# API (`lowbit.study` itself) only, never its modules ("lowbit.study." with the dot).
RULES = {"inference": ("lowbit.models", "lowbit.study", "lowbit.report", "lowbit.cli", "lowbit.coverage"),
         "reference": ("lowbit.inference", "lowbit.hooks", "lowbit.plan", "lowbit.study"),
         "capacity": APPS, "cluster": ("lowbit.capacity",) + APPS, "data": APPS, "entry.py": APPS, "schedules.py": APPS, "timing.py": APPS,
         "cli": ("lowbit.study.",)}


@pytest.mark.parametrize("package", sorted(RULES))
def test_core_packages_do_not_import_layers_above_them(package):
    path = PACKAGE / package
    files = [path] if path.is_file() else sorted(path.glob("*.py"))
    assert files, package
    bad = [(f.name, m) for f in files for m in _imports(f) if m and m.startswith(RULES[package])]
    assert not bad, bad
