"""lowbit.ptq: data-free post-training quantization of whole models (paper 004), checked
against the reference quantizers tensor by tensor; the original is never modified."""
import copy

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

import lowbit as lb
from lowbit import reference as R
from lowbit.ptq import plan
from lowbit.schemes import SCHEMES as SPECS

SCHEMES = lb.schemes.CALIBRATED


class ConvBN(nn.Module):
    """Conv -> BN -> ReLU -> Linear -> Linear: every kind of tensor ptq handles."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 8)
        self.out = nn.Linear(8, 3)
        with torch.no_grad():  # BN parameters away from their 1 / 0 defaults
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.2, 0.2)
            self.bn.running_mean.uniform_(-0.1, 0.1)

    def forward(self, x):
        return self.out(torch.relu(self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(self.lstm(x)[0][:, -1])


def _model():
    return ConvBN().eval()


def _x():
    return torch.randn(6, 1, 6, 6)


def _param(model, module, param):
    return getattr(dict(model.named_modules())[module], param)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("bits", [2, 3, 5, 8])
@pytest.mark.parametrize("granularity", ["channel", "tensor"])
def test_every_tensor_matches_the_reference_quantizer(scheme, bits, granularity):
    model = _model()
    q = lb.ptq(model, scheme, bits, granularity)
    records = lb.recorded_qparams(q)
    expected = {("conv", "weight"), ("bn", "weight"), ("bn", "bias"), ("fc", "weight"), ("out", "weight")}
    assert set(records) == expected
    for (module, param), qp in records.items():
        w = _param(model, module, param).detach()
        per_tensor = granularity == "tensor" or module == "bn"   # BN: always one quantizer
        groups = 1 if per_tensor else w.shape[0]
        ref = R.qparams(w, scheme, bits, groups, SPECS[scheme].ptq_step)
        assert (qp.scheme, qp.bits, qp.groups) == (scheme, bits, groups)
        torch.testing.assert_close(qp.p0, ref[0])
        if scheme == "asymmetric":
            assert torch.equal(qp.p1, ref[1])
        got = _param(q, module, param).detach()
        assert torch.equal(lb.quantize(got, qp), R.quantize(w, scheme, bits, *ref))
        torch.testing.assert_close(got, R.fake_quant(w, scheme, bits, *ref))


def test_original_is_untouched_and_biases_and_statistics_stay_float():
    model = _model()
    before = copy.deepcopy(model.state_dict())
    q = lb.ptq(model, "asymmetric", 2)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert lb.recorded_qparams(model) == {}
    assert not torch.equal(q.conv.weight, model.conv.weight)
    for name in ("conv.bias", "fc.bias", "out.bias", "bn.running_mean", "bn.running_var"):
        assert torch.equal(q.state_dict()[name], before[name]), name


def test_method_is_the_old_name_of_step():
    model = _model()
    with pytest.warns(DeprecationWarning, match="step="):
        q = lb.ptq(model, "symmetric", 4, method="l2")
    assert torch.equal(q.fc.weight, lb.ptq(model, "symmetric", 4, step="l2").fc.weight)
    with pytest.raises(TypeError, match="not both"):
        lb.ptq(model, "symmetric", 4, method="l2", step="l2")


def test_symmetric_is_maxabs_by_default_and_step_overrides_it():
    model = _model()
    w = model.fc.weight.detach()
    q = lb.ptq(model, "symmetric", 4)
    torch.testing.assert_close(q.fc.lowbit_qparams["weight"].p0, w.abs().amax(1) / 7)
    q2 = lb.ptq(model, "symmetric", 4, step="l2")
    torch.testing.assert_close(q2.fc.lowbit_qparams["weight"].p0, lb.qstep(w, 4, "channel"))


def test_output_layer_option_layers_skip_and_overrides():
    model = _model()
    names = lambda m: {f"{a}.{b}" for a, b in lb.recorded_qparams(m)}  # noqa: E731
    assert "out.weight" in names(lb.ptq(model, "pow2", 4))             # the paper: all layers
    assert "out.weight" not in names(lb.ptq(model, "pow2", 4, quantize_output=False))
    assert names(lb.ptq(model, "pow2", 4, layers=["conv", "fc"])) == {"conv.weight", "fc.weight"}
    assert names(lb.ptq(model, "pow2", 4, skip=["bn"])) == {"conv.weight", "fc.weight", "out.weight"}
    assert names(lb.ptq(model, "pow2", 4, batchnorm=False)) == {"conv.weight", "fc.weight", "out.weight"}
    assert "fc.bias" in names(lb.ptq(model, "pow2", 4, quantize_bias=True))
    q = lb.ptq(model, "asymmetric", 2, overrides={"conv": {"bits": 8}, "out.weight": {"scheme": "symmetric"}})
    assert q.conv.lowbit_qparams["weight"].bits == 8 and q.fc.lowbit_qparams["weight"].bits == 2
    assert q.out.lowbit_qparams["weight"].scheme == "symmetric"
    assert q.out.lowbit_qparams["weight"].bits == 2
    # A scheme override does not inherit a step rule the new scheme lacks.
    q = lb.ptq(model, "symmetric", 4, step="l2", overrides={"out": {"scheme": "asymmetric"}})
    assert q.out.lowbit_qparams["weight"].scheme == "asymmetric"


def test_quantized_model_runs_and_low_bits_change_outputs_more():
    model, x = _model(), _x()
    ref = model(x)
    err = {b: (lb.ptq(model, "asymmetric", b)(x) - ref).abs().mean().item() for b in (8, 2)}
    assert err[8] < err[2]
    assert err[8] < 0.05 * ref.abs().mean().item()


def test_codebook_fixed_and_per_layer_function():
    model = _model()
    q = lb.ptq(model, "codebook", 2, codebook=[-0.2, 0.0, 0.2], batchnorm=False)
    assert torch.equal(q.fc.weight.detach().unique(), torch.tensor([-0.2, 0.0, 0.2]))

    def quartiles(w, bits):                      # any per-tensor rule (here 4 quantiles)
        probs = torch.linspace(0.1, 0.9, 2 ** bits, dtype=torch.float64)
        return torch.quantile(w.detach().double().flatten(), probs).unique()

    q = lb.ptq(model, "codebook", 2, codebook=quartiles, granularity="tensor")
    for (module, param), qp in lb.recorded_qparams(q).items():
        w = _param(model, module, param).detach()
        assert torch.equal(qp.p0[0], quartiles(w, 2).float())
        assert torch.equal(_param(q, module, param).detach(), lb.fake_quantize(w, qp))


def test_rnn_weights_are_quantized_per_row():
    model = Recurrent()
    q = lb.ptq(model, "symmetric", 3)
    assert set(lb.recorded_qparams(q)) == {("lstm", "weight_ih_l0"), ("lstm", "weight_hh_l0"),
                                          ("out", "weight")}
    for row in q.lstm.weight_hh_l0.detach():
        assert row.unique().numel() <= 7
    assert torch.isfinite(q(torch.randn(2, 4, 3))).all()


def test_plan_lists_targets_without_touching_the_model():
    targets = plan(_model(), "symmetric", 4, overrides={"conv": {"bits": 8}})
    assert [(t.name, t.role, t.config.bits, t.config.granularity) for t in targets] == [
        ("conv.weight", "weight", 8, "channel"), ("bn.weight", "batchnorm", 4, "tensor"),
        ("bn.bias", "batchnorm", 4, "tensor"), ("fc.weight", "weight", 4, "channel"),
        ("out.weight", "weight", 4, "channel")]


@pytest.mark.parametrize("kwargs,match", [
    ({"scheme": "ternary", "bits": 4}, "scheme must be one of"),
    ({"scheme": "asymmetric", "bits": 9}, r"bits must be in \[2, 8\]"),
    ({"scheme": "pow2", "bits": 1}, r"bits must be in \[2, 8\]"),
    ({"scheme": "symmetric", "bits": True}, "bits must be"),
    ({"scheme": "symmetric", "bits": 4, "granularity": "row"}, "granularity must be"),
    ({"scheme": "asymmetric", "bits": 4, "step": "l2"}, "step for the asymmetric"),
    ({"scheme": "codebook", "bits": 2}, "needs codebook="),
    ({"scheme": "codebook", "bits": 1, "codebook": [-1.0, 0.0, 1.0]}, "2..2"),
    ({"scheme": "codebook", "bits": 2, "codebook": [0.5, -0.5]}, "strictly increasing"),
    ({"scheme": "codebook", "bits": 2, "codebook": [-0.5, 0.5]}, "BatchNorm"),
    ({"scheme": "pow2", "bits": 4, "codebook": [-0.5, 0.5]}, "only used with scheme='codebook'"),
    ({"scheme": "pow2", "bits": 4, "layers": ["nothing*"]}, "layers pattern 'nothing\\*' matches no"),
    ({"scheme": "pow2", "bits": 4, "skip": "conv"}, "list of glob patterns"),
    ({"scheme": "pow2", "bits": 4, "overrides": {"conv": {"bitz": 3}}}, "unknown fields"),
    ({"scheme": "pow2", "bits": 4, "overrides": {"conv": {"bits": 12}}}, r"overrides\['conv'\]: bits must"),
    ({"scheme": "pow2", "bits": 4, "granularity": "group", "groups": 3}, "conv.weight: .*groups"),
    ({"scheme": "pow2", "bits": 4, "layers": ["out"], "quantize_output": False}, "nothing to quantize"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    model = _model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises((ValueError, TypeError), match=match):
        lb.ptq(model, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_models():
    with pytest.raises(ValueError, match="no quantizable tensor"):
        lb.ptq(nn.Sequential(nn.ReLU(), nn.Flatten()), "asymmetric", 4)
    with pytest.raises(TypeError, match="nn.Module"):
        lb.ptq(torch.randn(3, 3), "asymmetric", 4)
    hooked = _model()
    lb.attach(hooked, bits=4)
    with pytest.raises(ValueError, match="freeze"):
        lb.ptq(hooked, "asymmetric", 4)
    nan = _model()
    with torch.no_grad():
        nan.fc.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="fc.weight: .*NaN"):
        lb.ptq(nan, "asymmetric", 4)


@given(scheme=st.sampled_from(SCHEMES), bits=st.integers(2, 8),
       out=st.integers(1, 6), inp=st.integers(1, 9), scale=st.floats(1e-3, 1e2),
       granularity=st.sampled_from(["channel", "tensor"]), seed=st.integers(0, 2 ** 16))
def test_linear_layer_property(scheme, bits, out, inp, scale, granularity, seed):
    torch.manual_seed(seed)
    model = nn.Linear(inp, out)
    with torch.no_grad():
        model.weight.mul_(scale)
    q = lb.ptq(model, scheme, bits, granularity)
    qp = q.lowbit_qparams["weight"]
    w = model.weight.detach()
    assert torch.equal(q.weight.detach(), lb.fake_quantize(w, lb.calibrate(
        w, scheme, bits, granularity, method=SPECS[scheme].ptq_step)))
    levels = SPECS[scheme].levels(bits)
    for row in q.weight.detach().reshape(qp.groups, -1):
        assert row.unique().numel() <= levels
    assert torch.equal(q.bias, model.bias)
