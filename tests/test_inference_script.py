"""Every packed module under torch.jit.script and torch.jit.trace: the same outputs as the
eager module, bit for bit, on inputs other than the one traced (a dynamic activation step
must not be frozen into a trace); scripted modules save, load and keep their errors."""
import io
import warnings

import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit.inference import (IntConv1d, IntConv2d, IntLinear, LUTConv1d, LUTConv2d, LUTLinear, PackedEmbedding,
                              PackedEmbeddingBag, PackedMultiheadAttention, ShiftConv1d, ShiftConv2d, ShiftLinear)


def _frozen(module, scheme, attr="weight", bits=4):
    param = getattr(module, attr)
    qp = lb.calibrate(param.detach(), scheme, bits, "channel")
    with torch.no_grad():
        param.copy_(lb.fake_quantize(param, qp))
    return qp


def _linear(cls, scheme, **kwargs):
    lin = nn.Linear(20, 6)
    qp = _frozen(lin, scheme)
    return cls(lin.weight, qp, lin.bias, **kwargs), lambda: (torch.randn(3, 4, 20),)


def _conv(cls, conv, scheme, shape, **kwargs):
    qp = _frozen(conv, scheme)
    return cls(conv, qp, **kwargs), lambda: (torch.randn(shape),)


def _attention(make_linear, scheme, **mha_kwargs):
    mha = nn.MultiheadAttention(8, 2, **mha_kwargs).eval()
    qparams = {"in_proj_weight": _frozen(mha, scheme, "in_proj_weight"),
               "out_proj.weight": _frozen(mha.out_proj, scheme)}
    packed = PackedMultiheadAttention(mha, qparams, make_linear).eval()
    def inputs():
        x = torch.randn(2, 5, 8)
        return x, x, x
    return packed, inputs


def _embedding():
    emb = nn.Embedding(30, 13, padding_idx=0)
    return PackedEmbedding(emb, _frozen(emb, "asymmetric", bits=3)), lambda: (torch.randint(0, 30, (4, 7)),)


def _embedding_bag(mode):
    bag = nn.EmbeddingBag(30, 13, mode=mode, padding_idx=2)
    return (PackedEmbeddingBag(bag, _frozen(bag, "symmetric", bits=5)),
            lambda: (torch.randint(0, 30, (9,)), torch.tensor([0, 3, 3, 7])))


