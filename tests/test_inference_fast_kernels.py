"""The bit-plane packed kernels: pow2 (power-of-two weights in bands of exponents, int8
activations, exact integers) and vlut (codebook codes, in-register table look-ups, float
activations), against their references at every width, every ISA and odd sizes, and the
modules, convert and fuse on top of them."""
import copy

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import lowbit as lb
from lowbit import ops
from lowbit import reference as R
from lowbit.inference import LUTConv2d, LUTLinear, ShiftLinear, VLUTConv2d, VLUTLinear

SIZES = [(1, 1, 1), (1, 63, 5), (1, 64, 4), (3, 65, 7), (8, 130, 17), (65, 100, 6), (1, 257, 33), (2, 1100, 9)]


def _pow2_codes(O, K, bits, gen):
    half = 2 ** (bits - 1)
    lo, hi = (-half + 1, half) if bits < 8 else (-127, 128)
    return torch.randint(lo, hi, (O, K), dtype=torch.int8, generator=gen)


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("N,K,O", SIZES)
def test_pow2_matmul_int_is_exact(isa, bits, N, K, O):
    gen = torch.Generator().manual_seed(bits * 1000 + N * 7 + K)
    w = ops.pack_int_rows(_pow2_codes(O, K, bits, gen), bits)
    x = torch.randint(-128, 128, (N, K), dtype=torch.int8, generator=gen)
    assert torch.equal(ops.pow2_matmul_int(x, w, bits), R.pow2_matmul_int(x, w, bits))


@pytest.mark.parametrize("bits", range(2, 9))
def test_pow2_largest_sums_do_not_overflow(isa, bits):
    """Every weight at the top exponent and x = -128 (the int8 extreme) over 4100 features."""
    K, half = 4100, 2 ** (bits - 1)
    top = torch.full((3, K), half - 1 if bits < 8 else 127, dtype=torch.int8)
    top[1] = -top[1]
    w = ops.pack_int_rows(top, bits)
    x = torch.full((2, K), -128, dtype=torch.int8)
    x[1, ::2] = 127
    got = ops.pow2_matmul_int(x, w, bits)
    assert torch.equal(got, R.pow2_matmul_int(x, w, bits))
    e = min(half - 2, 30)
    assert int(got[0, 0]) == -128 * 2 ** e * K


@pytest.mark.parametrize("bits", range(2, 9))
def test_pow2_matmul_int_equals_the_shift_kernel(bits):
    """The same codes row-packed (shift kernel) and as bit-plane rows (pow2 kernel)."""
    gen = torch.Generator().manual_seed(bits)
    codes = _pow2_codes(11, 77, bits, gen)
    x = torch.randint(-128, 128, (5, 77), dtype=torch.int8, generator=gen)
    assert torch.equal(ops.pow2_matmul_int(x, ops.pack_int_rows(codes, bits), bits),
                       ops.shift_matmul_int(x, ops.pack_rows(codes, bits), bits, "literal"))


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 70), K=st.integers(1, 300), O=st.integers(1, 40), bits=st.integers(2, 8),
       seed=st.integers(0, 2 ** 16), isa=st.sampled_from(["generic", "avx2", "avx512"]))
