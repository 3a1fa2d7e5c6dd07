"""Every registered packed kernel (lowbit.inference.kernel_table), under every scheme that
names it: convert builds its modules, they give the frozen model's outputs (float
activations: up to summation order; integer activations: within their rounding), they equal
themselves with each of the kernel's ops replaced by its pure-PyTorch reference on every
ISA the CPU has, and they script. A new kernel is tested here once it is registered."""
import warnings

import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit import ops, reference, schemes
from lowbit.inference.kernel_table import KERNELS

LAYERS = {
    "Linear": (lambda: nn.Sequential(nn.Linear(37, 6)), lambda: torch.randn(5, 37)),
    "Conv1d": (lambda: nn.Sequential(nn.Conv1d(3, 4, 3, padding=1)), lambda: torch.randn(2, 3, 9)),
    "Conv2d": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, groups=2)), lambda: torch.randn(2, 2, 6, 5)),
}


def _cases():
    for kernel in KERNELS:
        for scheme, spec in schemes.SCHEMES.items():
            if kernel in spec.kernels:
                for bits in (2, 3, 8):
                    if spec.min_bits <= bits <= spec.max_bits:
                        yield kernel, scheme, bits


CASES = list(_cases())


def _ptq(model: nn.Module, scheme: str, bits: int) -> nn.Module:
    cfg = {"scheme": scheme, "bits": bits, "granularity": "channel"}
    if scheme == "codebook":  # a codebook from each tensor's range
        cfg["codebook"] = lambda w, b: torch.linspace(-1, 1, 2 ** b, dtype=torch.float64) * max(float(w.abs().max()), 1e-3)
    return lb.ptq(model, **cfg)


def test_every_scheme_kernel_is_registered_and_every_kernel_serves_a_scheme():
    named = {k for spec in schemes.SCHEMES.values() for k in spec.kernels}
    assert named == set(KERNELS), "the scheme table and the kernel table name different kernels"
    assert set(lb.inference.MODES) == {"auto"} | set(KERNELS)
    assert {kernel for kernel, _, _ in CASES} == set(KERNELS)   # every kernel is run below
    for record in KERNELS.values():
        assert record.fallback is None or record.fallback in KERNELS
        for op in record.ops:
            assert callable(getattr(reference, op, None)), f"{record.name}: op {op} has no reference"


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("kernel,scheme,bits", CASES, ids=[f"{k}-{s}-{b}" for k, s, b in CASES])
def test_kernel_modules_match_the_frozen_model_and_the_reference(kernel, scheme, bits, layer, monkeypatch):
    record = KERNELS[kernel]
    make, make_x = LAYERS[layer]
    frozen, x = _ptq(make(), scheme, bits), make_x()
    if layer != "Linear" and not any(t.__name__ == layer for t in record.convs):
        pytest.skip(f"the {kernel} kernel has no packed {layer}")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")                        # nothing may stay float
        expected = frozen(x)
        packed = lb.inference.convert(frozen, mode=kernel)
        built = type(packed[0]) if layer == "Linear" else type(packed[0].parts[0])
        runs = {KERNELS[k].linear for k in (kernel, record.fallback) if k}
        assert built in runs, f"{kernel} built {built.__name__}"
        for isa in lb.threads.supported_isas():
            lb.set_kernel_isa(isa)
            try:
                native = packed(x)
                if record.activations == "float":
                    torch.testing.assert_close(native, expected, rtol=1e-4, atol=1e-5)
                else:                                         # integer activations: their rounding
                    assert (native - expected).abs().max() <= 0.05 * expected.abs().max() + 1e-3
                with monkeypatch.context() as m:
                    for op in record.ops:
                        m.setattr(ops, op, getattr(reference, op))
                    torch.testing.assert_close(packed(x), native, rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(torch.jit.script(packed)(x), native, rtol=0, atol=0)
            finally:
                lb.set_kernel_isa("auto")
