"""Hooks: STE quantization on Linear / Conv / LSTM, exact detach, freeze, overrides,
state_dict / deepcopy / torch.save round trips, and clear errors."""
import copy
import io

import pytest
import torch
from torch import nn

import lowbit as lb


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.conv1d = nn.Conv1d(4, 4, 3, padding=1)
        self.lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):                        # x: [B, 1, 6, 6]
        h = torch.relu(self.conv(x))             # [B, 4, 4, 4]
        h = self.conv1d(h.flatten(2))            # [B, 4, 16]
        h, _ = self.lstm(h.transpose(1, 2))      # [B, 16, 8]
        return self.out(torch.relu(self.fc(h[:, -1])))


def _x(device="cpu"):
    return torch.randn(5, 1, 6, 6).to(device)


def test_targets_keep_biases_and_output_float():
    model = Tiny()
    state = lb.attach(model, lb.QuantConfig(bits=3))
    names = [t.name for t in state.targets]
    assert names == ["conv.weight", "conv1d.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
                     "lstm.weight_ih_l1", "lstm.weight_hh_l1", "fc.weight"]
    assert isinstance(model.out.weight, nn.Parameter) and isinstance(model.fc.bias, nn.Parameter)
    all_names = [t.name for t in lb.attach(Tiny(), quantize_output=True, quantize_bias=True).targets]
    assert "out.weight" in all_names and "fc.bias" in all_names and "lstm.bias_hh_l1" in all_names


@pytest.mark.parametrize("scheme,granularity,groups,max_values", [
    ("symmetric", "tensor", None, 7), ("symmetric", "channel", None, 7),
    ("asymmetric", "tensor", None, 8), ("pow2", "group", 4, 7)])
def test_forward_sees_quantized_weights(scheme, granularity, groups, max_values, test_device):
    model = Tiny().to(test_device)   # $LOWBIT_TEST_DEVICE (conftest.py): also CUDA on a GPU
    cfg = lb.QuantConfig(bits=3, scheme=scheme, granularity=granularity, groups=groups,
                         overrides={"conv*": {"granularity": "tensor"}})
    lb.attach(model, cfg)
    model(_x(test_device))
    for t in lb.targets(model):
        module = dict(model.named_modules())[t.module_name]
        w = getattr(module, t.param)
        G = lb.num_groups(w, t.config.granularity, t.config.groups)
        for g in w.detach().reshape(G, -1):
            assert g.unique().numel() <= max_values, t.name
        torch.testing.assert_close(w.detach(), lb.quantized_weights(model)[t.name])


def test_gradients_reach_float_shadows_and_training_changes_them(test_device):
    model = Tiny().to(test_device)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)  # made before attach: same Parameters
    lb.attach(model, bits=2)
    before = model.fc.weight_float.detach().clone()
    loss = model(_x(test_device)).pow(2).sum()
    loss.backward()
    assert model.fc.weight_float.grad is not None and model.lstm.weight_hh_l1_float.grad is not None
    opt.step()
    assert not torch.equal(before, model.fc.weight_float)


def test_detach_restores_exactly_the_same_parameters():
    model = Tiny()
    x = _x()
    ref = model(x)
    params = {n: p for n, p in model.named_parameters()}
    lb.attach(model, bits=2)
    assert not torch.allclose(model(x), ref)
    lb.detach(model)
    assert torch.equal(model(x), ref)
    assert {n: p for n, p in model.named_parameters()}.keys() == params.keys()
    assert all(p is params[n] for n, p in model.named_parameters())
    assert not model.fc._forward_pre_hooks and not model.fc._forward_hooks
    lb.attach(model, bits=4)  # attach again after detach is fine


def test_freeze_writes_quantized_values(test_device):
    model = Tiny().to(test_device)
    lb.attach(model, bits=3, granularity="channel")
    x = _x(test_device)
    quantized_out = model(x).detach()
    values = lb.quantized_weights(model)
    lb.freeze(model)
    assert torch.equal(model.fc.weight, values["fc.weight"])
    assert isinstance(model.lstm.weight_hh_l0, nn.Parameter)
    torch.testing.assert_close(model(x), quantized_out)
    # the grid of every frozen weight is recorded, and reproduces the frozen values
    recorded = lb.recorded_qparams(model)
    assert {f"{m}.{p}" for m, p in recorded} == set(values)
    qp = recorded[("fc", "weight")]
    assert qp.bits == 3 and qp.groups == model.fc.weight.shape[0]
    assert torch.equal(lb.fake_quantize(model.fc.weight, qp), model.fc.weight)


def test_state_dict_deepcopy_and_torch_save_round_trips():
    cfg = lb.QuantConfig(bits=3, granularity="channel")
    model = Tiny()
    lb.attach(model, cfg)
    model.fc.weight_float.data += 0.01  # trained shadows differ from the steps' origin
    lb.update_steps(model)
    x = _x()
    out = model(x)
    fresh = Tiny()
    lb.attach(fresh, cfg)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), out)
    clone = copy.deepcopy(model)
    assert torch.equal(clone(x), out)
    lb.detach(clone)  # detaching the copy leaves the original hooked
    assert torch.equal(model(x), out)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    # weights_only=False on purpose: this unpickles a whole hooked module (its class, hooks
    # and lowbit state), which only the full unpickler can rebuild. Since torch 2.6 the
    # default is weights_only=True; state_dicts load that way (next test).
    loaded = torch.load(buf, weights_only=False)
    assert torch.equal(loaded(x), out)


