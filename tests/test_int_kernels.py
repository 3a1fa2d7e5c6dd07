"""The integer kernels for uniform codes (symmetric and asymmetric, 2..8 bits) against their
references: bit-plane packing byte for byte, the integer sums exactly (torch.equal) on
every ISA, int_linear bit for bit, and its float output within the rounding of the int8
activations from the float-activation product; modules, convert and fuse on top."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import lowbit as lb
from lowbit import ops
from lowbit import reference as R
from lowbit.inference import IntConv1d, IntConv2d, IntLinear
from lowbit.reference import int_inference as RI
from lowbit.threads import supported_isas

BITS = list(range(2, 9))
SCHEMES = ["symmetric", "asymmetric"]
SHAPES = [(1, 1, 1), (1, 64, 4), (1, 100, 9), (3, 63, 5), (8, 65, 4), (17, 130, 7), (64, 257, 6), (5, 4096 + 37, 3),
          (300, 70, 21)]  # more than one pass of 256 rows, K across the 1024-field decode


def _weights(O, K, bits, scheme, g=None):
    """Random codes, their packed rows and the zero field of each row."""
    if scheme == "symmetric":
        L = 2 ** (bits - 1) - 1
        codes = torch.randint(-L, L + 1, (O, K), dtype=torch.int8, generator=g)
        zero = torch.full((O,), 2 ** (bits - 1), dtype=torch.int32)
    else:
        codes = torch.randint(0, 2 ** bits, (O, K), generator=g).to(torch.uint8)
        zero = torch.randint(0, 2 ** bits, (O,), dtype=torch.int32, generator=g)
    return codes, ops.pack_int_rows(codes, bits), zero


def _direct(x_codes, codes, bits, zero):
    """sum_k x[n, k] * (field[o, k] - zero[o]), written out from the codes (no layout)."""
    offset = 2 ** (bits - 1) if codes.dtype == torch.int8 else 0
    w = codes.to(torch.int64) + offset - zero.to(torch.int64)[:, None]
    return x_codes.to(torch.int64) @ w.T


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("K", [1, 63, 64, 65, 200])
def test_pack_int_rows_matches_reference_and_round_trips(bits, K):
    for scheme in SCHEMES:
        codes, packed, _ = _weights(5, K, bits, scheme)
        assert packed.shape == (5, (K + 63) // 64 * 8 * bits) == (5, RI.int_row_bytes(K, bits))
        assert torch.equal(packed, R.pack_int_rows(codes, bits))
        offset = 2 ** (bits - 1) if scheme == "symmetric" else 0
        assert torch.equal(RI.int_fields(packed, K, bits), codes.to(torch.int64) + offset)


def test_pack_int_rows_rejects_bad_input():
    for pack in (ops.pack_int_rows, R.pack_int_rows):
        with pytest.raises(ValueError, match="do not fit in 3 bits"):
            pack(torch.full((2, 5), 8, dtype=torch.uint8), 3)
        with pytest.raises(ValueError, match="bits must be in \\[2, 8\\]"):
            pack(torch.zeros(2, 5, dtype=torch.uint8), 1)
        with pytest.raises(TypeError, match="uint8 or int8"):
            pack(torch.zeros(2, 5), 4)
        with pytest.raises(ValueError, match="non-empty \\[rows, K\\]"):
            pack(torch.zeros(5, dtype=torch.uint8), 4)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_int_matmul_int_is_exact_on_every_isa(isa, bits, scheme):
    """Batch 1, 3, 8, 17, 64; K below, at, across and far from the 64-field block."""
    for N, K, O in SHAPES:
        codes, packed, zero = _weights(O, K, bits, scheme)
        x = torch.randint(-128, 128, (N, K), dtype=torch.int8)
        got = ops.int_matmul_int(x, packed, bits, zero)
        assert got.dtype == torch.int64 and got.shape == (N, O)
        assert torch.equal(got, R.int_matmul_int(x, packed, bits, zero)), (N, K, O)
        assert torch.equal(got, _direct(x, codes, bits, zero)), (N, K, O)


@pytest.mark.parametrize("bits", BITS)
def test_int_sums_at_their_extremes(isa, bits):
    """Largest fields with activations at -128 and +127 (the int16 pair sums of the AVX2
    path and the int32 lanes at their largest; totals beyond int32 at K = 70001), all-zero
    rows, and zero points at both ends; one row (weights decoded in registers) and four."""
    K, O = 70001, 6
    top = 2 ** bits - 1
    codes = torch.full((O, K), top, dtype=torch.uint8)
    codes[1] = 0
    codes[2, ::2] = 0
    packed = ops.pack_int_rows(codes, bits)
    zero = torch.tensor([0, 0, top, 2 ** (bits - 1), top, 1], dtype=torch.int32)
    x = torch.stack([torch.full((K,), -128, dtype=torch.int8), torch.full((K,), 127, dtype=torch.int8),
                     torch.zeros(K, dtype=torch.int8), torch.randint(-128, 128, (K,), dtype=torch.int8)])
    got = ops.int_matmul_int(x, packed, bits, zero)
    assert int(got[0, 0]) == -128 * top * K and int(got[1, 0]) == 127 * top * K
    assert not got[2].any()  # an all-zero activation row
    assert torch.equal(got, _direct(x, codes, bits, zero))
    assert torch.equal(ops.int_matmul_int(x[:1], packed, bits, zero), got[:1])


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 70), K=st.integers(1, 300), O=st.integers(1, 13), bits=st.integers(2, 8),
       scheme=st.sampled_from(SCHEMES), isa=st.sampled_from(supported_isas()), seed=st.integers(0, 2 ** 16))
def test_int_matmul_int_random_shapes(N, K, O, bits, scheme, isa, seed):
    g = torch.Generator().manual_seed(seed)
    codes, packed, zero = _weights(O, K, bits, scheme, g)
    x = torch.randint(-128, 128, (N, K), dtype=torch.int8, generator=g)
    lb.set_kernel_isa(isa)
    try:
        got = ops.int_matmul_int(x, packed, bits, zero)
    finally:
        lb.set_kernel_isa("auto")
    assert torch.equal(got, _direct(x, codes, bits, zero))


def _layer(O, K, bits, scheme, granularity="channel"):
    w = torch.randn(O, K) * 0.1
    w[0] = 0  # an all-zero weight row
    qp = lb.calibrate(w, scheme, bits, granularity)
    return lb.fake_quantize(w, qp), qp


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_int_linear_equals_reference_bit_for_bit(isa, bits, scheme):
    for N, K, O in SHAPES[1:]:
        w, qp = _layer(O, K, bits, scheme)
        m = IntLinear(w, qp, torch.randn(O))
        x = torch.randn(N, K)
        x[0, : K // 2] = 0
        if N > 1:
            x[1] = 0  # an all-zero activation row: step 1, output = bias
        args = (m.w_packed, bits, m.w_scale, m.zero_point, m.bias)
        got = ops.int_linear(x, *args)
        assert torch.equal(got, R.int_linear(x, *args)), (N, K, O)
        if N > 1:
            assert torch.equal(got[1], m.bias)


def test_int_linear_rounds_activations_as_the_reference_quantizer(isa):
    """Per-row steps and codes of int_linear equal qparams('maxabs') + quantize with one group
    per row: values a hair below and exactly at half steps, -0.0, subnormal rows (the step
    underflows to max|x| itself), all-zero rows, huge values, rows shorter than a vector."""
    K = 37
    w, qp = _layer(3, K, 8, "symmetric")
    m = IntLinear(w, qp)
    rows = [torch.zeros(K), torch.full((K,), -0.0), torch.full((K,), 1e-44), torch.randn(K) * 1e-40,
            (torch.rand(K) * 2 - 1) * 3e38, torch.arange(K, dtype=torch.float32) - 18.0]
    half = torch.zeros(K)
    half[0] = 127.0  # step exactly 1: x = k + 1/2 rounds away from zero, 0.49999997 to 0
    half[1:6] = torch.tensor([0.5, -0.5, 2.5, 0.49999997, -126.5])
    rows.append(half)
    x = torch.stack(rows)
    codes_ref = R.quantize(x, "symmetric", 8, R.qparams(x, "symmetric", 8, x.shape[0], "maxabs")[0])
    assert codes_ref[-1, 1:6].tolist() == [1, -1, 3, 0, -127]
    args = (m.w_packed, 8, m.w_scale, m.zero_point, None)
    assert torch.equal(ops.int_linear(x, *args), R.int_linear(x, *args))
    for k in (1, 5, 16, 17, 33):  # short rows: masked vector tails
        xs = x[:, :k].contiguous()
        mk = IntLinear(w[:, :k].contiguous(), lb.calibrate(w[:, :k], "symmetric", 8, "channel"))
        a = (mk.w_packed, 8, mk.w_scale, mk.zero_point, None)
        assert torch.equal(ops.int_linear(xs, *a), R.int_linear(xs, *a)), k


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("granularity", ["channel", "tensor"])
@pytest.mark.parametrize("act_bits", [8, 5])
def test_int_linear_within_activation_rounding_of_the_float_product(isa, scheme, granularity, act_bits):
    """|y - x W^T| <= step[n] / 2 * sum_k |W[o, k]| (each activation moves at most half a step)."""
    N, K, O = 9, 300, 11
    w, qp = _layer(O, K, 4, scheme, granularity)
    m = IntLinear(w, qp, None, act_bits=act_bits)
    x = torch.randn(N, K) * torch.logspace(-2, 1, N)[:, None]  # rows of very different ranges
    y = m(x)
    exact = x.double() @ w.double().T
    step = x.abs().amax(1, keepdim=True).double() / (2 ** (act_bits - 1) - 1)
    bound = step / 2 * w.double().abs().sum(1)[None, :] + 1e-6 * exact.abs().max()
    assert ((y.double() - exact).abs() <= bound).all()


def test_int_kernels_reject_bad_input():
    w, qp = _layer(4, 70, 3, "asymmetric")
    m = IntLinear(w, qp)
    args = (m.w_packed, 3, m.w_scale, m.zero_point, None)
    x = torch.randn(2, 70)
    for f in (ops.int_linear, R.int_linear):
        with pytest.raises(TypeError, match="float32"):
            f(x.double(), *args)
        with pytest.raises(ValueError, match="bit-plane rows hold 48 bytes but 130 input features at 3 bits need 72"):
            f(torch.randn(2, 130), *args)  # 70 features fill two 64-field blocks, 130 three
        with pytest.raises(ValueError, match="bits must be in \\[2, 8\\]"):
            f(x, m.w_packed, 9, m.w_scale, m.zero_point, None)
        with pytest.raises(ValueError, match="bits must be in \\[2, 8\\] for activations"):
            f(x, *args, 1)
        with pytest.raises(TypeError, match="zero_point must be int32"):
            f(x, m.w_packed, 3, m.w_scale, m.zero_point.long(), None)
        with pytest.raises(ValueError, match="zero_point must hold fields in \\[0, 7\\]"):
            f(x, m.w_packed, 3, m.w_scale, torch.full((4,), 8, dtype=torch.int32), None)
        with pytest.raises(TypeError, match="w_scale must be float64"):
            f(x, m.w_packed, 3, m.w_scale.float(), m.zero_point, None)
    for f in (ops.int_matmul_int, R.int_matmul_int):
        with pytest.raises(TypeError, match="x codes must be int8"):
            f(torch.zeros(2, 70, dtype=torch.int16), m.w_packed, 3, m.zero_point)
        with pytest.raises(ValueError, match="zero_point must have shape \\[4\\]"):
            f(torch.zeros(2, 70, dtype=torch.int8), m.w_packed, 3, m.zero_point[:2])
        with pytest.raises(ValueError, match="at most 524288 input features"):
            f(torch.zeros(1, 2 ** 19 + 1, dtype=torch.int8), m.w_packed, 3, m.zero_point)
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        ops.int_linear(torch.full((1, 70), float("nan")), *args)
    with pytest.raises(ValueError, match="IntLinear expects inputs with 70 features"):
        m(torch.randn(3, 64))
    with pytest.raises(ValueError, match="the int kernel serves \\(symmetric, asymmetric\\)"):
        IntLinear(w, lb.calibrate(w, "pow2", 3))
    with pytest.raises(ValueError, match="act_bits must be an integer in \\[2, 8\\]"):
        IntLinear(w, qp, act_bits=9)


def _small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 12, 3, groups=4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(12 * 2 * 2, 20), nn.ReLU(), nn.Linear(20, 5)).eval()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_convert_auto_runs_int_kernels_close_to_the_frozen_model(isa, scheme, bits):
    frozen = lb.ptq(_small_cnn(), scheme, bits).eval()
    x = torch.randn(6, 3, 8, 8)
    auto = lb.inference.convert(frozen)
    assert isinstance(auto[0], IntConv2d) and isinstance(auto[6], IntLinear)
    lut = lb.inference.convert(frozen, mode="lut")  # float activations
    fused = lb.inference.fuse(auto)
    assert fused.steps() == ["int_conv2d+relu+max_pool2d", "int_conv2d+relu", "flatten",
                             "int_linear+relu", "int_linear"]
    with torch.no_grad():
        ref = frozen(x)
        y = auto(x)
        torch.testing.assert_close(lut(x), ref, rtol=1e-4, atol=1e-5)
        assert torch.equal(fused(x), y)  # the same kernels and rounding, fused or not
    # four layers, each rounding its inputs to 8 bits: well within 5% of the output range
    assert (y - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-4
    assert lb.inference.model_size(auto) < lb.inference.model_size(frozen) * bits / 16 + 2000


def test_int_conv1d_and_coverage_name_the_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 9, 3)).eval()
    frozen = lb.ptq(model, "symmetric", 5).eval()
    packed = lb.inference.convert(frozen, mode="int")
    assert isinstance(packed[0], IntConv1d)
    x = torch.randn(2, 4, 9)
    with torch.no_grad():
        assert (packed(x) - frozen(x)).abs().max() <= 0.02 * frozen(x).abs().max() + 1e-4
    kernels = {r.kernel for r in lb.coverage(frozen).rows if r.kernel}
    assert kernels == {"int"}
    with pytest.raises(ValueError, match="mode='int' needs weights the int kernel serves"):
        lb.inference.convert(lb.ptq(model, "pow2", 4), mode="int")


def test_int_modules_survive_deepcopy_and_state_dict():
    frozen = lb.ptq(_small_cnn(), "asymmetric", 3).eval()
    auto = lb.inference.convert(frozen)
    x = torch.randn(2, 3, 8, 8)
    again = lb.inference.convert(copy.deepcopy(frozen))
    again.load_state_dict(auto.state_dict())
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(auto)(x), auto(x))
        assert torch.equal(again(x), auto(x))
