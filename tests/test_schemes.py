"""The scheme table: the C++ records (cpp/include/lowbit/schemes.h) and the Python ones
(lowbit.schemes) agree, and each record's facts hold for the kernels and references."""
import pytest
import torch

from lowbit import ops
from lowbit import reference as R
from lowbit._native import C
from lowbit.reference.qparams import STEP_RULES
from lowbit.schemes import CALIBRATED, SCHEMES

IMPLS = [pytest.param(ops, id="native"), pytest.param(R, id="reference")]
ALL_RULES = sorted({r for s in SCHEMES.values() for r in s.step_rules} | {"bogus"})


def _bits(name):
    return range(SCHEMES[name].min_bits, SCHEMES[name].max_bits + 1)


def test_cpp_and_python_tables_agree():
    cpp = {t["name"]: t for t in C.scheme_traits()}
    assert set(cpp) == set(SCHEMES)
    for name, spec in SCHEMES.items():
        t = cpp[name]
        assert t["is_signed"] == spec.signed, name
        assert (t["min_bits"], t["max_bits"]) == (spec.min_bits, spec.max_bits), name
        assert t["p0"] == spec.p0_name, name
        assert t["p0_rule"] == spec.params[0].rule, name
        assert t["has_zero_point"] == spec.has_zero_point, name
        assert t["p1"] == (spec.params[1].name if spec.has_zero_point else None), name
        assert set(t["step_rules"]) == set(spec.step_rules), name


def test_step_rules_have_references_and_nothing_else():
    table = {(n, r) for n, s in SCHEMES.items() for r in s.step_rules}
    assert table == set(STEP_RULES)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(SCHEMES))
def test_qparams_accepts_exactly_the_schemes_rules(impl, name):
    w = torch.randn(4, 6)
    for rule in ALL_RULES:
        if rule in SCHEMES[name].step_rules:
            p = impl.qparams(w, name, 4, 2, rule)
            assert len(p) == len(SCHEMES[name].params), rule
        else:
            with pytest.raises(ValueError):
                impl.qparams(w, name, 4, 2, rule)


def _ramp_and_params(name, bits):
    """A dense float64 ramp reaching well past the scheme's range, and its parameters."""
    dense = torch.linspace(-1, 1, 40_001, dtype=torch.float64)
    if name == "symmetric":
        L = 2 ** (bits - 1) - 1
        return dense * (L + 3) * 0.1, (torch.tensor([0.1], dtype=torch.float64), None)
    if name == "asymmetric":
        zp, qmax = 2 ** (bits - 1), 2 ** bits - 1
        x = (dense + 1) / 2 * (qmax + 6) - zp - 3
        return x * 0.1, (torch.tensor([0.1], dtype=torch.float64), torch.tensor([zp], dtype=torch.int32))
    if name == "range":   # levels offset + k * scale, k = 0 .. 2^b - 1, offset off the grid of 0
        qmax = 2 ** bits - 1
        x = (dense + 1) / 2 * (qmax + 6) - 3
        return x * 0.1 - 0.37, (torch.tensor([0.1], dtype=torch.float64), torch.tensor([-0.37], dtype=torch.float64))
    assert name == "pow2"  # every level is +-2^-k, k = 0 .. L-1; add 0 and values beyond
    L = 2 ** (bits - 1) - 1
    powers = torch.ldexp(torch.ones(L + 4, dtype=torch.float64), -torch.arange(L + 4) + 2)
    x = torch.cat([dense * 4, powers, -powers, torch.zeros(1, dtype=torch.float64)])
    return x, (torch.ones(1, dtype=torch.float64), None)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", CALIBRATED)
@pytest.mark.parametrize("bits", range(2, 9))
def test_levels_are_the_distinct_values_of_a_ramp(impl, name, bits):
    x, (p0, p1) = _ramp_and_params(name, bits)
    fq = impl.fake_quant(x, name, bits, p0, p1)
    assert torch.unique(fq).numel() == SCHEMES[name].levels(bits)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bits", _bits("codebook"))
def test_codebook_of_2_to_the_bits_values_round_trips(impl, bits):
    spec, K = SCHEMES["codebook"], 2 ** bits
    assert spec.levels(bits) == K
    cb = torch.sort(torch.randn(K, dtype=torch.float64)).values
    codes = impl.quantize(cb, "codebook", bits, cb)
    assert torch.equal(codes, torch.arange(K).to(spec.code_dtype))
    assert torch.equal(impl.dequantize(codes, "codebook", bits, cb), cb)
    ramp = torch.linspace(float(cb[0]) - 1, float(cb[-1]) + 1, 20_001, dtype=torch.float64)
    assert torch.unique(impl.fake_quant(ramp, "codebook", bits, cb)).numel() == K


def _params(name, bits, w):
    if name == "codebook":
        return torch.linspace(-1, 1, 2 ** bits, dtype=w.dtype), None
    p = ops.qparams(w, name, bits, 1, SCHEMES[name].step_rules[0])
    return p[0], (p[1] if len(p) > 1 else None)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(SCHEMES))
def test_quantize_gives_the_code_dtype_and_spans_the_code_range(impl, name):
    spec = SCHEMES[name]
    for bits in _bits(name):
        w = torch.cat([torch.linspace(-3, 3, 4001), torch.zeros(1)])
        p0, p1 = _params(name, bits, w)
        codes = impl.quantize(w, name, bits, p0, p1)
        assert codes.dtype == spec.code_dtype, bits
        lo, hi = spec.code_range(bits, p0.numel() if name == "codebook" else None)
        assert (int(codes.min()), int(codes.max())) == (lo, hi), bits


@pytest.mark.parametrize("name", list(SCHEMES))
def test_field_offset_and_code_range_agree_with_pack(name):
    spec = SCHEMES[name]
    for bits in _bits(name):
        lo, hi = spec.code_range(bits)
        codes = torch.arange(lo, hi + 1).to(spec.code_dtype)
        packed = ops.pack(codes, bits)
        fields = ops.unpack(packed, bits, codes.numel(), False).long()
        assert torch.equal(fields, codes.long() + spec.field_offset(bits)), bits
        assert int(fields.min()) >= 0 and int(fields.max()) < 2 ** bits, bits
        assert torch.equal(ops.unpack(packed, bits, codes.numel(), spec.signed), codes), bits
        assert torch.equal(R.pack(codes, bits), packed), bits
