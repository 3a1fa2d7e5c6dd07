"""Rounding half away from zero is exact, in the kernels (every ISA the CPU has) and in the
references: a value just below a half step rounds down. floor(|x| / D + 0.5) would round
0.49999997 (float32, step 1) up to 1, because 0.49999997 + 0.5 rounds to 1.0 in float32;
the float64 analogue is 0.5 - 2^-54."""
from fractions import Fraction

import pytest
import torch

from lowbit import ops
from lowbit import reference as R
from lowbit.reference.grids import round_half_away, round_half_up

BELOW_HALF = {torch.float32: 0.5 - 2.0 ** -25, torch.float64: 0.5 - 2.0 ** -54}
DTYPES = [torch.float32, torch.float64]


def below(h: float, dtype) -> float:
    """The largest value of dtype below h."""
    return float(torch.nextafter(torch.tensor(h, dtype=dtype), torch.tensor(0.0, dtype=dtype)))


def test_the_naive_formula_is_wrong_where_it_matters():
    for dtype, v in BELOW_HALF.items():
        x = torch.tensor([v], dtype=dtype)
        assert float(x) < 0.5
        assert float(torch.floor(x + 0.5)) == 1.0  # what the exact rounding avoids


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_round_half_away(dtype):
    b = BELOW_HALF[dtype]
    big_odd = 2.0 ** 23 + 1 if dtype == torch.float32 else 2.0 ** 52 + 1  # x + 0.5 rounds to even
    x = torch.tensor([b, -b, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, below(1.5, dtype), big_odd, -big_odd, 0.0, -0.0,
                      float("inf"), float("-inf"), 1e-40 if dtype == torch.float32 else 1e-310], dtype=dtype)
    want = [0, 0, 1, -1, 2, -2, 3, -3, 1, big_odd, -big_odd, 0, 0, float("inf"), float("-inf"), 0]
    assert below(0.5, dtype) == b
    assert round_half_away(x).tolist() == want
    assert torch.isnan(round_half_away(torch.tensor([float("nan")], dtype=dtype))).all()
    t = torch.tensor([b, 0.5, below(3.5, dtype), 3.5], dtype=dtype)
    assert round_half_up(t).tolist() == [0, 1, 3, 4]


def _symmetric_case(dtype, step):
    """|w| / step lands exactly on these quotients (step is a power of two)."""
    b, b15 = BELOW_HALF[dtype], below(1.5, dtype)
    t = [b, -b, 0.5, -0.5, b15, -b15, 1.5, 2.5, -2.5, below(2.5, dtype), 0.0, 6.5, below(7.5, dtype)]
    want = [0, 0, 1, -1, 1, -1, 2, 3, -3, 2, 0, 7, 7]
    # repeated at every offset of the vector paths (8 and 32 values at a time)
    w = torch.tensor(t * 9, dtype=dtype) * step
    return w, torch.tensor(want * 9, dtype=torch.int8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step", [1.0, 0.25, 2.0])
def test_symmetric_codes_values_and_masks(isa, dtype, step):
    w, want = _symmetric_case(dtype, step)
    D = torch.tensor([step], dtype=dtype)
    for codes in (ops.quantize(w, "symmetric", 4, D), R.quantize(w, "symmetric", 4, D)):
        assert torch.equal(codes, want)
    fq_want = want.to(dtype) * step
    assert torch.equal(ops.fake_quant(w, "symmetric", 4, D), fq_want)  # the AVX2 fake-quant path
    assert torch.equal(R.fake_quant(w, "symmetric", 4, D), fq_want)
    fq, mask = ops.fake_quant_mask(w, "symmetric", 4, D)
    fq_r, mask_r = R.fake_quant_mask(w, "symmetric", 4, D)
    assert torch.equal(fq, fq_want) and torch.equal(fq_r, fq_want)
    assert torch.equal(mask, mask_r) and bool(mask.all())  # 7.5 - tiny: 7, not saturated
    assert torch.equal(ops.ste_fake_quant(w, "symmetric", 4, D), fq_want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_symmetric_saturation_mask_at_the_last_half_step(isa, dtype):
    b = below(7.5, dtype)
    w = torch.tensor([b, 7.5, -b, -7.5, 8.0], dtype=dtype)  # L = 7 at 4 bits
    D = torch.tensor([1.0], dtype=dtype)
    for fq, mask in (ops.fake_quant_mask(w, "symmetric", 4, D), R.fake_quant_mask(w, "symmetric", 4, D)):
        assert fq.tolist() == [7, 7, -7, -7, 7]
        assert mask.tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("dtype", DTYPES)
def test_asymmetric_codes(isa, dtype):
    b = BELOW_HALF[dtype]
    t = [b, -b, 0.5, -0.5, below(1.5, dtype), 1.5, -1.5, 0.0]
    w = torch.tensor(t * 5, dtype=dtype)
    s, zp = torch.tensor([1.0], dtype=dtype), torch.tensor([2], dtype=torch.int32)
    want = torch.tensor([2, 2, 3, 1, 3, 4, 0, 2] * 5, dtype=torch.uint8)
    assert torch.equal(ops.quantize(w, "asymmetric", 4, s, zp), want)
    assert torch.equal(R.quantize(w, "asymmetric", 4, s, zp), want)
    fq_want = (want.to(torch.int64) - 2).to(dtype)
    assert torch.equal(ops.fake_quant(w, "asymmetric", 4, s, zp), fq_want)
    assert torch.equal(R.fake_quant(w, "asymmetric", 4, s, zp), fq_want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asymmetric_zero_point_rounds_exactly(isa, dtype):
    # -lo / s lands next to 0.5 for some of these ranges; kernel and reference must agree
    # with the exact rounding of that quotient.
    b = BELOW_HALF[dtype]
    for lo in (-b, -0.5, -b * 3, -1.5 + 2 ** -20):
        w = torch.tensor([lo, 15.0 + lo, 3.0], dtype=dtype)
        s, zp = ops.qparams(w, "asymmetric", 4, 1, "minmax")
        s_r, zp_r = R.qparams(w, "asymmetric", 4, 1, "minmax")
        assert torch.equal(s, s_r) and torch.equal(zp, zp_r)
        r = Fraction(float(-torch.tensor(lo, dtype=dtype) / s[0]))
        assert int(zp) == int(r) + (r - int(r) >= Fraction(1, 2))


@pytest.mark.parametrize("x_scale", [None, 1.0])
def test_activation_codes(isa, x_scale):
    b = BELOW_HALF[torch.float32]
    vals = [b, -b, 0.5, -0.5, below(1.5, torch.float32), 126.5, -126.5, 0.0]
    x = torch.tensor([[127.0] + vals * 8], dtype=torch.float32)  # dynamic step: 127 / 127 = 1
    want = torch.tensor([[127] + [0, 0, 1, -1, 1, 127, -127, 0] * 8], dtype=torch.int8)
    codes, step = ops.quantize_activations(x, 8, x_scale)
    codes_r, step_r = R.quantize_activations(x, 8, x_scale)
    assert float(step) == 1.0 and float(step_r) == 1.0
    assert torch.equal(codes, want) and torch.equal(codes_r, want)


def test_qstep_error_uses_the_exact_rounding():
    # The reference's exact error of a step counts |w| = 0.49999997 D as code 0.
    from lowbit.reference.qparams import _exact_error
    b = BELOW_HALF[torch.float32]
    x = torch.tensor([b, 1.0])
    e = _exact_error(x, torch.tensor([1.0], dtype=torch.float64), 1)
    assert float(e) == pytest.approx(b * b, rel=1e-15)
