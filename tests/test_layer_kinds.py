"""The layer-kind table drives these tests: for every kind and every scheme, attach, one
optimizer step, freeze, convert and compare with the frozen model; save / load exactly;
coverage lists every parameter."""
import warnings

import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit.inference.convert import BUILDERS, LeftFloatWarning
from lowbit.layers import KINDS, kind_of, layers_of


class Head(nn.Module):
    """body, then a float Linear head (the output layer, which retraining leaves float)."""

    def __init__(self, body: nn.Module, features: int, flatten: bool = True):
        super().__init__()
        self.body, self.flatten, self.head = body, flatten, nn.Linear(features, 3)

    def forward(self, x):
        h = self.body(x)
        h = h[0] if isinstance(h, tuple) else h
        return self.head(torch.flatten(h, 1) if self.flatten else h)


class Attention(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True, **kw)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def _ints(*shape, high=10):
    return lambda: torch.randint(0, high, shape)


# kind -> [(label, model factory, input factory)]: one entry per module type of the kind.
SAMPLES = {
    "linear": [("linear", lambda: Head(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), 5), lambda: torch.randn(4, 6))],
    "conv": [("conv1d", lambda: Head(nn.Conv1d(2, 4, 3, padding=1), 4 * 7), lambda: torch.randn(2, 2, 7)),
             ("conv2d", lambda: Head(nn.Conv2d(2, 4, 3), 4 * 9), lambda: torch.randn(2, 2, 5, 5)),
             ("conv3d", lambda: Head(nn.Conv3d(2, 2, 2), 2 * 8), lambda: torch.randn(2, 2, 3, 3, 3))],
    "rnn": [("lstm", lambda: Head(nn.LSTM(4, 5, batch_first=True), 5 * 3), lambda: torch.randn(2, 3, 4)),
            ("gru", lambda: Head(nn.GRU(4, 5, batch_first=True), 5 * 3), lambda: torch.randn(2, 3, 4))],
    "attention": [
        ("mha", lambda: Head(Attention(), 8 * 4), lambda: torch.randn(2, 4, 8)),
        ("mha-kdim", lambda: Head(Attention(kdim=8, vdim=8, add_bias_kv=True), 8 * 4), lambda: torch.randn(2, 4, 8)),
        ("encoder", lambda: Head(nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                                                  batch_first=True), 2), 8 * 4),
         lambda: torch.randn(2, 4, 8))],
    "embedding": [("embedding", lambda: Head(nn.Embedding(10, 4), 4 * 3), _ints(2, 3)),
                  ("bag", lambda: Head(nn.EmbeddingBag(10, 4, mode="mean"), 4), _ints(2, 3))],
    "batchnorm": [("bn", lambda: Head(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)), 3 * 9),
                   lambda: torch.randn(2, 2, 5, 5))],
}
CASES = [(kind, label, make, x) for kind, entries in SAMPLES.items() for label, make, x in entries]


def test_every_kind_has_samples_and_every_packed_kind_a_builder():
    assert set(SAMPLES) == set(KINDS)
    for kind in KINDS.values():
        assert (kind.packed is not None) == (kind.name in BUILDERS), kind.name
        assert kind.packed is not None or kind.float_reason


def _config(scheme: str, bits: int = 4) -> dict:
    if scheme == "codebook":   # a codebook computed from each tensor's range
        return {"scheme": scheme, "bits": bits,
                "codebook": lambda w, b: torch.linspace(-1, 1, 2 ** b, dtype=torch.float64) * max(float(w.abs().max()), 1e-3)}
    return {"scheme": scheme, "bits": bits}


def _convert(frozen: nn.Module, mode: str):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packed = lb.inference.convert(frozen, mode=mode)
    return packed, [w for w in caught if issubclass(w.category, LeftFloatWarning)]


def _check_converted(kind: str, frozen: nn.Module, x: torch.Tensor, scheme: str) -> None:
    with torch.no_grad():
        ref = frozen.eval()(x)
        packed, left = _convert(frozen, "lut")
        if (KINDS[kind].packed is None and not KINDS[kind].float_is_exact) or type(frozen.body) is nn.Conv3d:
            assert left and "body" in str(left[0].message)       # named, never silent
        else:
            assert not left, [str(w.message) for w in left]
        torch.testing.assert_close(packed(x), ref, rtol=1e-4, atol=1e-5)
        if lb.schemes.get(scheme).kernels[0] != "lut" and kind != "embedding":  # int / shift: 8-bit activations
            shifted, _ = _convert(frozen, "auto")
            err = (shifted(x) - ref).abs().max()
            assert err <= 0.05 * ref.abs().max() + 1e-3


