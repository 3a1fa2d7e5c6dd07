"""Character corpus: fortune splitting, shuffling, vocabulary, batches, bits per character."""
import math
import os
import random
import re

import pytest
import torch
import torch.nn.functional as F

from lowbit.data.text import (DEFAULT_ROOT, ENV_VAR, UNKNOWN, UNKNOWN_ID, TextCorpus,
                              bits_per_character, load_text_corpus)
from lowbit.models import CharLSTM

# Two-line documents sharing their characters, so every split only holds characters that
# the train split has seen and the three splits decode back to the whole text.
DOCS = [f"fortune {i:02d}\n100% true" for i in range(30)]


@pytest.fixture
def fortune_dir(tmp_path):
    """A folder laid out like /usr/share/games/fortunes, with things that must be skipped."""
    folder = tmp_path / "fortunes"
    (folder / "off").mkdir(parents=True)
    # An empty document ("%" twice) and a file without a final "%" are both handled.
    (folder / "first").write_text("\n%\n".join(DOCS[:15]) + "\n%\n%\n")
    (folder / "second").write_text("\n%\n".join(DOCS[15:]))
    (folder / "first.dat").write_bytes(b"\x00\x01JUNK")
    (folder / "off" / "rude").write_text("JUNK\n%\nJUNK\n")
    os.symlink(folder / "first", folder / "first.u8")
    return folder


def _whole_text(corpus):
    ids = torch.cat([corpus.train, corpus.valid, corpus.test])
    assert UNKNOWN_ID not in ids.tolist()
    return corpus.decode(ids)


def _documents(text):
    lines = text.split("\n")
    return ["\n".join(pair) for pair in zip(lines[0::2], lines[1::2])]


