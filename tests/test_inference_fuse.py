"""lb.inference.fuse: one native call per forward, equal to the unfused converted model
bit for bit, on random chains (hypothesis), the shipped models, and bad input."""
import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from torch import nn

import lowbit as lb
from lowbit import reference as R


def _converted(model, mode="auto", scheme="pow2", bits=4, granularity="channel", quantize_output=False, **kw):
    model = copy.deepcopy(model)
    lb.attach(model, lb.QuantConfig(bits=bits, scheme=scheme, granularity=granularity,
                                    quantize_output=quantize_output))
    lb.freeze(model)
    return lb.inference.convert(model, mode=mode, **kw)


def _assert_fused_equal(converted, x):
    fused = lb.inference.fuse(converted)
    with torch.no_grad():
        assert torch.equal(fused(x), converted(x))
    return fused


@pytest.mark.parametrize("mode,scheme", [("shift", "pow2"), ("lut", "pow2"), ("int", "symmetric"),
                                         ("int", "asymmetric")])
@pytest.mark.parametrize("batch", [1, 5])
def test_lenet_fused_equals_converted(isa, mode, scheme, batch):
    converted = _converted(lb.models.LeNet5().eval(), mode=mode, scheme=scheme)
    fused = _assert_fused_equal(converted, torch.randn(batch, 1, 28, 28))
    kind = mode
    assert fused.steps() == [f"{kind}_conv2d+relu+max_pool2d", f"{kind}_conv2d+relu+max_pool2d",
                             "flatten", f"{kind}_linear+relu", f"{kind}_linear+relu", "linear"]
    assert fused.model_size() == lb.inference.model_size(converted)


def test_shift_conv_kernel_against_the_integer_reference(isa):
    """The 4-tap column kernel (fused shift convolutions up to 4 bits) against R.shift_linear
    on torch's own unfold of the input."""
    conv = nn.Conv2d(3, 7, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=True)
    converted = _converted(nn.Sequential(conv).eval(), quantize_output=True)
    fused, part = lb.inference.fuse(converted), converted[0].parts[0]
    x = torch.randn(2, 3, 9, 8)
    cols = F.unfold(x, (3, 2), (1, 2), (1, 2), (2, 1))  # [N, K, L]
    step = float(R.quantize_activations(x.reshape(1, -1), 8)[1])
    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    ref = R.shift_linear(rows, part.w_packed, 4, part.w_scale, part.bias, 8, step)
    out = fused(x)
    assert out.shape == conv(x).shape
    assert torch.equal(out, ref.reshape(2, -1, 7).transpose(1, 2).reshape(out.shape))


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
def test_int_conv_kernel_against_the_integer_reference(isa, scheme):
    """The direct kernel (fused int convolutions of up to 256 taps) against R.int_linear on
    torch's own unfold of the input: each window rounded with its own step."""
    conv = nn.Conv2d(3, 7, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=True)
    converted = _converted(nn.Sequential(conv).eval(), scheme=scheme, quantize_output=True)
    fused, part = lb.inference.fuse(converted), converted[0].parts[0]
    x = torch.randn(2, 3, 9, 8)
    x[1, 1] = 0.0  # windows of zeros too
    rows = F.unfold(x, (3, 2), (1, 2), (1, 2), (2, 1)).transpose(1, 2).reshape(-1, 18)
    ref = R.int_linear(rows, part.w_packed, part.bits, part.w_scale, part.zero_point, part.bias, 8)
    out = fused(x)
    assert torch.equal(out, ref.reshape(2, -1, 7).transpose(1, 2).reshape(out.shape))


@settings(max_examples=25, deadline=None)
@given(cin=st.integers(1, 6), mult=st.integers(1, 3), groups=st.sampled_from([1, 2]), k=st.integers(1, 4),
       stride=st.integers(1, 2), pad=st.integers(0, 2), dil=st.integers(1, 2), size=st.integers(6, 11),
       bits=st.sampled_from([2, 3, 4, 5, 8]), mode=st.sampled_from(["shift", "lut", "int"]),
       method=st.sampled_from(["auto", "literal"]), act_bits=st.sampled_from([8, 4]), batch=st.integers(1, 3),
       bias=st.booleans(), pool=st.booleans(), asymmetric=st.booleans(), seed=st.integers(0, 2 ** 16),
       isa=st.sampled_from(lb.threads.supported_isas()))