@pytest.mark.parametrize("scheme", lb.schemes.NAMES)
@pytest.mark.parametrize("kind,label,make,make_x", CASES, ids=[c[1] for c in CASES])
def test_attach_step_freeze_convert_save(kind, label, make, make_x, scheme, tmp_path):
    torch.manual_seed(0)
    model, x = make(), make_x()
    if "retrain" in KINDS[kind].purposes:
        lb.attach(model, **_config(scheme))
        cov = lb.coverage(model)
        assert any(r.quantized and r.layer == "body" or r.layer.startswith("body.") and r.quantized for r in cov.rows)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        model(x).float().pow(2).mean().backward()
        opt.step()
        frozen = lb.freeze(model)
    else:
        frozen = lb.ptq(model, **_config(scheme))
    names = {n for n, _ in frozen.named_parameters()}
    rows = lb.coverage(frozen).rows
    assert {r.name for r in rows} == names and len(rows) == len(names)
    assert all(r.reason for r in rows if not r.quantized)
    _check_converted(kind, frozen, x, scheme)
    path = tmp_path / "m.lbq"
    lb.save_quantized(frozen, path)
    loaded = lb.load_quantized(path, make)
    for k, v in frozen.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert lb.recorded_qparams(loaded).keys() == lb.recorded_qparams(frozen).keys()


def test_attention_projections_and_gate_blocks_are_planned_from_the_table():
    model = Head(Attention(), 8 * 4)
    planned = {e.name: e for e in lb.plan(model, lb.QuantConfig(granularity="group"), "retrain")}
    assert planned["body.attn.in_proj_weight"].config.groups == 3          # q, k, v
    assert planned["body.attn.out_proj.weight"].owner == "body.attn.out_proj"
    assert planned["body.attn.out_proj.weight"].layer == "body.attn"
    assert not planned["head.weight"].quantized                              # the output layer
    lstm = Head(nn.LSTM(4, 5, batch_first=True), 15)
    planned = {e.name: e for e in lb.plan(lstm, lb.QuantConfig(granularity="group"), "ptq")}
    assert planned["body.weight_hh_l0"].config.groups == 4                   # the gates
    assert [n for n, _, _ in layers_of(model)] == ["body.attn", "head"]       # out_proj is claimed
    assert kind_of(nn.modules.linear.NonDynamicallyQuantizableLinear(2, 2)).name == "linear"


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4, 4))
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(self.fc(x @ self.scale))


def test_unsupported_kinds_are_named_in_coverage_and_by_strict_convert():
    model = Custom()
    rows = {r.name: r for r in lb.coverage(model, purpose="ptq").rows}
    assert not rows["scale"].quantized and "kind not supported: Custom" in rows["scale"].reason
    assert "float by design" in rows["norm.weight"].reason
    q = lb.ptq(model, "symmetric", 4)
    lb.inference.convert(q)                                # not strict: packs fc
    with pytest.raises(ValueError, match=r"strict=True.*scale \(Custom\)"):
        lb.inference.convert(q, strict=True)
    text = str(lb.coverage(q))
    assert "scale" in text and "quantized (recorded quantizers)" in text


def test_strict_convert_names_a_quantized_layer_it_cannot_pack():
    q = lb.ptq(Head(nn.LSTM(4, 5, batch_first=True), 15), "asymmetric", 4)
    with pytest.warns(LeftFloatWarning, match="body \\(LSTM\\): no packed recurrent kernel"):
        lb.inference.convert(q)
    with pytest.raises(ValueError, match="body \\(LSTM\\)"):
        lb.inference.convert(q, strict=True)


def test_a_layer_with_only_its_bias_quantized_stays_float_with_a_warning():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    q = lb.ptq(model, "symmetric", 4, quantize_bias=True, skip=["0.weight"])
    with pytest.warns(LeftFloatWarning, match="0 \\(Linear\\): only bias is quantized"):
        packed = lb.inference.convert(q)
    assert type(packed[0]) is nn.Linear and type(packed[2]).__name__ == "IntLinear"  # symmetric: 'int' first


def test_hooks_refresh_attention_weights_for_the_encoder_fast_path():
    torch.manual_seed(0)
    model = Head(nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 1), 32)
    x = torch.randn(2, 4, 8)
    lb.attach(model, bits=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x).sum().backward()
    opt.step()                                   # the float shadows move; no forward since
    model.eval()
    with torch.no_grad():
        out = model(x)                           # may take torch's fused encoder path
    frozen = lb.freeze(model)
    with torch.no_grad():
        torch.testing.assert_close(out, frozen(x), rtol=1e-4, atol=1e-5)
