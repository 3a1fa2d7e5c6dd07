"""LUTConv1d / ShiftConv1d against the frozen nn.Conv1d (the float module is the reference)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import lowbit as lb
from lowbit import reference as R
from lowbit.inference import LUTConv1d, LUTConv2d, ShiftConv1d, ShiftConv2d

SCHEMES = ("symmetric", "asymmetric", "pow2", "codebook")


def _qparams(w, scheme, bits, per_channel):
    groups = w.shape[0] if per_channel else 1
    if scheme == "codebook":
        values = torch.sort(torch.randn(groups, 2 ** bits) * (w.abs().max().item() or 1.0), dim=1).values
        return lb.codebook(values, bits)
    return lb.calibrate(w, scheme, bits, "channel" if per_channel else "tensor")


def _freeze(conv, scheme, bits, per_channel):
    """The frozen layer: its weight replaced by the quantized values (what lb.freeze leaves)."""
    qp = _qparams(conv.weight.detach(), scheme, bits, per_channel)
    with torch.no_grad():
        conv.weight.copy_(lb.fake_quantize(conv.weight, qp))
    return qp


@settings(max_examples=40, deadline=None)
@given(groups=st.sampled_from([1, 2, 3]), cin=st.integers(1, 3), cout=st.integers(1, 3),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 3), dilation=st.integers(1, 2),
       bias=st.booleans(), N=st.integers(1, 3), extra=st.integers(0, 9),
       scheme=st.sampled_from(SCHEMES), bits=st.integers(2, 5), per_channel=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_conv1d_modules_equal_the_frozen_conv(groups, cin, cout, kernel, stride, padding, dilation, bias, N,
                                              extra, scheme, bits, per_channel, seed):
    torch.manual_seed(seed)
    conv = nn.Conv1d(cin * groups, cout * groups, kernel, stride, padding, dilation, groups, bias)
    qp = _freeze(conv, scheme, bits, per_channel)
    L = max(1, dilation * (kernel - 1) + 1 - 2 * padding) + extra  # the window always fits
    x = torch.randn(N, cin * groups, L)
    with torch.no_grad():
        expected = conv(x)
    torch.testing.assert_close(LUTConv1d(conv, qp)(x), expected, rtol=1e-5, atol=1e-5)
    if scheme == "pow2":
        # integer activations: the input rounded to 8 bits (one step for all of it), then exact
        codes, step = R.quantize_activations(x, 8)
        rounded = F.conv1d(codes.float() * step, conv.weight, conv.bias, stride, padding, dilation, groups)
        torch.testing.assert_close(ShiftConv1d(conv, qp)(x), rounded, rtol=1e-5, atol=1e-4)
        # a fixed activation step instead of the dynamic one
        codes, step = R.quantize_activations(x, 6, 0.05)
        rounded = F.conv1d(codes.float() * step, conv.weight, conv.bias, stride, padding, dilation, groups)
        torch.testing.assert_close(ShiftConv1d(conv, qp, act_bits=6, x_scale=0.05)(x), rounded,
                                   rtol=1e-5, atol=1e-4)


def test_shift_conv1d_is_close_to_the_float_conv_and_equals_a_height_one_conv2d():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2)
    qp = _freeze(conv, "pow2", 4, True)
    x = torch.randn(3, 4, 20)
    with torch.no_grad():
        expected = conv(x)
    y = ShiftConv1d(conv, qp)(x)
    assert (y - expected).abs().max() <= 0.02 * expected.abs().max()  # 8-bit activations
    conv2d = nn.Conv2d(4, 6, (1, 3), stride=(1, 2), padding=(0, 1), groups=2)
    with torch.no_grad():
        conv2d.weight.copy_(conv.weight.unsqueeze(2))
        conv2d.bias.copy_(conv.bias)
    assert torch.equal(y, ShiftConv2d(conv2d, qp)(x.unsqueeze(2)).squeeze(2))
    assert torch.equal(LUTConv1d(conv, qp)(x), LUTConv2d(conv2d, qp)(x.unsqueeze(2)).squeeze(2))


def test_conv1d_all_zero_input_and_real_sizes():
    conv = nn.Conv1d(2, 4, 3, bias=False)
    qp = _freeze(conv, "pow2", 3, False)
    x = torch.zeros(1, 2, 7)
    assert torch.equal(ShiftConv1d(conv, qp)(x), torch.zeros(1, 4, 5))
    lut = LUTConv1d(conv, qp)
    assert lut.model_size() == 4 * 3 * 1 + 8 * 4  # 4 rows of 6 fields at 3 bits, one 8-entry table
    assert "kernel_size=3" in repr(lut) and "bits=3" in repr(lut)
    assert not isinstance(lut, LUTConv2d) and not isinstance(ShiftConv1d(conv, qp), ShiftConv2d)


def test_conv1d_bad_layers_and_inputs_are_named():
    qp = lb.calibrate(torch.randn(4, 2, 3), "pow2", 4)
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        LUTConv1d(nn.Conv1d(2, 4, 3, padding=1, padding_mode="reflect"), qp)
    with pytest.raises(ValueError, match="padding='same'"):
        ShiftConv1d(nn.Conv1d(2, 4, 3, padding="same"), qp)
    with pytest.raises(ValueError, match="act_bits"):
        ShiftConv1d(nn.Conv1d(2, 4, 3), qp, act_bits=9)
    for mod in (LUTConv1d(nn.Conv1d(2, 4, 3), qp), ShiftConv1d(nn.Conv1d(2, 4, 3), qp)):
        name = type(mod).__name__
        with pytest.raises(ValueError, match=rf"{name} expects a float32 \[N, 2, L\] tensor, got shape \[1, 3, 8\]"):
            mod(torch.randn(1, 3, 8))
        with pytest.raises(ValueError, match=r"\[N, 2, L\]"):
            mod(torch.randn(1, 2, 1, 8))
        with pytest.raises(TypeError, match="float32.*float64"):
            mod(torch.randn(1, 2, 8, dtype=torch.float64))
        with pytest.raises(TypeError, match="got list"):
            mod([[0.0] * 8] * 2)
