"""Bad input gets a clear exception naming the argument, from the kernels and the
references alike."""
import pytest
import torch

from lowbit import ops
from lowbit import reference as R

IMPLS = [pytest.param(ops, id="native"), pytest.param(R, id="reference")]
STEP = torch.tensor([0.1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights(impl, bad):
    w = torch.randn(10)
    w[3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        impl.fake_quant(w, "symmetric", 4, STEP)
    with pytest.raises(ValueError, match="NaN or Inf"):
        impl.qparams(w, "symmetric", 4, 1, "l2")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bits", [0, 1, 9, 16, -3])
def test_bits_out_of_range(impl, bits):
    with pytest.raises(ValueError, match="bits must be in"):
        impl.fake_quant(torch.randn(5), "symmetric", bits, STEP)


@pytest.mark.parametrize("impl", IMPLS)
def test_codebook_bits_and_size(impl):
    with pytest.raises(ValueError, match="between 2 and"):
        impl.quantize(torch.randn(5), "codebook", 1, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="bits must be in"):
        impl.quantize(torch.randn(5), "codebook", 9, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.uint8])
def test_wrong_dtype(impl, dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        impl.fake_quant(torch.ones(5).to(dtype), "symmetric", 4, STEP)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_and_zero_dim(impl):
    with pytest.raises(ValueError, match="empty"):
        impl.fake_quant(torch.empty(0, 3), "symmetric", 4, STEP)
    with pytest.raises(ValueError, match="0-dim"):
        impl.fake_quant(torch.tensor(1.0), "symmetric", 4, STEP)
    with pytest.raises(ValueError, match="0-dim"):
        impl.qparams(torch.tensor(1.0), "symmetric", 4, 1, "l2")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("step", [0.0, -0.1, float("nan"), float("inf")])
def test_non_positive_step(impl, step):
    with pytest.raises(ValueError, match="step must be positive"):
        impl.fake_quant(torch.randn(5), "symmetric", 4, torch.tensor([step]))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cb", [[0.0, 2.0, 1.0], [0.0, 1.0, 1.0], [float("nan"), 1.0]])
def test_unsorted_duplicate_or_nan_codebook(impl, cb):
    with pytest.raises(ValueError, match="codebook must be"):
        impl.quantize(torch.randn(5), "codebook", 2, torch.tensor(cb))


@pytest.mark.parametrize("impl", IMPLS)
def test_parameter_mismatches(impl):
    w = torch.randn(6, 4)
    with pytest.raises(ValueError, match="not a multiple"):
        impl.fake_quant(w, "symmetric", 4, torch.full((4,), 0.1))
    with pytest.raises(TypeError, match="step must be"):
        impl.fake_quant(w, "symmetric", 4, torch.full((1,), 0.1, dtype=torch.float64))
    with pytest.raises(ValueError, match="zero_point"):
        impl.fake_quant(w, "asymmetric", 4, torch.tensor([0.1]))
    with pytest.raises(ValueError, match="zero_point must be in"):
        impl.fake_quant(w, "asymmetric", 4, torch.tensor([0.1]), torch.tensor([16], dtype=torch.int32))
    with pytest.raises(ValueError, match="power of two"):
        impl.fake_quant(w, "pow2", 4, torch.tensor([0.3]))
    with pytest.raises(ValueError, match="scheme must be"):
        impl.fake_quant(w, "float8", 4, torch.tensor([0.1]))
    with pytest.raises(ValueError, match="method for 'symmetric'"):
        impl.qparams(w, "symmetric", 4, 1, "minmax")
    with pytest.raises(ValueError, match="groups must divide"):
        impl.qparams(w, "symmetric", 4, 4, "l2")


@pytest.mark.parametrize("impl", IMPLS)
def test_codes_out_of_range_are_not_clipped(impl):
    with pytest.raises(ValueError, match="outside the range"):
        impl.dequantize(torch.tensor([0, 4], dtype=torch.int8), "symmetric", 3, STEP)
    with pytest.raises(ValueError, match="outside the range"):
        impl.dequantize(torch.tensor([0, 3], dtype=torch.uint8), "codebook", 2, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="codes for the 'symmetric' scheme must be"):
        impl.dequantize(torch.tensor([0, 1], dtype=torch.uint8), "symmetric", 3, STEP)


@pytest.mark.parametrize("impl", IMPLS)
def test_pack_errors(impl):
    with pytest.raises(ValueError, match="do not fit"):
        impl.pack(torch.tensor([0, 16], dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="do not fit"):
        impl.pack(torch.tensor([0, -9], dtype=torch.int8), 4)
    with pytest.raises(TypeError, match="codes must be uint8"):
        impl.pack(torch.tensor([0, 1], dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="need"):
        impl.unpack(torch.zeros(3, dtype=torch.uint8), 4, 10, False)
