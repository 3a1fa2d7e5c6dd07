"""CharTransformer: shapes, causality, checks, seeds, training, generation, copies, tracing."""
import copy
import io
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowbit.data.text import DEFAULT_ROOT, ENV_VAR, TextCorpus, UNKNOWN, bits_per_character, load_text_corpus
from lowbit.models import CharLSTM, CharTransformer, build_model, generate, train_char_model

V, CONTEXT = 11, 8


def _tiny(**kwargs):
    args = dict(d_model=16, nhead=2, layers=2, context=CONTEXT)
    args.update(kwargs)
    return CharTransformer(V, **args)


def _ids(batch=3, time=CONTEXT, vocab=V):
    return torch.randint(0, vocab, (batch, time))


def test_shapes_and_layers():
    model = _tiny()
    for time in (1, 5, CONTEXT):
        assert model(_ids(3, time)).shape == (3, time, V)
    assert model(_ids().to(torch.int32)).shape == (3, CONTEXT, V)
    assert isinstance(model.embed, nn.Embedding) and model.embed.num_embeddings == V
    assert isinstance(model.pos_embed, nn.Embedding) and model.pos_embed.num_embeddings == CONTEXT
    assert sum(isinstance(m, nn.MultiheadAttention) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.TransformerEncoderLayer) for m in model.modules()) == 2
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert linears[-1] == "decoder" and model.decoder.out_features == V
    assert model.encoder.layers[0].linear1.out_features == 4 * 16  # dim_feedforward default
    # The mask is a non-persistent buffer: nothing but weights in the state_dict.
    assert not any("mask" in key for key in model.state_dict())
    assert isinstance(build_model("chartransformer", vocab_size=5), CharTransformer)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_causal(mode, norm_first):
    # dropout > 0: in train mode the same seed gives the same dropout masks, so only the
    # changed token can move the logits.
    model = getattr(_tiny(dropout=0.1, norm_first=norm_first), mode)()
    x = _ids()
    changed = x.clone()
    changed[:, 5] = (changed[:, 5] + 1) % V
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)
    assert (a[:, 5:] - b[:, 5:]).abs().amax() > 1e-4
    if mode == "eval":  # a prefix alone gives the same logits, with and without autograd
        with torch.no_grad():
            torch.testing.assert_close(model(x[:, :4]), a[:, :4])
            torch.testing.assert_close(model(x), a)


def test_bad_input():
    model = _tiny()
    with pytest.raises(ValueError, match="batch, time"):
        model(_ids()[0])
    with pytest.raises(ValueError, match="dtype"):
        model(_ids().float())
    with pytest.raises(ValueError, match="dtype"):
        model(_ids().to(torch.int16))
    with pytest.raises(ValueError, match=r"time <= context \(8\)"):
        model(_ids(2, CONTEXT + 1))
    with pytest.raises(ValueError, match="time"):
        model(_ids(2, 0))
    with pytest.raises(ValueError, match=r"outside \[0, 11\)"):
        model(torch.full((1, 3), V))
    with pytest.raises(TypeError, match="tensor"):
        model([[1, 2]])


