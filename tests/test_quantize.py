"""The C++ quantizers against the pure-PyTorch references: codes exactly, values and
saturation masks bit for bit, on random shapes, every bit width and granularity."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lowbit import ops, schemes
from lowbit import reference as R

from helpers import params_for

SCHEMES = list(schemes.NAMES)


def _compare(w, scheme, bits, p0, p1):
    codes = ops.quantize(w, scheme, bits, p0, p1)
    assert torch.equal(codes, R.quantize(w, scheme, bits, p0, p1))
    fq, mask = ops.fake_quant_mask(w, scheme, bits, p0, p1)
    fq_ref, mask_ref = R.fake_quant_mask(w, scheme, bits, p0, p1)
    torch.testing.assert_close(fq, fq_ref, rtol=0, atol=0)
    assert torch.equal(mask, mask_ref)
    torch.testing.assert_close(ops.fake_quant(w, scheme, bits, p0, p1), fq_ref, rtol=0, atol=0)
    torch.testing.assert_close(ops.dequantize(codes, scheme, bits, p0, p1), fq_ref, rtol=0, atol=0)
    torch.testing.assert_close(R.dequantize(codes, scheme, bits, p0, p1), fq_ref, rtol=0, atol=0)
    return codes


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_random_shapes_all_bits(scheme, dtype, granularity, isa):
    g = torch.Generator().manual_seed(1)
    for bits in range(2, 9):
        shape = (4 * int(torch.randint(1, 6, (1,), generator=g)),) + tuple(
            int(s) for s in torch.randint(1, 9, (int(torch.randint(0, 3, (1,), generator=g)),), generator=g))
        w = (torch.randn(shape, generator=g) * 0.1).to(dtype)
        groups = {"tensor": 1, "channel": shape[0], "group": 4}[granularity]
        p0, p1 = params_for(w, scheme, bits, groups)
        _compare(w, scheme, bits, p0, p1)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_large_tensor_uses_threads_and_matches(scheme, isa):
    w = torch.randn(300, 1000) * 0.05  # 300K values: split across threads
    p0, p1 = params_for(w, scheme, 4, 300)
    _compare(w, scheme, 4, p0, p1)


def test_symmetric_is_paper_formula_with_ties():
    # Q(w, D) = sgn(w) D min(floor(|w|/D + 0.5), (M-1)/2): ties at .5 go away from zero.
    D = torch.tensor([0.5])
    w = torch.tensor([0.25, -0.25, 0.75, -0.75, 0.0, -0.0, 0.1, 5.0, -5.0])
    codes = ops.quantize(w, "symmetric", 3, D)          # 3 bits: M = 7 points, L = 3
    assert codes.tolist() == [1, -1, 2, -2, 0, 0, 0, 3, -3]
    assert ops.fake_quant(w, "symmetric", 2, D).tolist() == [0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0.5, -0.5]


def test_asymmetric_has_exact_zero_and_full_range():
    w = torch.linspace(-0.3, 1.0, 101)
    scale, zp = ops.qparams(w, "asymmetric", 4, 1, "minmax")
    codes = ops.quantize(w, "asymmetric", 4, scale, zp)
    assert codes.min() == 0 and codes.max() == 15
    assert ops.fake_quant(torch.zeros(3), "asymmetric", 4, scale, zp).eq(0).all()


def test_pow2_levels_and_zero_code():
    lvl = torch.tensor([1.0])  # 3 bits: sign + 3 exponents {1/4, 1/2, 1} + zero
    # 0.18 and 0.17 straddle 2^-2.5 = 0.1768: log2 rounds to -2 (level 1/4) and -3 (zero)
    w = torch.tensor([1.0, 0.7, 0.36, 0.2, 0.18, 0.17, -0.5, 3.0, 0.0])
    assert ops.fake_quant(w, "pow2", 3, lvl).tolist() == [1.0, 0.5, 0.5, 0.25, 0.25, 0.0, -0.5, 1.0, 0.0]
    assert ops.quantize(w, "pow2", 3, lvl).tolist() == [3, 2, 2, 1, 1, 0, -2, 3, 0]
    _, mask = ops.fake_quant_mask(w, "pow2", 3, lvl)
    assert mask.tolist() == [True] * 7 + [False, True]  # 3.0 saturates


def test_codebook_midpoints_and_ties():
    cb = torch.tensor([-1.0, 0.0, 0.5, 2.0])
    w = torch.tensor([-0.5, 0.25, 1.25, -3.0, 9.0, 0.3, 0.2])
    # ties at midpoints -0.5, 0.25, 1.25 go to the entry farther from zero
    assert ops.quantize(w, "codebook", 2, cb).tolist() == [0, 2, 3, 0, 3, 2, 1]


@given(st.sampled_from(SCHEMES), st.integers(2, 8), st.sampled_from([torch.float32, torch.float64]),
       st.lists(st.one_of(st.floats(-1e4, 1e4, allow_nan=False, width=32),
                          st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, 1e-30, -1e-30, 1e-44,
                                           3e38, -3e38])), min_size=1, max_size=40))
def test_edge_values_match_reference(scheme, bits, dtype, values):
    w = torch.tensor(values, dtype=dtype)
    p0, p1 = params_for(w, scheme, bits, 1)
    _compare(w, scheme, bits, p0, p1)


@given(st.integers(2, 8), st.integers(-20, 20), st.integers(1, 30))
def test_exact_ties_at_half_steps(bits, k, n):
    D = torch.tensor([0.125])
    w = (torch.arange(-n, n + 1, dtype=torch.float32) + 0.5) * D + k * D  # every value a tie
    _compare(w, "symmetric", bits, D, None)


@given(st.sampled_from(SCHEMES), st.floats(-100, 100, allow_nan=False), st.integers(1, 50))
def test_constant_tensors(scheme, value, n):
    w = torch.full((n,), value)
    p0, p1 = params_for(w, scheme, 3, 1)
    _compare(w, scheme, 3, p0, p1)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_non_contiguous_inputs(scheme):
    w = torch.randn(24, 16)
    wt = w.t()  # non-contiguous, shape [16, 24]
    p0, p1 = params_for(wt.contiguous(), scheme, 4, 16)
    assert not wt.is_contiguous()
    assert torch.equal(ops.quantize(wt, scheme, 4, p0, p1), ops.quantize(wt.contiguous(), scheme, 4, p0, p1))
    assert torch.equal(ops.fake_quant(wt, scheme, 4, p0, p1), ops.fake_quant(wt.contiguous(), scheme, 4, p0, p1))
    strided = torch.randn(8, 10)[:, ::2]
    q0, q1 = params_for(strided.contiguous(), scheme, 4, 8)
    assert torch.equal(ops.fake_quant(strided, scheme, 4, q0, q1), R.fake_quant(strided, scheme, 4, q0, q1))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_isa_build_agrees(scheme):
    import lowbit
    from lowbit.threads import supported_isas
    isas = supported_isas()
    if len(isas) < 2:
        pytest.skip("this CPU runs only the generic build")
    w = torch.randn(64, 777) * 0.3
    p0, p1 = params_for(w, scheme, 5, 64)
    out = {}
    try:
        for isa in isas:
            lowbit.set_kernel_isa(isa)
            out[isa] = (ops.quantize(w, scheme, 5, p0, p1), ops.fake_quant_mask(w, scheme, 5, p0, p1))
    finally:
        lowbit.set_kernel_isa("auto")
    for isa in isas[1:]:
        assert torch.equal(out["generic"][0], out[isa][0]), isa
        assert torch.equal(out["generic"][1][0], out[isa][1][0]), isa
        assert torch.equal(out["generic"][1][1], out[isa][1][1]), isa