CASES = {
    "LUTLinear": lambda: _linear(LUTLinear, "symmetric"),
    "ShiftLinear": lambda: _linear(ShiftLinear, "pow2"),
    "ShiftLinear x_scale": lambda: _linear(ShiftLinear, "pow2", act_bits=6, x_scale=0.02, method="literal"),
    "ShiftLinear no bias": lambda: (ShiftLinear(torch.tensor([[0.5, -0.25]]), lb.calibrate(torch.tensor([[0.5, -0.25]]), "pow2", 3)),
                                    lambda: (torch.randn(5, 2),)),
    "IntLinear": lambda: _linear(IntLinear, "asymmetric"),
    "IntLinear act_bits": lambda: _linear(IntLinear, "symmetric", act_bits=5),
    "IntConv2d": lambda: _conv(IntConv2d, nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), "symmetric", (2, 4, 9, 9)),
    "IntConv1d": lambda: _conv(IntConv1d, nn.Conv1d(4, 6, 3, padding=2, dilation=2), "asymmetric", (2, 4, 11)),
    "PackedMultiheadAttention int": lambda: _attention(lambda w, qp, b: IntLinear(w, qp, b), "symmetric"),
    "LUTConv2d": lambda: _conv(LUTConv2d, nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), "asymmetric", (2, 4, 9, 9)),
    "ShiftConv2d": lambda: _conv(ShiftConv2d, nn.Conv2d(4, 6, 3, stride=3, groups=2), "pow2", (2, 4, 10, 10)),
    "ShiftConv2d x_scale": lambda: _conv(ShiftConv2d, nn.Conv2d(3, 4, 2, bias=False), "pow2", (1, 3, 6, 6), x_scale=0.05),
    "LUTConv1d": lambda: _conv(LUTConv1d, nn.Conv1d(4, 6, 3, padding=2, dilation=2), "symmetric", (2, 4, 11)),
    "ShiftConv1d": lambda: _conv(ShiftConv1d, nn.Conv1d(4, 6, 2, stride=3, groups=2), "pow2", (2, 4, 11)),
    "PackedEmbedding": _embedding,
    "PackedEmbeddingBag sum": lambda: _embedding_bag("sum"),
    "PackedEmbeddingBag max": lambda: _embedding_bag("max"),
    "PackedMultiheadAttention LUT": lambda: _attention(lambda w, qp, b: LUTLinear(w, qp, b), "symmetric",
                                                       batch_first=True, add_bias_kv=True),
    "PackedMultiheadAttention shift": lambda: _attention(lambda w, qp, b: ShiftLinear(w, qp, b), "pow2",
                                                         add_zero_attn=True),
    "PackedMultiheadAttention float": lambda: (PackedMultiheadAttention(nn.MultiheadAttention(8, 2).eval(), {}, None),
                                               lambda: (torch.randn(5, 8),) * 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_script_and_trace_give_the_eager_outputs(case):
    torch.manual_seed(0)
    module, inputs = CASES[case]()
    scripted = torch.jit.script(module)
    example = inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # nothing data-dependent is frozen
        traced = torch.jit.trace(module, example)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    for scale in (1.0, 7.0, 0.01):  # other values than traced: a new dynamic activation step
        x = tuple(t * scale if t.is_floating_point() else t for t in inputs())
        expected = module(*x)
        for name, run in (("script", scripted), ("trace", traced), ("loaded", loaded)):
            out = run(*x)
            pairs = zip(out, expected) if isinstance(expected, tuple) else [(out, expected)]
            for got, want in pairs:
                assert (got is None) == (want is None), name
                if want is not None:
                    assert torch.equal(got, want), f"{case}: {name}"


def test_scripted_shift_linear_takes_an_explicit_step():
    torch.manual_seed(1)
    module, inputs = CASES["ShiftLinear"]()
    scripted = torch.jit.script(module)
    x = inputs()[0]
    assert torch.equal(scripted(x, 0.01), module(x, 0.01))
    assert not torch.equal(scripted(x, 0.01), scripted(x))


def test_scripted_modules_keep_their_errors():
    torch.manual_seed(2)
    linear = torch.jit.script(CASES["LUTLinear"]()[0])
    with pytest.raises(torch.jit.Error, match="LUTLinear expects inputs with 20 features in the last dimension, "
                                              r"got shape \[2, 7\]"):
        linear(torch.randn(2, 7))
    with pytest.raises(torch.jit.Error, match="LUTLinear expects a float32 tensor, got torch.float64"):
        linear(torch.randn(2, 20, dtype=torch.float64))
    conv = torch.jit.script(CASES["ShiftConv1d"]()[0])
    with pytest.raises(torch.jit.Error, match=r"ShiftConv1d expects a float32 \[N, 4, L\] tensor, got shape \[2, 3, 5\]"):
        conv(torch.randn(2, 3, 5))
    emb = torch.jit.script(CASES["PackedEmbedding"]()[0])
    with pytest.raises(torch.jit.Error, match=r"indices must be in \[0, 30\), got min 0, max 30"):
        emb(torch.tensor([0, 30]))
    with pytest.raises(torch.jit.Error, match="int64 or int32 indices, got torch.float32"):
        emb(torch.tensor([0.0]))
    attention = torch.jit.script(CASES["PackedMultiheadAttention LUT"]()[0])
    x = torch.randn(2, 5, 8)
    with pytest.raises(torch.jit.Error, match=r"2-D attn_mask must be \[5, 5\]"):
        attention(x, x, x, attn_mask=torch.zeros(4, 5))


def test_scripted_converted_model():
    torch.manual_seed(3)
    model = lb.models.LeNet5()
    lb.attach(model, lb.QuantConfig(bits=4, scheme="pow2", granularity="channel"))
    lb.freeze(model)
    x = torch.randn(2, 1, 28, 28)
    for mode in ("auto", "lut"):
        converted = lb.inference.convert(model, mode=mode)
        assert torch.equal(torch.jit.script(converted)(x), converted(x))