def test_pow2_and_vlut_on_drawn_shapes(N, K, O, bits, seed, isa):
    from lowbit.threads import missing_isa_reason
    if missing_isa_reason(isa):
        return
    lb.set_kernel_isa(isa)
    try:
        gen = torch.Generator().manual_seed(seed)
        w = ops.pack_int_rows(_pow2_codes(O, K, bits, gen), bits)
        x = torch.randint(-128, 128, (N, K), dtype=torch.int8, generator=gen)
        assert torch.equal(ops.pow2_matmul_int(x, w, bits), R.pow2_matmul_int(x, w, bits))
        u = ops.pack_int_rows(torch.randint(0, 2 ** bits, (O, K), dtype=torch.uint8, generator=gen), bits)
        tables = torch.randn(1, 2 ** bits, generator=gen)
        xf = torch.randn(N, K, generator=gen)
        torch.testing.assert_close(ops.vlut_linear(xf, u, bits, tables, None), R.vlut_linear(xf, u, bits, tables, None),
                                   rtol=1e-4, atol=1e-4)
    finally:
        lb.set_kernel_isa("auto")


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
@pytest.mark.parametrize("act_bits,x_scale", [(8, None), (4, None), (8, 0.01)])
def test_pow2_linear_equals_reference_and_shift_linear(isa, bits, act_bits, x_scale):
    gen = torch.Generator().manual_seed(bits)
    codes = _pow2_codes(13, 90, bits, gen)
    w_scale = torch.rand(13, dtype=torch.float64, generator=gen) + 0.5
    bias = torch.randn(13, generator=gen)
    x = torch.randn(2, 3, 90, generator=gen)
    got = ops.pow2_linear(x, ops.pack_int_rows(codes, bits), bits, w_scale, bias, act_bits, x_scale)
    assert got.shape == (2, 3, 13)
    assert torch.equal(got, R.pow2_linear(x, ops.pack_int_rows(codes, bits), bits, w_scale, bias, act_bits, x_scale))
    assert torch.equal(got, ops.shift_linear(x, ops.pack_rows(codes, bits), bits, w_scale, bias, act_bits, x_scale,
                                             "literal"))


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("N,K,O", SIZES)
def test_vlut_linear_matches_the_reference(isa, bits, N, K, O):
    gen = torch.Generator().manual_seed(bits * 100 + K)
    u = torch.randint(0, 2 ** bits, (O, K), dtype=torch.uint8, generator=gen)
    w = ops.pack_int_rows(u, bits)
    groups = O if O % 2 else 1  # per-row tables and one shared table
    tables = torch.randn(groups, 2 ** bits, generator=gen)
    bias = torch.randn(O, generator=gen)
    x = torch.randn(N, K, generator=gen)
    got = ops.vlut_linear(x, w, bits, tables, bias)
    ref = R.vlut_linear(x, w, bits, tables, bias)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    W = tables[torch.arange(O) // (O // groups)][torch.arange(O)[:, None], u.long()]
    torch.testing.assert_close(got, x @ W.T + bias, rtol=1e-4, atol=1e-4)


def test_bad_input_names_the_problem():
    codes = torch.zeros(4, 70, dtype=torch.int8)
    w = ops.pack_int_rows(codes, 4)
    ws = torch.ones(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="bit-plane rows hold"):
        ops.pow2_matmul_int(torch.zeros(1, 200, dtype=torch.int8), w, 4)
    with pytest.raises(ValueError, match="bit-plane rows hold"):
        ops.pow2_matmul_int(torch.zeros(1, 70, dtype=torch.int8), w, 5)
    with pytest.raises(TypeError, match="x codes must be int8"):
        ops.pow2_matmul_int(torch.zeros(1, 70, dtype=torch.int16), w, 4)
    with pytest.raises(TypeError, match="packed weights must be uint8"):
        ops.pow2_matmul_int(torch.zeros(1, 70, dtype=torch.int8), w.to(torch.int8), 4)
    with pytest.raises(ValueError, match="bits"):
        ops.pow2_matmul_int(torch.zeros(1, 70, dtype=torch.int8), w, 9)
    with pytest.raises(TypeError, match="w_scale must be float64"):
        ops.pow2_linear(torch.randn(2, 70), w, 4, ws.float())
    with pytest.raises(ValueError, match="w_scale must have shape"):
        ops.pow2_linear(torch.randn(2, 70), w, 4, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="bias must have shape"):
        ops.pow2_linear(torch.randn(2, 70), w, 4, ws, torch.zeros(5))
    with pytest.raises(TypeError, match="x must be float32"):
        ops.pow2_linear(torch.randn(2, 70, dtype=torch.float64), w, 4, ws)
    with pytest.raises(ValueError, match="NaN or Inf"):
        ops.pow2_linear(torch.full((2, 70), float("nan")), w, 4, ws)
    t = torch.randn(1, 16)
    with pytest.raises(ValueError, match="tables must be"):
        ops.vlut_linear(torch.randn(2, 70), w, 4, torch.randn(1, 8), None)
    with pytest.raises(ValueError, match="tables must be"):
        ops.vlut_linear(torch.randn(2, 70), w, 4, torch.randn(3, 16), None)
    with pytest.raises(TypeError, match="tables must be float32"):
        ops.vlut_linear(torch.randn(2, 70), w, 4, t.double(), None)
    with pytest.raises(TypeError, match="x must be float32"):
        ops.vlut_linear(torch.randn(2, 70).double(), w, 4, t, None)
    with pytest.raises(ValueError, match="bit-plane rows hold"):
        ops.vlut_linear(torch.randn(2, 71 + 64), w, 4, t, None)
    with pytest.raises(ValueError, match="bits"):
        ops.vlut_linear(torch.randn(2, 70), w, 1, torch.randn(1, 2), None)


def _frozen(model, **cfg):
    model = copy.deepcopy(model)
    lb.attach(model, lb.QuantConfig(**cfg))
    return lb.freeze(model)


def _codebook(bits):
    return {"scheme": "codebook", "bits": bits,
            "codebook": lambda w, b: torch.linspace(-1, 1, 2 ** b, dtype=torch.float64) * max(float(w.abs().max()), 1e-3)}


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_vlut_linear_module_equals_fake_quant(bits):
    torch.manual_seed(bits)
    lin = nn.Linear(77, 10)
    qp = lb.calibrate(lin.weight.detach(), "symmetric", bits, "channel")
    wq = lb.fake_quantize(lin.weight.detach(), qp)
    mod = VLUTLinear(wq, qp, lin.bias)
    x = torch.randn(9, 77)
    torch.testing.assert_close(mod(x), x @ wq.T + lin.bias, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.jit.script(mod)(x), mod(x))
    with pytest.raises(ValueError, match="2..8-bit"):
        VLUTLinear(wq, lb.QParams("codebook", 1, torch.tensor([[-1.0, 1.0]])))
    with pytest.raises(ValueError, match="expects inputs with 77 features"):
        mod(torch.randn(2, 76))


@pytest.mark.parametrize("bits", [2, 4, 5, 8])
def test_convert_codebook_model_picks_vlut_and_fuses(bits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6 * 6, 7), nn.ReLU(),
                          nn.Linear(7, 3))
    frozen = _frozen(model, quantize_output=True, **_codebook(bits))
    x = torch.randn(4, 2, 6, 6)
    with torch.no_grad():
        ref = frozen(x)
        auto = lb.inference.convert(frozen)
        # 'auto' takes vlut where it is fast (AVX-512), else the lut kernel
        expected = VLUTConv2d if lb.kernel_isa() == "avx512" else LUTConv2d
        assert type(auto[0]) is expected
        torch.testing.assert_close(auto(x), ref, rtol=1e-4, atol=1e-5)
        packed = lb.inference.convert(frozen, mode="vlut")
        assert isinstance(packed[0], VLUTConv2d) and isinstance(packed[3], VLUTLinear)
        torch.testing.assert_close(packed(x), ref, rtol=1e-4, atol=1e-5)
        lut = lb.inference.convert(frozen, mode="lut")
        torch.testing.assert_close(packed(x), lut(x), rtol=1e-4, atol=1e-5)
        fused = lb.inference.fuse(packed)
        assert fused.steps()[0] == "vlut_conv2d+relu"     # the step names the kernel (and the ReLU it runs)
        assert torch.equal(fused(x), packed(x))


