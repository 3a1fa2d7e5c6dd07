"""Packed inference kernels against their references: the shift kernels give exactly the
integers of the reference, the LUT kernel the float product up to summation order."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit import ops
from lowbit import reference as R


def _pow2_codes(O, K, bits, g=None):
    L = 2 ** (bits - 1) - 1
    return torch.randint(-L, L + 1, (O, K), dtype=torch.int8, generator=g)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 7, 8])
def test_pack_rows_matches_reference_and_pads_each_row(bits):
    codes = torch.randint(0, 2 ** bits, (5, 13), dtype=torch.uint8)
    packed = ops.pack_rows(codes, bits)
    assert packed.shape == (5, (13 + 7) // 8 * bits)
    assert torch.equal(packed, R.pack_rows(codes, bits))
    assert torch.equal(R.inference.fields(packed, 13, bits), codes.long())


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 6), K=st.integers(1, 300), O=st.integers(1, 11), bits=st.integers(2, 8),
       seed=st.integers(0, 2 ** 16))
def test_shift_matmul_int_is_exact(N, K, O, bits, seed):
    g = torch.Generator().manual_seed(seed)
    w = ops.pack_rows(_pow2_codes(O, K, bits, g), bits)
    x = torch.randint(-128, 128, (N, K), dtype=torch.int8, generator=g)
    ref = R.shift_matmul_int(x, w, bits)
    for method in ["literal"] + (["int8"] if bits <= 4 else ["int16"] if bits == 5 else []):
        assert torch.equal(ops.shift_matmul_int(x, w, bits, method), ref), method


@pytest.mark.parametrize("N,K,O", [(1, 4096 + 37, 9), (2, 64, 4), (3, 2049, 5), (8, 100, 7), (1, 31, 1)])
@pytest.mark.parametrize("bits", [2, 4, 5, 6])
def test_shift_kernels_agree_across_isas_and_methods(isa, N, K, O, bits):
    """Odd K (not a multiple of the vector width or the 2048-field chunk), few and many rows."""
    w = ops.pack_rows(_pow2_codes(O, K, bits), bits)
    x = torch.randint(-127, 128, (N, K), dtype=torch.int8)
    ref = R.shift_matmul_int(x, w, bits)
    assert torch.equal(ops.shift_matmul_int(x, w, bits, "literal"), ref)
    assert torch.equal(ops.shift_matmul_int(x, w, bits, "auto"), ref)


def test_int16_method_at_its_largest_sums():
    """5-bit codes at the largest exponent (2^14) and activations at -128 over two full
    2048-field chunks: the int32 lanes of the int16 kernel are at their largest."""
    K = 4096
    w = ops.pack_rows(torch.full((2, K), 15, dtype=torch.int8), 5)
    x = torch.full((1, K), -128, dtype=torch.int8)
    assert int(ops.shift_matmul_int(x, w, 5, "int16")[0, 0]) == -128 * 2 ** 14 * K
    assert torch.equal(ops.shift_matmul_int(x, w, 5, "int16"), ops.shift_matmul_int(x, w, 5, "literal"))


def test_extreme_exponents_stay_exact():
    """All weights at the largest exponent and activations at +-127: the int32 sums of the
    int8 kernel are at their largest and must not overflow."""
    K = 4096 + 64
    w = ops.pack_rows(torch.full((4, K), 7, dtype=torch.int8), 4)
    x = torch.full((1, K), 127, dtype=torch.int8)
    assert int(ops.shift_matmul_int(x, w, 4, "int8")[0, 0]) == 127 * 64 * K
    assert torch.equal(ops.shift_matmul_int(-x, w, 4, "int8"), -ops.shift_matmul_int(x, w, 4, "literal"))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("act_bits,x_scale", [(8, None), (4, None), (8, 0.01)])
def test_shift_linear_equals_reference_bit_for_bit(isa, bits, act_bits, x_scale):
    O, K = 7, 77
    w = ops.pack_rows(_pow2_codes(O, K, bits), bits)
    w_scale = torch.rand(O, dtype=torch.float64) * 2.0 ** -6
    bias = torch.randn(O)
    x = torch.randn(3, 2, K)
    got = ops.shift_linear(x, w, bits, w_scale, bias, act_bits, x_scale)
    assert got.shape == (3, 2, O)
    assert torch.equal(got, R.shift_linear(x, w, bits, w_scale, bias, act_bits, x_scale))


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 9), K=st.integers(1, 1100), O=st.integers(1, 9), bits=st.integers(1, 8),
       tables=st.sampled_from([1, "per-row"]), seed=st.integers(0, 2 ** 16))
def test_lut_linear_matches_float_reference(N, K, O, bits, tables, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2 ** bits, (O, K), dtype=torch.uint8, generator=g)
    w = ops.pack_rows(u, bits)
    t = torch.randn(O if tables == "per-row" else 1, 2 ** bits, generator=g)
    x = torch.randn(N, K, generator=g)
    bias = torch.randn(O, generator=g)
    ref = R.lut_linear(x, w, bits, t, bias)
    scale = (x.abs() @ t.abs().max(1).values.expand(O).unsqueeze(0).expand(K, O)).max()
    torch.testing.assert_close(ops.lut_linear(x, w, bits, t, bias), ref, rtol=1e-5,
                               atol=1e-5 * float(scale) + 1e-6)


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 7])
def test_lut_linear_generic_and_avx2_agree(isa, bits):
    """Odd widths unpack 8 fields per AVX2 step except the row's last blocks (scalar)."""
    u = torch.randint(0, 2 ** bits, (6, 1030), dtype=torch.uint8)
    w, t, x = ops.pack_rows(u, bits), torch.randn(2, 2 ** bits), torch.randn(5, 1030)
    torch.testing.assert_close(ops.lut_linear(x, w, bits, t), R.lut_linear(x, w, bits, t, None),
                               rtol=1e-5, atol=1e-4)


def test_bad_input_is_named():
    w = ops.pack_rows(_pow2_codes(3, 16, 4), 4)
    ws = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="act_bits|activations"):
        ops.shift_linear(torch.randn(2, 16), w, 4, ws, None, 9)
    with pytest.raises(ValueError, match="input features"):
        ops.shift_linear(torch.randn(2, 17), w, 4, ws)
    with pytest.raises(TypeError, match="float32"):
        ops.shift_linear(torch.randn(2, 16, dtype=torch.float64), w, 4, ws)
    with pytest.raises(ValueError, match="NaN"):
        ops.shift_linear(torch.full((2, 16), float("nan")), w, 4, ws)
    with pytest.raises(ValueError, match="int16.*bits = 5"):
        ops.shift_matmul_int(torch.zeros(1, 16, dtype=torch.int8), w, 4, "int16")
    with pytest.raises(ValueError, match="int8.*bits <= 4"):
        ops.shift_matmul_int(torch.zeros(1, 16, dtype=torch.int8), ops.pack_rows(_pow2_codes(3, 16, 5), 5), 5, "int8")
    with pytest.raises(ValueError, match="method"):
        ops.shift_linear(torch.randn(2, 16), w, 4, ws, method="fast")
    with pytest.raises(ValueError, match="tables"):
        ops.lut_linear(torch.randn(2, 16), w, 4, torch.randn(2, 16))
    with pytest.raises(ValueError, match="empty"):
        ops.shift_linear(torch.randn(0, 16), w, 4, ws)
    with pytest.raises(ValueError, match="x_scale"):
        ops.shift_linear(torch.randn(2, 16), w, 4, ws, x_scale=-1.0)