def test_random_chains_fused_equal_converted(cin, mult, groups, k, stride, pad, dil, size, bits, mode, method,
                                             act_bits, batch, bias, pool, asymmetric, seed, isa):
    """Small convolutions (up to 6 x 4 x 4 = 96 taps) run on the direct kernel in the fused
    plan and on im2col rows unfused: both give the same integer sums, so the same floats."""
    torch.manual_seed(seed)
    cin *= groups
    size = max(size, dil * (k - 1) + 1)
    conv = nn.Conv2d(cin, mult * groups * 2, k, stride=stride, padding=pad, dilation=dil, groups=groups, bias=bias)
    x = torch.randn(batch, cin, size, size)
    with torch.no_grad():
        shape = conv(x).shape
    assume(shape[-1] >= 2 and shape[-2] >= 2)  # room for the 2x2 pool
    layers = [conv, nn.ReLU()] + ([nn.MaxPool2d(2)] if pool else []) + [nn.Flatten()]
    with torch.no_grad():
        features = nn.Sequential(*layers)(x).shape[1]
    model = nn.Sequential(*layers, nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    scheme = {"shift": "pow2", "lut": "symmetric", "int": "asymmetric" if asymmetric else "symmetric"}[mode]
    converted = _converted(model, mode=mode, scheme=scheme, bits=bits, act_bits=act_bits,
                           **({"method": method} if mode == "shift" else {}))
    lb.set_kernel_isa(isa)
    try:
        _assert_fused_equal(converted, x)
    finally:
        lb.set_kernel_isa("auto")


@pytest.mark.parametrize("mode,scheme,bits", [("int", "symmetric", 8), ("int", "asymmetric", 3),
                                              ("shift", "pow2", 4), ("shift", "pow2", 8)])
def test_convolutions_on_both_sides_of_the_direct_kernel_limit(isa, mode, scheme, bits):
    """Fused equals unfused on both sides of the direct kernel's limit: 256 taps per group
    (the direct kernel) and 260 (im2col rows); with 8-bit power-of-two weights (up to 2^30)
    the exactness check sends even small windows to im2col."""
    for cin in (16, 65):  # x 2 x 2 taps
        torch.manual_seed(cin)
        model = nn.Sequential(nn.Conv2d(cin, 6, 2, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, stride=2)).eval()
        converted = _converted(model, mode=mode, scheme=scheme, bits=bits, quantize_output=True)
        _assert_fused_equal(converted, torch.randn(3, cin, 7, 9))


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (3, 2, 2)])
def test_direct_kernel_on_output_rows_longer_than_a_block(isa, stride, padding, dilation):
    """Output rows of 17-38 positions: a 16-lane block then holds parts of one or two rows."""
    torch.manual_seed(stride)
    for mode, scheme in (("int", "symmetric"), ("shift", "pow2")):
        model = nn.Sequential(nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation)).eval()
        converted = _converted(model, mode=mode, scheme=scheme, quantize_output=True)
        _assert_fused_equal(converted, torch.randn(2, 3, 21, 40))


def test_nan_input_of_fused_convolutions():
    """Integer-activation kernels raise, fused and unfused; float-activation tables carry
    NaN to that image's outputs only, as the fake-quant model does."""
    x = torch.randn(4, 1, 28, 28)
    x[2, 0, 5, 7] = float("nan")
    for mode, scheme in (("int", "symmetric"), ("shift", "pow2"), ("lut", "symmetric")):
        converted = _converted(lb.models.LeNet5().eval(), mode=mode, scheme=scheme)
        for model in (lb.inference.fuse(converted), converted):
            if mode == "lut":
                assert model(x).isnan().any(1).tolist() == [False, False, True, False]
                continue
            with pytest.raises(ValueError, match="x contains NaN|input of an? (int|shift) layer contains NaN"):
                model(x)


def test_relu_and_pool_join_the_layer_before_them_only_in_that_order():
    """conv -> ReLU -> pool runs as one step; after a joined pool a ReLU stays a step (inside
    the layer ReLU runs first, and the other order can change the sign of a zero)."""
    torch.manual_seed(0)
    chains = {
        ("int_conv2d+relu+max_pool2d", "flatten", "int_linear+relu", "relu", "int_linear"):
            [nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5), nn.ReLU(), nn.ReLU(),
             nn.Linear(5, 3)],
        ("int_conv2d+max_pool2d", "relu", "max_pool2d", "flatten", "int_linear"):
            [nn.Conv2d(2, 4, 3), nn.MaxPool2d(2), nn.ReLU(), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(4, 3)],
    }
    for steps, layers in chains.items():
        converted = _converted(nn.Sequential(*layers).eval(), mode="int", scheme="symmetric", quantize_output=True)
        fused = _assert_fused_equal(converted, torch.randn(5, 2, 8, 8))
        assert tuple(fused.steps()) == steps