@pytest.mark.parametrize("bits", [2, 3, 5, 6, 8])
def test_convert_pow2_model_runs_the_pow2_kernel_and_fuses(bits):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 7), nn.ReLU(),
                          nn.Linear(7, 3))
    frozen = _frozen(model, bits=bits, scheme="pow2", granularity="channel", quantize_output=True)
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        ref = frozen(x)
        packed = lb.inference.convert(frozen)
        assert isinstance(packed[3], ShiftLinear) and packed[3].layout == "planes"
        assert packed[0].parts[0].layout == ("rows" if bits <= 4 else "planes")
        err = (packed(x) - ref).abs().max()
        assert err <= 0.05 * ref.abs().max() + 1e-3  # 8-bit activations
        rows = lb.inference.convert(frozen, method="literal")  # row-packed codes, shift kernel
        assert torch.equal(packed(x), rows(x))
        fused = lb.inference.fuse(packed)
        assert torch.equal(fused(x), packed(x))


@pytest.mark.parametrize("bits", [5, 6, 7, 8])
@pytest.mark.parametrize("N", [1, 3, 8, 65])
def test_pow2_bands_that_stay_empty_are_skipped_exactly(isa, bits, N):
    """Codes near the top exponent (most bands of a chunk empty, as in real weights), with a
    few small codes in some rows and chunks: the skipped bands' sums come from row sums."""
    gen = torch.Generator().manual_seed(bits + N)
    L = 2 ** (bits - 1) - 1 if bits < 8 else 127
    O, K = 37, 1000
    mag = L - torch.randint(0, 4, (O, K), generator=gen)
    mag[5, 300] = L - 9                      # one weight a band lower
    mag[6, 10:20] = L - 16                   # two bands lower
    mag[20, 900] = max(1, L - 29)            # the bottom of the window
    mag[21, :] = 0                           # a zero row
    sign = torch.where(torch.rand(O, K, generator=gen) < 0.5, -1, 1)
    codes = (sign * mag).to(torch.int8)
    w = ops.pack_int_rows(codes, bits)
    x = torch.randint(-128, 128, (N, K), dtype=torch.int8, generator=gen)
    assert torch.equal(ops.pow2_matmul_int(x, w, bits), R.pow2_matmul_int(x, w, bits))