@pytest.mark.parametrize("build, name", [
    (lambda: CharTransformer(0), "vocab_size"),
    (lambda: CharTransformer(5, d_model=0), "d_model"),
    (lambda: CharTransformer(5, d_model=30, nhead=4), "nhead"),
    (lambda: CharTransformer(5, layers=0), "layers"),
    (lambda: CharTransformer(5, context=0), "context"),
    (lambda: CharTransformer(5, dim_feedforward=0), "dim_feedforward"),
    (lambda: CharTransformer(5, dropout=1.0), "dropout"),
    (lambda: CharTransformer(5, norm_first="yes"), "norm_first"),
])
def test_constructor_argument_errors(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_same_seed_same_weights():
    def weights(seed):
        torch.manual_seed(seed)
        return _tiny().state_dict()
    a, b, c = weights(3), weights(3), weights(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed.weight"], c["embed.weight"])


def _numbered_corpus(n, vocab=V):
    """A corpus cycling through the vocabulary: 1, 2, ..., vocab-1, 1, 2, ..."""
    chars = [UNKNOWN] + [chr(0x100 + i) for i in range(vocab - 1)]
    ids = torch.arange(n) % (vocab - 1) + 1
    return TextCorpus(chars, ids, ids[:200].clone(), ids[:200].clone())


def test_training_is_seeded_and_learns_a_cycle():
    corpus = _numbered_corpus(3000)

    def run(seed):
        torch.manual_seed(0)
        model = _tiny(dropout=0.1)
        history = train_char_model(model, corpus, steps=40, lr=1e-2, batch_size=8, seed=seed,
                                   progress=False)
        return model, history
    (m1, h1), (m2, h2), (_, h3) = run(0), run(0), run(1)
    assert h1 == h2 and h1["loss"] != h3["loss"]
    assert len(h1["loss"]) == 40 and len(h1["valid_bpc"]) == 1
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert not m1.training
    # The sequence is deterministic after the first character of a window.
    assert h1["valid_bpc"][0] < 0.5 * math.log2(V)
    assert h1["valid_bpc"][0] == pytest.approx(bits_per_character(m1, corpus, "valid", 8))


def test_training_helper_checks_and_stateful_models():
    corpus = _numbered_corpus(1000)
    with pytest.raises(ValueError, match="steps"):
        train_char_model(_tiny(), corpus, steps=0, progress=False)
    with pytest.raises(ValueError, match="too short"):
        train_char_model(_tiny(), corpus, batch_size=200, progress=False)
    # CharLSTM returns (logits, state): the helper carries the state (truncated BPTT).
    history = train_char_model(CharLSTM(V, embed=8, hidden=16), corpus, epochs=2, batch_size=4,
                               seq_len=10, progress=False)
    assert len(history["valid_bpc"]) == 2 and len(history["loss"]) > 20


@pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT), reason="fortunes package not installed")
def test_short_training_on_fortunes_lowers_the_loss(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    corpus = load_text_corpus(max_chars=40000)
    torch.manual_seed(0)
    model = CharTransformer(corpus.vocab_size, d_model=32, nhead=2, layers=1, context=32)
    before = bits_per_character(model, corpus, "valid", batch_size=8)
    history = train_char_model(model, corpus, steps=80, batch_size=16, lr=1e-2, progress=False)
    first, last = history["loss"][0], sum(history["loss"][-10:]) / 10
    assert first == pytest.approx(math.log(corpus.vocab_size), abs=0.3)  # near-uniform start
    assert last < first - 1.0
    assert history["valid_bpc"][0] < before - 1.0


def test_bits_per_character_scores_windows_of_the_context():
    corpus = _numbered_corpus(400)
    model = _tiny()
    bpc = bits_per_character(model, corpus, "valid", batch_size=1)  # seq_len = model.context
    with torch.no_grad():
        windows = corpus.valid[:192 + 1]
        x, y = windows[:-1].view(-1, CONTEXT), windows[1:].view(-1, CONTEXT)
        nats = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item()
    assert bpc == pytest.approx(nats / math.log(2), rel=1e-5)


class _Recorder(nn.Module):
    """Any module with the forward contract; records the lengths it is called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.lengths = model, []

    def forward(self, x):
        self.lengths.append(x.shape[1])
        return self.model(x)


def test_generation():
    model = _tiny().train()
    prompt = torch.tensor([1, 2, 3])
    out = generate(model, prompt, 12, temperature=1.0, seed=5)
    assert out.shape == (12,) and out.dtype == torch.int64 and 0 <= out.min() and out.max() < V
    assert torch.equal(out, generate(model, [1, 2, 3], 12, seed=5))
    assert torch.equal(out, generate(model, prompt.unsqueeze(0), 12, seed=5))
    assert not torch.equal(out, generate(model, prompt, 12, seed=6))
    assert model.training  # the mode is restored
    assert generate(model, prompt, 0).shape == (0,)

    # temperature 0: the argmax of the last position, step by step, whatever the seed.
    greedy = generate(model, prompt, 6, temperature=0, seed=1)
    assert torch.equal(greedy, generate(model, prompt, 6, temperature=0, seed=2))
    seq = prompt.tolist()
    model.eval()
    with torch.no_grad():
        for _ in range(6):
            seq.append(int(model(torch.tensor([seq[-CONTEXT:]]))[0, -1].argmax()))
    assert greedy.tolist() == seq[3:]

    # A long prompt: the model only ever sees the last `context` ids.
    recorder = _Recorder(model)
    long_prompt = torch.randint(0, V, (20,))
    assert generate(recorder, long_prompt, 5, context=CONTEXT).shape == (5,)
    assert recorder.lengths == [CONTEXT] * 5
    # A (logits, state) model such as CharLSTM works too; without a context it sees all ids.
    lstm = CharLSTM(V, embed=4, hidden=8)
    assert generate(lstm, prompt, 4, temperature=0).shape == (4,)


def test_generation_errors():
    model = _tiny()
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="prompt"):
        generate(model, torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match="n must"):
        generate(model, [1], -1)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], 3, temperature=-0.5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], 3, temperature=float("nan"))
    with pytest.raises(TypeError, match="corpus.encode"):
        generate(model, "abc", 3)
    with pytest.raises(TypeError, match="nn.Module"):
        generate(lambda x: x, [1], 3)


def test_deepcopy_state_dict_and_pickle():
    model = _tiny().eval()
    x = _ids()
    expected = model(x)
    torch.testing.assert_close(copy.deepcopy(model)(x), expected, rtol=0, atol=0)

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = _tiny().eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))  # strict: keys match exactly
    torch.testing.assert_close(fresh(x), expected, rtol=0, atol=0)

    buf = io.BytesIO()
    torch.save(model, buf)  # the whole module pickles (the activation is a module-level function)
    buf.seek(0)
    torch.testing.assert_close(torch.load(buf, weights_only=False)(x), expected, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # from torch's own MHA code
def test_trace_in_eval_mode():
    model = _tiny().eval()
    x = _ids()
    traced = torch.jit.trace(model, x)
    other = _ids()
    torch.testing.assert_close(traced(x), model(x))
    torch.testing.assert_close(traced(other), model(other))