def _safe_round_trip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
def test_hooked_and_frozen_state_dicts_load_with_weights_only(scheme):
    """attach's <name>_float parameters and <name>_q0 / _q1 buffers, and the state_dict of a
    frozen or ptq model, are plain tensors: torch.load(weights_only=True) reads them. The
    QParams that freeze / ptq record are a module attribute, not state_dict entries."""
    cfg = lb.QuantConfig(bits=3, scheme=scheme, granularity="channel")
    model = Tiny()
    lb.attach(model, cfg)
    x = _x()
    out = model(x)
    state = model.state_dict()
    assert "fc.weight_float" in state and "fc.weight_q0" in state
    assert ("fc.weight_q1" in state) == (scheme == "asymmetric")
    loaded = _safe_round_trip(state)
    assert all(isinstance(v, torch.Tensor) for v in loaded.values())
    fresh = Tiny()
    lb.attach(fresh, cfg)
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh(x), out)

    lb.freeze(model)
    frozen = model.state_dict()
    assert lb.recorded_qparams(model) and not any("qparams" in k for k in frozen)
    plain = Tiny()
    plain.load_state_dict(_safe_round_trip(frozen))  # strict: the keys of a float Tiny
    torch.testing.assert_close(plain(x), model(x), rtol=0, atol=0)

    q = lb.ptq(Tiny(), scheme, 3)
    assert lb.recorded_qparams(q)
    plain.load_state_dict(_safe_round_trip(q.state_dict()))
    for name, tensor in q.state_dict().items():
        assert torch.equal(plain.state_dict()[name], tensor), name


def test_update_steps_and_history():
    model = Tiny()
    lb.attach(model, bits=3)
    first = model.fc.weight_q0.clone()
    with torch.no_grad():
        model.fc.weight_float.mul_(2)
    lb.update_steps(model)
    torch.testing.assert_close(model.fc.weight_q0, first * 2, rtol=1e-5, atol=0)
    assert len(lb.step_history(model)["fc.weight"]) == 2


def test_set_bits_changes_every_target():
    model = Tiny()
    lb.attach(model, bits=6)
    lb.set_bits(model, 2)
    assert {t.config.bits for t in lb.targets(model)} == {2}
    model(_x())
    assert model.fc.weight.unique().numel() <= 3


def test_overrides_and_skip():
    cfg = lb.QuantConfig(bits=4, overrides={"lstm.weight_hh_*": {"bits": 8}, "fc": {"scheme": "pow2"}},
                         skip=["conv1d"])
    state = lb.attach(Tiny(), cfg)
    by_name = {t.name: t.config for t in state.targets}
    assert "conv1d.weight" not in by_name
    assert by_name["lstm.weight_hh_l0"].bits == 8 and by_name["lstm.weight_ih_l0"].bits == 4
    assert by_name["fc.weight"].scheme == "pow2" and by_name["fc.weight"].step == "maxabs"


def test_codebook_config():
    state = lb.attach(Tiny(), scheme="codebook", bits=2, codebook=[-0.2, -0.05, 0.05, 0.2])
    model = Tiny()
    lb.attach(model, state.config)
    model(_x())
    assert set(model.fc.weight.detach().unique().tolist()) <= {-0.2, -0.05, 0.05, 0.2} | set(
        torch.tensor([-0.2, -0.05, 0.05, 0.2]).tolist())


def test_errors():
    model = Tiny()
    lb.attach(model, bits=3)
    with pytest.raises(ValueError, match="already has lowbit hooks"):
        lb.attach(model, bits=3)
    with pytest.raises(ValueError, match="no lowbit hooks"):
        lb.update_steps(Tiny())
    with pytest.raises(ValueError, match="matches no quantizable"):
        lb.attach(Tiny(), overrides={"decoder*": {"bits": 8}})
    with pytest.raises(ValueError, match="matches no quantizable"):
        lb.attach(Tiny(), skip=["nothing"])
    with pytest.raises(ValueError, match="bits must be in"):
        lb.QuantConfig(bits=9)
    with pytest.raises(ValueError, match="overrides"):
        lb.QuantConfig(overrides={"fc": {"bits": 1}})
    with pytest.raises(ValueError, match="unknown fields"):
        lb.QuantConfig(overrides={"fc": {"colour": 1}})
    fresh = Tiny()
    with pytest.raises(ValueError, match="conv.weight: granularity='group' needs groups dividing"):
        lb.attach(fresh, granularity="group", groups=3)  # conv has 4 output channels
    assert isinstance(fresh.conv.weight, nn.Parameter)  # a failed attach leaves the model as it was
    with pytest.raises(ValueError, match="no quantizable tensor"):
        lb.attach(nn.Sequential(nn.ReLU()), bits=3)
    with pytest.raises(TypeError, match="QuantConfig or keyword"):
        lb.attach(Tiny(), lb.QuantConfig(), bits=3)
