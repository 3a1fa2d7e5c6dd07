"""Ops are discovered, not listed: every torch.ops.lowbit operator has a reference with
the schema's parameter names, a test that calls it and a benchmark that times it. An op a
registered packed kernel names (lowbit.inference.kernel_table) is tested against its
reference by tests/test_kernel_table.py and timed by bench_inference.py's kernel-table rows."""
import inspect
import re
from pathlib import Path

import pytest
import torch

from lowbit import ops
from lowbit import reference
from lowbit.inference.kernel_table import KERNELS

ROOT = Path(__file__).resolve().parents[1]
DISCOVERED = ops.discovered_ops()  # the discovery ops.py registers the references with
KERNEL_OPS = {op for kernel in KERNELS.values() for op in kernel.ops}


def _sources(paths):
    return {p.name: p.read_text() for p in paths}


TESTS = _sources(p for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name != Path(__file__).name)
BENCHMARKS = _sources(sorted((ROOT / "benchmarks").glob("bench_*.py")))


def _callers(sources, name):
    """Files that call the op through a module (ops.x(, R.x(, torch.ops.lowbit.x( ...)."""
    call = re.compile(rf"\.{re.escape(name)}\(")
    return [f for f, text in sources.items() if call.search(text)]


def test_discovery_finds_the_operators():
    assert DISCOVERED and len(set(DISCOVERED)) == len(DISCOVERED)
    for name in DISCOVERED:
        assert hasattr(torch.ops.lowbit, name)


@pytest.mark.parametrize("name", DISCOVERED)
def test_op_has_a_reference_with_the_schema_parameters(name):
    ref = getattr(reference, name, None)
    assert callable(ref), f"torch.ops.lowbit.{name} has no reference in lowbit.reference"
    schema = getattr(torch.ops.lowbit, name).default._schema
    assert list(inspect.signature(ref).parameters) == [a.name for a in schema.arguments], str(schema)


@pytest.mark.parametrize("name", DISCOVERED)
def test_op_is_tested(name):
    callers = _callers(TESTS, name)
    assert callers or name in KERNEL_OPS, f"no file tests/test_*.py calls {name}"


@pytest.mark.parametrize("name", DISCOVERED)
def test_op_is_benchmarked(name):
    callers = _callers(BENCHMARKS, name)
    assert callers or name in KERNEL_OPS, f"no benchmarks/bench_*.py file times {name}"


def test_the_generic_kernel_checks_cover_every_registered_kernel():
    assert KERNEL_OPS <= set(DISCOVERED), sorted(KERNEL_OPS - set(DISCOVERED))
    assert "KERNELS" in BENCHMARKS["bench_inference.py"]   # its `table` rows time every record
