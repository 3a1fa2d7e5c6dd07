"""The type stub python/lowbit/_C.pyi matches the compiled module: the same public names
in lowbit._C, lowbit._C.vbq and vbq.Objective, and the same parameters in the same order
(pybind11's unnamed arg0, arg1, ... are positional-only in the stub)."""
import ast
import re
from pathlib import Path

import pytest

import lowbit
from lowbit._native import C

PACKAGE = Path(lowbit.__file__).resolve().parent
STUB = PACKAGE / "_C.pyi"


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def _stub_names(body):
    """Public names a stub body defines: functions, classes and annotated variables."""
    out = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, ast.Assign):
            out.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return {n: v for n, v in out.items() if not n.startswith("_")}


@pytest.fixture(scope="module")
def stub():
    tree = ast.parse(STUB.read_text(), filename=str(STUB))
    top = _stub_names(tree.body)
    vbq = _stub_names(top["vbq"].body)
    return {"lowbit._C": (C, top), "lowbit._C.vbq": (C.vbq, vbq),
            "lowbit._C.vbq.Objective": (C.vbq.Objective, _stub_names(vbq["Objective"].body))}


def test_py_typed_ships_with_the_package():
    assert (PACKAGE / "py.typed").is_file()


@pytest.mark.parametrize("where", ["lowbit._C", "lowbit._C.vbq", "lowbit._C.vbq.Objective"])
def test_stub_names_equal_the_compiled_module(stub, where):
    runtime, names = stub[where]
    public = _public(runtime) - (_public(object) if isinstance(runtime, type) else set())
    assert sorted(public - set(names)) == [], f"in {where} but not in _C.pyi"
    assert sorted(set(names) - public) == [], f"in _C.pyi but not in {where}"


def _split_top_level(text):
    """Split "a: List[int], b: int = 1" at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur.strip()] if p]


def _runtime_params(fn):
    """[(name, has_default)] from pybind11's signature line, e.g. "f(x: int, y: int = 1) -> int"."""
    line = fn.__doc__.strip().splitlines()[0]
    m = re.match(rf"{re.escape(fn.__name__)}\((.*)\) ->", line)
    assert m, line
    params = []
    for p in _split_top_level(m.group(1)):
        name = p.split(":")[0].strip()
        if name != "self":
            params.append((name, "=" in p))
    return params


def _stub_params(node):
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [False] * (len(positional) - len(a.defaults)) + [True] * len(a.defaults)
    params = [(p.arg, d, i < len(a.posonlyargs)) for i, (p, d) in enumerate(zip(positional, defaults))]
    return [p for p in params if p[0] != "self"]


def _functions(stub):
    for where, (runtime, names) in stub.items():
        for name, node in sorted(names.items()):
            if isinstance(node, ast.FunctionDef) and callable(getattr(runtime, name, None)) \
                    and not any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
                yield f"{where}.{name}", getattr(runtime, name), node


def test_stub_parameters_equal_the_bindings(stub):
    checked = 0
    for qualname, fn, node in _functions(stub):
        runtime = _runtime_params(fn)
        declared = _stub_params(node)
        assert len(runtime) == len(declared), (qualname, runtime, declared)
        for (rname, rdefault), (sname, sdefault, posonly) in zip(runtime, declared):
            unnamed = re.fullmatch(r"arg\d+", rname) is not None
            assert posonly == unnamed, f"{qualname}: {sname} must be positional-only iff unnamed ({rname})"
            if not unnamed:
                assert sname == rname, (qualname, sname, rname)
            assert sdefault == rdefault, f"{qualname}: default of {sname}"
        checked += 1
    assert checked >= 19  # 6 in _C, 12 in vbq, Objective.evaluate