def test_folder_is_split_on_percent_lines(fortune_dir, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    docs = _documents(_whole_text(load_text_corpus(fortune_dir)))
    # Every fortune once, whole (both lines); no .dat, .u8 duplicate or off/ content.
    assert sorted(docs) == sorted(DOCS)
    assert "JUNK" not in "".join(docs)


def test_documents_are_shuffled_deterministically(fortune_dir):
    order = {seed: _documents(_whole_text(load_text_corpus(fortune_dir, seed=seed)))
             for seed in (0, 1)}
    assert _documents(_whole_text(load_text_corpus(fortune_dir, seed=0))) == order[0]
    assert order[0] != order[1]
    assert order[0] != DOCS and order[1] != DOCS


def test_vocabulary_comes_from_train_only(tmp_path):
    path = tmp_path / "letters.txt"
    path.write_text("a" * 90 + "b" * 5 + "c" * 5)  # one document: no shuffling
    corpus = load_text_corpus([path], split=(0.9, 0.05, 0.05))
    assert corpus.vocab == [UNKNOWN, "a"] and corpus.vocab_size == 2
    assert corpus.train.tolist() == [1] * 90
    assert corpus.valid.tolist() == corpus.test.tolist() == [UNKNOWN_ID] * 5
    assert corpus.decode(corpus.valid) == UNKNOWN * 5
    assert corpus.train.dtype == torch.int64


def test_encode_decode_round_trip(fortune_dir):
    corpus = load_text_corpus(fortune_dir)
    text = "fortune 07\n100% true"
    ids = corpus.encode(text)
    assert ids.dtype == torch.int64 and ids.shape == (len(text),)
    assert UNKNOWN_ID not in ids.tolist() and corpus.decode(ids) == text
    assert corpus.encode("tZ").tolist() == [corpus.vocab.index("t"), UNKNOWN_ID]
    assert corpus.vocab[1:] == sorted(set("".join(DOCS)))


def test_max_chars_and_environment_override(fortune_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(fortune_dir / "second"))
    corpus = load_text_corpus(split=(0.5, 0.25, 0.25), max_chars=100)
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (50, 25, 25)
    # Only the documents of "second" (fortunes 15 to 29) were read.
    numbers = re.findall(r"fortune (\d\d)", corpus.decode(corpus.train))
    assert numbers and all(15 <= int(n) <= 29 for n in numbers)


def _numbered_corpus(n):
    """A corpus whose train split is 1, 2, ..., n: positions are easy to check."""
    vocab = [UNKNOWN] + [chr(0x100 + i) for i in range(n)]
    return TextCorpus(vocab, torch.arange(1, n + 1), torch.arange(1, 6), torch.arange(1, 6))


def test_batches_are_contiguous_streams():
    corpus = _numbered_corpus(205)
    batches = list(corpus.batches("train", batch_size=4, seq_len=10))
    assert len(batches) == 5  # (205 - 1) // 4 = 51 per stream: 5 windows of 10
    for i, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (4, 10) and x.dtype == y.dtype == torch.int64
        assert torch.equal(y[:, :-1], x[:, 1:])  # y is x shifted by one
        if i + 1 < len(batches):  # ... and each row continues in the next batch
            assert torch.equal(y[:, -1], batches[i + 1][0][:, 0])
    stream_len = 51
    assert batches[0][0][:, 0].tolist() == [1 + b * stream_len for b in range(4)]
    rows = torch.cat([x for x, _ in batches], dim=1)
    assert rows[2].tolist() == list(range(1 + 2 * stream_len, 1 + 2 * stream_len + 50))


def test_seeded_batches_start_at_a_random_offset():
    corpus = _numbered_corpus(205)
    first = [next(corpus.batches("train", 4, 10, seed=s))[0][0, 0].item() for s in range(8)]
    assert first == [next(corpus.batches("train", 4, 10, seed=s))[0][0, 0].item()
                     for s in range(8)]
    assert all(1 <= v <= 10 for v in first) and len(set(first)) > 1
    for x, y in corpus.batches("train", 4, 10, seed=3):
        assert torch.equal(y[:, :-1], x[:, 1:])


def test_batches_errors():
    corpus = _numbered_corpus(41)
    assert len(list(corpus.batches("train", 4, 10))) == 1  # 41 = 4 * 10 + 1 just fits
    with pytest.raises(ValueError, match="too short"):
        list(corpus.batches("train", 4, 11))
    with pytest.raises(ValueError, match="too short"):
        list(corpus.batches("valid", 1, 5))
    with pytest.raises(ValueError, match="split must be"):
        list(corpus.batches("dev", 1, 1))
    with pytest.raises(ValueError, match="seq_len"):
        list(corpus.batches("train", 1, 0))


@pytest.mark.parametrize("split", [(0.5, 0.5), (0.9, 0.1, 0.0), (0.5, 0.3, 0.3),
                                   (1.2, -0.1, -0.1), "abc", None])
def test_bad_split_fractions(fortune_dir, split):
    with pytest.raises(ValueError, match="three positive fractions"):
        load_text_corpus(fortune_dir, split=split)


def test_missing_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        load_text_corpus(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="paths="):
        load_text_corpus([tmp_path / "empty"])
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        load_text_corpus()


def test_corpus_too_small_for_a_split(tmp_path):
    (tmp_path / "tiny").write_text("abc")
    with pytest.raises(ValueError, match="too small"):
        load_text_corpus(tmp_path / "tiny")


@pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT), reason="fortunes package not installed")
def test_real_fortunes_corpus(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    corpus = load_text_corpus(max_chars=20000)
    assert len(corpus.vocab) >= 40
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (18000, 1000, 1000)
    assert set("etaoin ") <= set(corpus.vocab)


def test_bits_per_character_of_untrained_model(tmp_path):
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;!?\n"
    (tmp_path / "random.txt").write_text("".join(rng.choice(alphabet) for _ in range(20000)))
    corpus = load_text_corpus(tmp_path / "random.txt")
    model = CharLSTM(corpus.vocab_size)
    bpc = bits_per_character(model, corpus, "test", batch_size=8, seq_len=50)
    assert abs(bpc - math.log2(corpus.vocab_size)) < 0.5
    assert model.training  # the previous mode is restored
    model.eval()
    bits_per_character(model, corpus, "valid", batch_size=4, seq_len=20)
    assert not model.training


def test_bits_per_character_carries_the_state(tmp_path):
    # With one stream, carrying the state across batches equals one pass over the stream.
    corpus = _numbered_corpus(101)
    model = CharLSTM(corpus.vocab_size, embed=8, hidden=16)
    bpc = bits_per_character(model, corpus, "train", batch_size=1, seq_len=10)
    with torch.no_grad():
        logits, _ = model(corpus.train[:100].unsqueeze(0))
        nats = F.cross_entropy(logits[0], corpus.train[1:101]).item()
    assert bpc == pytest.approx(nats / math.log(2), rel=1e-5)
