"""Imports point down the layers: `import lowbit` needs no optional package, and the core
packages do not import the layers above them."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "lowbit"
OPTIONAL = ("tqdm", "matplotlib", "distributed", "dask", "optuna", "scipy", "nbclient")

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
"""


def test_import_lowbit_and_the_core_need_no_optional_package():
    run = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def _imports(path: Path):
    """Module names a file imports at its top level (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            yield f"{base}.{node.module}" if node.level and node.module else node.module or base
            if node.module is None:
                yield from (f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


# package -> packages above it that it must not import
RULES = {"inference": ("lowbit.models", "lowbit.study", "lowbit.report", "lowbit.cli", "lowbit.coverage"),
         "reference": ("lowbit.inference", "lowbit.hooks", "lowbit.plan", "lowbit.study"),
         "capacity": ("lowbit.study", "lowbit.report", "lowbit.cli")}


@pytest.mark.parametrize("package", sorted(RULES))
def test_core_packages_do_not_import_layers_above_them(package):
    bad = [(f.name, m) for f in sorted((PACKAGE / package).glob("*.py")) for m in _imports(f)
           if m and m.startswith(RULES[package])]
    assert not bad, bad
