"""Every optional package lowbit imports through `optional.require` is declared in an
extra of pyproject.toml, so `pip install lowbit[...]` brings what the feature needs."""
import ast
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def required_pip_names():
    """The pip names passed to require(module, debian, pip, ...) anywhere in the package."""
    names = set()
    for path in (ROOT / "python" / "lowbit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require"
                    and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant)):
                names.add(node.args[2].value)
    return names


def test_every_required_package_is_in_an_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    declared = {re.split(r"[<>=!~ \[]", req, 1)[0].lower() for reqs in extras.values() for req in reqs}
    required = required_pip_names()
    assert {"tqdm", "matplotlib", "distributed", "optuna"} <= required   # the scan finds them
    assert required - declared == set(), f"required but in no extra of pyproject.toml: {required - declared}"
