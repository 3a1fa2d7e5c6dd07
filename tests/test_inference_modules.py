"""Packed modules and convert(): outputs against the fake-quant model, real sizes, errors."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lowbit as lb
from lowbit import reference as R
from lowbit.inference import LUTConv2d, LUTLinear, ShiftConv2d, ShiftLinear


def _frozen(model, **cfg):
    lb.attach(model, lb.QuantConfig(**cfg))
    return lb.freeze(model)


@pytest.mark.parametrize("scheme,bits", [("symmetric", 3), ("asymmetric", 4), ("pow2", 4), ("pow2", 2)])
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_lut_linear_module_equals_fake_quant(scheme, bits, granularity):
    lin = nn.Linear(37, 11)
    qp = lb.calibrate(lin.weight.detach(), scheme, bits, granularity)
    wq = lb.fake_quantize(lin.weight.detach(), qp)
    mod = LUTLinear(wq, qp, lin.bias)
    x = torch.randn(5, 37)
    torch.testing.assert_close(mod(x), F.linear(x, wq, lin.bias), rtol=1e-5, atol=1e-5)
    assert mod.model_size() == mod.w_packed.numel() + mod.tables.numel() * 4 + 11 * 4


def test_lut_linear_codebook():
    qp = lb.codebook([-0.3, -0.05, 0.0, 0.1, 0.4])
    w = lb.fake_quantize(torch.randn(6, 20) * 0.2, qp)
    mod = LUTLinear(w, qp)
    x = torch.randn(3, 20)
    torch.testing.assert_close(mod(x), x @ w.T, rtol=1e-5, atol=1e-5)
    assert mod.bits == 3 and mod.w_packed.numel() == 6 * 3 * 3


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_shift_linear_module_matches_the_integer_reference(bits):
    lin = nn.Linear(50, 9)
    qp = lb.calibrate(lin.weight.detach(), "pow2", bits, "channel")
    wq = lb.fake_quantize(lin.weight.detach(), qp)
    mod = ShiftLinear(wq, qp, lin.bias)
    x = torch.randn(4, 50)
    codes, step = R.quantize_activations(x, 8)
    # The reference: integer product of activation codes and the exact power-of-two weights.
    expected = (codes.double() @ wq.double().T * step.double()).float() + lin.bias
    torch.testing.assert_close(mod(x), expected, rtol=1e-6, atol=1e-6)
    assert mod.layout == "planes"  # the default: bit-plane rows on the pow2 kernel
    assert torch.equal(mod(x), R.pow2_linear(x, mod.w_packed, bits, mod.w_scale, mod.bias))
    rows = ShiftLinear(wq, qp, lin.bias, layout="rows")  # the shift kernel: the same outputs
    assert torch.equal(rows(x), mod(x))
    assert torch.equal(rows(x), R.shift_linear(x, rows.w_packed, bits, rows.w_scale, rows.bias))
    # and it is close to the float-activation product (8-bit activations)
    torch.testing.assert_close(mod(x), F.linear(x, wq, lin.bias), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("stride,padding,groups,bias", [(1, 0, 1, True), (2, 1, 1, False), (1, 2, 2, True), (2, 0, 4, True)])
def test_packed_conv2d_against_torch_conv(stride, padding, groups, bias):
    conv = nn.Conv2d(4, 8, 3, stride=stride, padding=padding, groups=groups, bias=bias)
    x = torch.randn(2, 4, 9, 11)
    for scheme in ("symmetric", "pow2"):
        qp = lb.calibrate(conv.weight.detach(), scheme, 4, "channel")
        with torch.no_grad():
            conv.weight.copy_(lb.fake_quantize(conv.weight, qp))
        expected = conv(x)
        torch.testing.assert_close(LUTConv2d(conv, qp)(x), expected, rtol=1e-5, atol=1e-5)
        if scheme == "pow2":
            shift = ShiftConv2d(conv, qp)
            # integer activations: the input rounded to 8 bits, then an exact product
            codes, step = R.quantize_activations(x, 8)
            torch.testing.assert_close(shift(x), F.conv2d(codes.float() * step, conv.weight, conv.bias,
                                                          stride, padding, 1, groups), rtol=1e-5, atol=1e-4)


def test_convert_lenet_lut_equals_fake_quant_and_shift_is_close():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    for scheme in ("symmetric", "pow2"):
        model = _frozen(lb.models.LeNet5(), bits=4, scheme=scheme, granularity="channel")
        ref = model(x)
        lut = lb.inference.convert(model, mode="lut")
        torch.testing.assert_close(lut(x), ref, rtol=1e-4, atol=1e-4)
        assert torch.equal(lut(x).argmax(1), ref.argmax(1))
        assert isinstance(lut.features[0], LUTConv2d) and isinstance(lut.classifier[4], nn.Linear)
        assert lb.inference.model_size(lut) < lb.inference.model_size(model) / 3
    shift = lb.inference.convert(model)  # pow2 -> shift modules by default
    assert isinstance(shift.classifier[0], ShiftLinear) and isinstance(shift.features[3], ShiftConv2d)
    agree = (shift(x).argmax(1) == ref.argmax(1)).float().mean()
    assert agree >= 0.9
    assert model.classifier[0].weight.dtype == torch.float32  # the original is untouched


def test_convert_ffdnn_and_frozen_state_survives_deepcopy():
    model = _frozen(lb.models.FFDNN(width=32), bits=3, scheme="symmetric")
    clone = copy.deepcopy(model)
    x = torch.randn(8, 784)
    # float activations (mode='lut'): the frozen model's outputs up to summation order
    torch.testing.assert_close(lb.inference.convert(clone, mode="lut")(x), model(x), rtol=1e-4, atol=1e-4)


def test_convert_and_modules_reject_bad_input():
    with pytest.raises(ValueError, match="lb.freeze or quantized with lb.ptq"):
        lb.inference.convert(lb.models.LeNet5())
    attached = lb.models.LeNet5()
    lb.attach(attached, lb.QuantConfig(bits=4))
    with pytest.raises(ValueError, match="freeze"):
        lb.inference.convert(attached)
    model = _frozen(lb.models.FFDNN(width=16), bits=4, scheme="symmetric")
    with pytest.raises(ValueError, match="mode='shift' needs weights the shift kernel serves \\(pow2\\)"):
        lb.inference.convert(model, mode="shift")
    with pytest.raises(ValueError, match="mode must be"):
        lb.inference.convert(model, mode="fast")
    with torch.no_grad():
        model.hidden.fc1.weight.add_(0.001)
    with pytest.raises(ValueError, match="not on its recorded quantization grid"):
        lb.inference.convert(model)
    lin = nn.Linear(8, 4)
    qp = lb.calibrate(lin.weight.detach(), "pow2", 4)
    with pytest.raises(ValueError, match="act_bits"):
        ShiftLinear(lin.weight, qp, act_bits=1)
    with pytest.raises(ValueError, match="power-of-two"):
        ShiftLinear(lin.weight, lb.calibrate(lin.weight.detach(), "symmetric", 4))
    mod = ShiftLinear(lb.fake_quantize(lin.weight.detach(), qp), qp)
    with pytest.raises(ValueError, match="8 features"):
        mod(torch.randn(2, 7))
    with pytest.raises(TypeError, match="float32"):
        mod(torch.randn(2, 8).double())
    conv = LUTConv2d(nn.Conv2d(2, 4, 3), lb.calibrate(torch.randn(4, 2, 3, 3), "symmetric", 4))
    with pytest.raises(ValueError, match=r"\[N, 2, H, W\]"):
        conv(torch.randn(1, 3, 8, 8))