def test_fuse_or_keep_fuses_what_it_can():
    fused, why_not = lb.inference.fuse_or_keep(_converted(lb.models.LeNet5().eval()))
    assert isinstance(fused, lb.inference.FusedModel) and why_not is None


def test_vgg_with_batchnorm_and_ptq():
    model = lb.ptq(lb.models.SmallVGG(width=8).eval(), "pow2", 4)
    converted = lb.inference.convert(model)
    _assert_fused_equal(converted, torch.randn(2, 1, 28, 28))


def test_ffdnn_and_a_static_activation_scale():
    model = lb.models.FFDNN().eval()
    converted = _converted(model, x_scale=0.02)
    _assert_fused_equal(converted, torch.randn(3, 1, 28, 28))


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("mode,scheme", [("int", "asymmetric"), ("shift", "pow2"), ("vlut", "pow2"),
                                         ("lut", "symmetric")])
def test_batches_split_over_threads_give_the_same_outputs(isa, mode, scheme, threads):
    """Fused integer layers split a batch by rows over the threads (one parallel region per
    layer); the outputs stay those of the unfused model, which splits output rows."""
    lb.set_num_threads(threads)
    try:
        converted = _converted(lb.models.FFDNN().eval(), mode=mode, scheme=scheme, quantize_output=True)
        for batch in (7, 64):
            _assert_fused_equal(converted, torch.randn(batch, 1, 28, 28))
    finally:
        lb.set_num_threads(0)


def test_fused_model_survives_deepcopy_pickle_and_state_dict():
    converted = _converted(lb.models.LeNet5().eval())
    fused = lb.inference.fuse(converted)
    x = torch.randn(2, 1, 28, 28)
    y = fused(x)
    assert torch.equal(copy.deepcopy(fused)(x), y)
    assert torch.equal(pickle.loads(pickle.dumps(fused))(x), y)
    other = lb.inference.fuse(_converted(lb.models.LeNet5().eval()))
    other.load_state_dict(fused.state_dict())
    assert torch.equal(other(x), y)


def test_input_is_never_overwritten():
    model = _converted(nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(12, 4)).eval(), quantize_output=True)
    x = torch.randn(2, 3, 4)
    before = x.clone()
    _assert_fused_equal(model, x)
    assert torch.equal(x, before)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc(x)


@pytest.mark.parametrize("model,match", [
    (nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()), "Sigmoid"),
    (_Residual(), "straight chain"),
    (nn.Sequential(nn.Linear(8, 8), nn.MaxPool1d(2)), "MaxPool1d"),
    (nn.Sequential(nn.MaxPool2d(2, padding=2)), "half the kernel"),
])
def test_unsupported_models_are_named(model, match):
    with pytest.raises(ValueError, match=match):
        lb.inference.fuse(model.eval())
    kept, why_not = lb.inference.fuse_or_keep(model.eval())
    assert kept is model and match in why_not


def test_bad_input():
    fused = lb.inference.fuse(_converted(lb.models.LeNet5().eval()))
    with pytest.raises(TypeError, match="float32"):
        fused(torch.randn(1, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        fused(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        fused(torch.full((1, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="non-empty"):
        fused(torch.randn(0, 1, 28, 28))
    with pytest.raises(ValueError, match="eval"):
        lb.inference.fuse(lb.models.LeNet5().train())
    with pytest.raises(TypeError, match="nn.Module"):
        lb.inference.fuse("lenet")
    # a 3x3 window with stride 2 does not fit a 2x2 image; (2 - 3) / 2 truncated to 0 once gave 1x1
    torch.manual_seed(0)
    strided = lb.inference.fuse(_converted(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()).eval(),
                                           quantize_output=True))
    assert strided(torch.randn(1, 1, 5, 5)).shape == (1, 2, 2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        strided(torch.randn(1, 1, 2, 2))


def test_flatten_arguments_are_read_by_name_and_position():
    from lowbit.inference.fuse import _flatten_start

    class Net(nn.Module):
        def forward(self, x):
            x = torch.flatten(x, end_dim=-1)       # keyword end_dim only: start 0
            x = torch.flatten(x, 1)
            return x.flatten(start_dim=2, end_dim=-1)

    nodes = [n for n in torch.fx.symbolic_trace(Net()).graph.nodes if "flatten" in str(n.target)]
    assert [_flatten_start(n) for n in nodes] == [0, 1, 2]
    bad = torch.fx.symbolic_trace(type("B", (nn.Module,), {"forward": lambda s, x: torch.flatten(x, 1, 2)})())
    with pytest.raises(ValueError, match="only flatten"):
        _flatten_start([n for n in bad.graph.nodes if n.op == "call_function"][0])
