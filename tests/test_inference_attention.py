"""PackedMultiheadAttention against the frozen nn.MultiheadAttention (the float module is the
reference): LUT projections within float tolerance for every scheme and option, shift
projections within 8-bit activation rounding, and whole nn.TransformerEncoders."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import lowbit as lb
from lowbit.inference import LUTLinear, PackedMultiheadAttention, ShiftLinear

E, H = 8, 2
SCHEMES = ("symmetric", "asymmetric", "pow2", "codebook")


def lut(w, qp, b):
    return LUTLinear(w, qp, b)


def shift(w, qp, b):
    return ShiftLinear(w, qp, b, 8, None, "auto")


def _qparams(w, scheme, bits, groups):
    if scheme == "codebook":
        values = torch.sort(torch.randn(groups, 2 ** bits) * (w.abs().max().item() or 1.0), dim=1).values
        return lb.codebook(values, bits)
    granularity = "tensor" if groups == 1 else "channel" if groups == w.shape[0] else "group"
    return lb.calibrate(w, scheme, bits, granularity, groups=groups if granularity == "group" else None)


def _freeze(mha, scheme="symmetric", bits=4, in_groups=3, keys=None):
    """Quantize the chosen weights in place (what lb.freeze leaves) and return their QParams."""
    names = ["in_proj_weight"] if mha._qkv_same_embed_dim else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
    qparams = {}
    for name in (names + ["out_proj.weight"]) if keys is None else keys:
        param = mha.out_proj.weight if name == "out_proj.weight" else getattr(mha, name)
        groups = {"in_proj_weight": in_groups if in_groups != "row" else param.shape[0]}.get(name, param.shape[0])
        qp = _qparams(param.detach(), scheme, bits, groups)
        with torch.no_grad():
            param.copy_(lb.fake_quantize(param, qp))
        qparams[name] = qp
    return qparams


def _mha(bias=True, add_bias_kv=False, add_zero_attn=False, kdim=None, batch_first=False, dropout=0.0):
    mha = nn.MultiheadAttention(E, H, dropout=dropout, bias=bias, add_bias_kv=add_bias_kv,
                                add_zero_attn=add_zero_attn, kdim=kdim, vdim=kdim, batch_first=batch_first)
    if bias:  # torch starts them at 0, which would hide a misplaced bias
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    return mha.eval()


def _inputs(batch_first, batched, kdim, L=3, S=4, N=2):
    def shape(T, d):
        return ((N, T, d) if batch_first else (T, N, d)) if batched else (T, d)
    return torch.randn(shape(L, E)), torch.randn(shape(S, kdim or E)), torch.randn(shape(S, kdim or E))


def _masks(kind, batched, L=3, S=4, N=2):
    """Keyword masks of one kind; no query row is fully masked (that row would be NaN)."""
    B = N if batched else 1
    kpm = torch.zeros(B, S, dtype=torch.bool)
    kpm[-1, -2:] = True
    kpm = kpm if batched else kpm[0]
    bool2 = torch.rand(L, S) > 0.6
    bool2[:, 0] = False
    bool3 = torch.rand(B * H, L, S) > 0.6
    bool3[..., 0] = False
    return {
        "none": {},
        "kpm_bool": {"key_padding_mask": kpm},
        "kpm_float": {"key_padding_mask": kpm.float() * -1e4},
        "attn2_bool": {"attn_mask": bool2},
        "attn2_float": {"attn_mask": torch.randn(L, S)},
        "attn3_bool": {"attn_mask": bool3},
        "attn3_float": {"attn_mask": torch.randn(B * H, L, S)},
        "both_bool": {"attn_mask": bool3, "key_padding_mask": kpm},
        "float_attn_bool_kpm": {"attn_mask": torch.randn(L, S), "key_padding_mask": kpm},
    }[kind]


MASKS = ("none", "kpm_bool", "kpm_float", "attn2_bool", "attn2_float", "attn3_bool", "attn3_float", "both_bool",
         "float_attn_bool_kpm")


def _compare(packed, mha, args, kwargs, atol=1e-5, rtol=None):
    # torch 1.13's fused fast path (eval, no grad, self-attention) crashes without biases
    with torch.set_grad_enabled(mha.in_proj_bias is None):
        expected = mha(*args, **kwargs)
    with torch.no_grad():
        out = packed(*args, **kwargs)
    assert out[0].shape == expected[0].shape
    if rtol is None:
        torch.testing.assert_close(out[0], expected[0], rtol=1e-5, atol=atol)
    else:  # integer activations: relative to the output's scale
        assert (out[0] - expected[0]).abs().max() <= rtol * expected[0].abs().max()
    if expected[1] is None:
        assert out[1] is None
    else:
        assert out[1].shape == expected[1].shape
        torch.testing.assert_close(out[1], expected[1], rtol=1e-5, atol=atol if rtol is None else 0.02)


@settings(max_examples=60, deadline=None)
@given(bias=st.booleans(), add_bias_kv=st.booleans(), add_zero_attn=st.booleans(),
       separate=st.booleans(), batch_first=st.booleans(), batched=st.booleans(),
       masks=st.sampled_from(MASKS), need_weights=st.booleans(), average=st.booleans(),
       self_attention=st.booleans(), scheme=st.sampled_from(SCHEMES), bits=st.integers(2, 5),
       in_groups=st.sampled_from([1, 3, "row"]), seed=st.integers(0, 2 ** 16))
def test_lut_attention_equals_the_frozen_module(bias, add_bias_kv, add_zero_attn, separate, batch_first,
                                                batched, masks, need_weights, average, self_attention,
                                                scheme, bits, in_groups, seed):
    torch.manual_seed(seed)
    kdim = 5 if separate else None
    mha = _mha(bias, add_bias_kv, add_zero_attn, kdim, batch_first)
    packed = PackedMultiheadAttention(mha, _freeze(mha, scheme, bits, in_groups), lut)
    q, k, v = _inputs(batch_first, batched, kdim)
    if self_attention and not separate:
        k = v = q  # torch's self-attention path (and, batched, its fused fast path)
    S = k.shape[1 if batch_first and batched else 0]
    kwargs = dict(_masks(masks, batched, S=S), need_weights=need_weights, average_attn_weights=average)
    _compare(packed, mha, (q, k, v), kwargs)


@pytest.mark.parametrize("scheme,bits", [("symmetric", 3), ("asymmetric", 4), ("pow2", 4), ("codebook", 2)])
@pytest.mark.parametrize("in_groups", [1, 3, "row"])
def test_every_scheme_and_in_proj_grouping(scheme, bits, in_groups):
    torch.manual_seed(1)
    mha = _mha(add_bias_kv=True)
    packed = PackedMultiheadAttention(mha, _freeze(mha, scheme, bits, in_groups), lut)
    q, k, v = _inputs(False, True, None)
    for kind in ("none", "both_bool", "float_attn_bool_kpm"):
        _compare(packed, mha, (q, k, v), _masks(kind, True))
    with torch.no_grad():
        w = mha.in_proj_weight[E:2 * E]
        torch.testing.assert_close(packed.k_proj(k), k @ w.T + mha.in_proj_bias[E:2 * E], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_shift_attention_is_within_activation_rounding(separate, batch_first):
    torch.manual_seed(2)
    kdim = 6 if separate else None
    mha = _mha(kdim=kdim, batch_first=batch_first, add_zero_attn=True)
    packed = PackedMultiheadAttention(mha, _freeze(mha, "pow2", 5, 3 if not separate else None), shift)
    assert all(isinstance(getattr(packed, n), ShiftLinear) for n in ("q_proj", "k_proj", "v_proj", "out_proj"))
    q, k, v = _inputs(batch_first, True, kdim)
    for kind in ("none", "kpm_bool", "attn3_float"):
        _compare(packed, mha, (q, k, v), dict(_masks(kind, True), average_attn_weights=False), rtol=0.05)


def test_projections_without_qparams_stay_float():
    torch.manual_seed(3)
    mha = _mha(kdim=5)
    qparams = _freeze(mha, keys=["k_proj_weight", "out_proj.weight"])
    packed = PackedMultiheadAttention(mha, qparams, lut)
    assert type(packed.q_proj) is nn.Linear and type(packed.v_proj) is nn.Linear
    assert isinstance(packed.k_proj, LUTLinear) and isinstance(packed.out_proj, LUTLinear)
    _compare(packed, mha, _inputs(False, True, 5), {})
    fully_float = PackedMultiheadAttention(mha, {}, lut)
    _compare(fully_float, mha, _inputs(False, True, 5), {"key_padding_mask": _masks("kpm_bool", True)["key_padding_mask"]})
    floats = sum(t.numel() * 4 for m in (packed.q_proj, packed.v_proj) for t in m.parameters())
    assert packed.model_size() == floats + packed.k_proj.model_size() + packed.out_proj.model_size()
    assert fully_float.model_size() == 4 * (2 * E * E + 2 * E * 5 + 4 * E)  # float weights and biases


def test_causal_hint_and_dropout():
    torch.manual_seed(4)
    mha = _mha(dropout=0.4, batch_first=True)
    packed = PackedMultiheadAttention(mha, _freeze(mha), lut)
    x = torch.randn(2, 5, E)
    causal = torch.full((5, 5), float("-inf")).triu(1)
    with torch.no_grad():
        expected = mha(x, x, x, attn_mask=causal)
        torch.testing.assert_close(packed(x, x, x, is_causal=True), expected, rtol=1e-5, atol=1e-5)
        # with a mask, is_causal is only a hint: the mask given is used
        other = torch.randn(5, 5)
        torch.testing.assert_close(packed(x, x, x, attn_mask=other, is_causal=True), mha(x, x, x, attn_mask=other),
                                   rtol=1e-5, atol=1e-5)
    mha.train()
    packed.train()
    torch.manual_seed(5)
    expected = mha(x, x, x)
    torch.manual_seed(5)
    out = packed(x, x, x)  # the same dropout mask on the same weights
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(packed(x, x, x)[1], packed.eval()(x, x, x)[1])
    assert PackedMultiheadAttention(mha.eval(), {}, lut).training is False  # follows the module it replaces


def test_bad_configurations_and_inputs_are_named():
    mha = _mha()
    with pytest.raises(ValueError, match="qparams keys must be among.*got \\['q_proj_weight'\\]"):
        PackedMultiheadAttention(mha, {"q_proj_weight": lb.calibrate(torch.randn(E, E), "symmetric", 4)}, lut)
    with pytest.raises(ValueError, match="2 quantization groups must split its q, k and v blocks of 8 rows"):
        PackedMultiheadAttention(mha, {"in_proj_weight": lb.calibrate(mha.in_proj_weight.detach(), "symmetric", 4,
                                                                     "group", groups=2)}, lut)
    with pytest.raises(TypeError, match="nn.MultiheadAttention"):
        PackedMultiheadAttention(nn.Linear(E, E), {}, lut)
    packed = PackedMultiheadAttention(mha, _freeze(mha), lut)
    q, k, v = _inputs(False, True, None)
    with pytest.raises(ValueError, match=r"query \[L, N, 8\]"):
        packed(q[..., :5], k, v)
    with pytest.raises(ValueError, match="all 3-D"):
        packed(q, k[:, 0], v)
    with pytest.raises(ValueError, match=r"2-D attn_mask must be \[3, 4\]"):
        packed(q, k, v, attn_mask=torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"3-D attn_mask must be \[4, 3, 4\]"):
        packed(q, k, v, attn_mask=torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"key_padding_mask must be \[2, 4\]"):
        packed(q, k, v, key_padding_mask=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="attn_mask must be bool or floating point, got torch.int64"):
        packed(q, k, v, attn_mask=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="LUTLinear expects a float32 tensor"):
        packed(q.double(), k.double(), v.double())


def _encoder(batch_first, norm_first=False, layers=2):
    torch.manual_seed(6)
    layer = nn.TransformerEncoderLayer(E, H, 16, dropout=0.1, batch_first=batch_first, norm_first=norm_first)
    return nn.TransformerEncoder(layer, layers).eval()


def _packed_encoder(frozen, scheme="symmetric"):
    """Freeze every weight of `frozen` in place; return a copy whose attentions are
    PackedMultiheadAttention and whose feed-forward Linears are LUTLinear."""
    packed = copy.deepcopy(frozen)
    for layer, target in zip(frozen.layers, packed.layers):
        target.self_attn = PackedMultiheadAttention(layer.self_attn, _freeze(layer.self_attn, scheme), lut)
        for name in ("linear1", "linear2"):
            lin = getattr(layer, name)
            qp = lb.calibrate(lin.weight.detach(), scheme, 4, "channel")
            with torch.no_grad():
                lin.weight.copy_(lb.fake_quantize(lin.weight, qp))
            setattr(target, name, LUTLinear(lin.weight, qp, lin.bias))
    if hasattr(packed, "use_nested_tensor"):  # torch 2.x decides this at construction
        packed.use_nested_tensor = False
    return packed.eval()


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_with_packed_layers_equals_the_frozen_one(batch_first, monkeypatch):
    frozen = _encoder(batch_first)
    packed = _packed_encoder(frozen)
    calls = {"fast": 0}
    for name in ("_transformer_encoder_layer_fwd", "_native_multi_head_attention", "_nested_tensor_from_mask"):
        original = getattr(torch, name)

        def counted(*args, _original=original, **kwargs):
            calls["fast"] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(torch, name, counted)
    x = torch.randn(3, 5, E) if batch_first else torch.randn(5, 3, E)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[1, 3:] = True
    kpm[2, 4:] = True
    keep = ~kpm if batch_first else ~kpm.T
    causal = torch.full((5, 5), float("-inf")).triu(1)
    for kwargs in ({}, {"src_key_padding_mask": kpm}, {"mask": causal}, {"mask": causal, "src_key_padding_mask": kpm}):
        with torch.no_grad():
            calls["fast"] = 0
            expected = frozen(x, **kwargs)
            frozen_fast = calls["fast"]
            calls["fast"] = 0
            out = packed(x, **kwargs)
            assert calls["fast"] == 0, "a packed encoder must not take torch's fused fast path"
        if batch_first and "mask" not in kwargs:
            assert frozen_fast > 0  # the frozen model did: the test compares the two paths
        # on its nested-tensor path torch zeroes the outputs at padded positions; elsewhere
        # they are computed as usual: compare the positions that are not padding
        where = keep if "src_key_padding_mask" in kwargs else torch.ones_like(keep)
        torch.testing.assert_close(out[where], expected[where], rtol=1e-5, atol=1e-5)
    # and with gradients enabled (no fast path anywhere)
    torch.testing.assert_close(packed(x, src_key_padding_mask=kpm)[keep], frozen(x, src_key_padding_mask=kpm)[keep],
                               rtol=1e-5, atol=1e-5)


def test_pre_norm_encoder_in_pow2_and_unbatched():
    frozen = _encoder(True, norm_first=True)
    packed = _packed_encoder(frozen, "pow2")
    x = torch.randn(5, E)  # one unbatched sequence
    with torch.no_grad():
        torch.testing.assert_close(packed(x), frozen(x), rtol=1e-5, atol=1e-5)