def test_auto_passes_vlut_over_where_only_its_avx2_path_runs():
    if "avx2" not in lb.threads.supported_isas():
        pytest.skip("this CPU has no AVX2/FMA")
    frozen = _frozen(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)), quantize_output=True,
                     **_codebook(4))
    try:
        lb.set_kernel_isa("avx2")
        assert isinstance(lb.inference.convert(frozen)[0], LUTLinear)
        assert isinstance(lb.inference.convert(frozen, mode="vlut")[0], VLUTLinear)   # asked for: given
    finally:
        lb.set_kernel_isa("auto")


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 3), cin=st.integers(1, 8), c0=st.integers(0, 2), O=st.integers(1, 13),
       kh=st.integers(1, 5), kw=st.integers(1, 5), stride=st.integers(1, 3), pad=st.integers(0, 2),
       dil=st.integers(1, 2), H=st.integers(5, 20), W=st.integers(5, 40), bits=st.integers(2, 8),
       tables=st.sampled_from(["one", "per row"]), bias=st.booleans(), seed=st.integers(0, 2 ** 16),
       isa=st.sampled_from(lb.threads.supported_isas()))
def test_vlut_conv2d_matches_the_reference(batch, cin, c0, O, kh, kw, stride, pad, dil, H, W, bits, tables, bias,
                                          seed, isa):
    """The direct codebook convolution against F.conv2d of the decoded weights (summation
    order aside), on drawn shapes and every ISA: input channels [c0, c0 + cin) of c0 + cin + 1."""
    torch.manual_seed(seed)
    taps = cin * kh * kw
    H, W = max(H, dil * (kh - 1) + 1), max(W, dil * (kw - 1) + 1)
    u = torch.randint(0, 2 ** bits, (O, taps), dtype=torch.int16).to(torch.uint8)
    w = ops.pack_int_rows(u, bits)
    t = torch.randn(1 if tables == "one" else O, 2 ** bits)
    b = torch.randn(O) if bias else None
    x = torch.randn(batch, c0 + cin + 1, H, W)
    args = (x, w, bits, t, b, c0, cin, [kh, kw], [stride, stride], [pad, pad], [dil, dil])
    lb.set_kernel_isa(isa)
    try:
        out = ops.vlut_conv2d(*args)
    finally:
        lb.set_kernel_isa("auto")
    torch.testing.assert_close(out, R.vlut_conv2d(*args), rtol=1e-4, atol=1e-4)


def test_vlut_conv2d_bad_input_names_the_problem():
    u = torch.randint(0, 16, (4, 18), dtype=torch.int16).to(torch.uint8)
    w, t, x = ops.pack_int_rows(u, 4), torch.randn(4, 16), torch.randn(2, 2, 8, 8)
    good = dict(bits=4, tables=t, bias=None, c0=0, channels=2, kernel_size=[3, 3], stride=[1, 1], padding=[0, 0],
                dilation=[1, 1])
    assert ops.vlut_conv2d(x, w, **good).shape == (2, 4, 6, 6)
    with pytest.raises(TypeError, match="float32"):
        ops.vlut_conv2d(x.double(), w, **good)
    with pytest.raises(ValueError, match="channels"):
        ops.vlut_conv2d(x, w, **{**good, "c0": 1})
    with pytest.raises(ValueError, match="stride"):
        ops.vlut_conv2d(x, w, **{**good, "stride": [0, 1]})
    with pytest.raises(ValueError, match="does not fit"):
        ops.vlut_conv2d(torch.randn(1, 2, 2, 2), w, **good)
    with pytest.raises(ValueError, match="bytes"):
        ops.vlut_conv2d(x, w[:, :-1].contiguous(), **good)
    from lowbit.inference.modules import DIRECT_MAX_TAPS  # the modules' switch is the op's own limit
    with pytest.raises(ValueError, match=f"at most {DIRECT_MAX_TAPS} taps"):
        big = torch.randint(0, 16, (4, 261), dtype=torch.int16).to(torch.uint8)
        ops.vlut_conv2d(torch.randn(1, 29, 8, 8), ops.pack_int_rows(big, 4), **{**good, "channels": 29})
    # NaN is a float activation: it reaches the outputs of its own windows only
    x[1, 0, 0, 0] = float("nan")
    out = ops.vlut_conv2d(x, w, **good)
    assert out[1, :, 0, 0].isnan().all() and not out[0].isnan().any() and not out[1, :, 1:, 1:].isnan().any()
