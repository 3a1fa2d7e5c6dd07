"""An English character corpus from Debian's `fortunes` package (no downloads).

    corpus = load_text_corpus(max_chars=200_000)
    model = CharLSTM(len(corpus.vocab))
    for x, y in corpus.batches("train", batch_size=32, seq_len=100):
        ...
    bits_per_character(model, corpus, "valid")

The default source is every plain fortune file under /usr/share/games/fortunes; set
LOWBIT_TEXT_CORPUS (a file or a folder) or pass paths= to use other text.
"""
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

DEFAULT_ROOT = "/usr/share/games/fortunes"
ENV_VAR = "LOWBIT_TEXT_CORPUS"
SPLITS = ("train", "valid", "test")
UNKNOWN = "\ufffd"  # vocab[0]: also what errors="replace" puts in place of undecodable bytes
UNKNOWN_ID = 0

PathLike = Union[str, os.PathLike]


def _is_text_file(path: Path) -> bool:
    """Fortune files have no extension (the .dat indexes and .u8 links are skipped); .txt
    files are accepted too so that a folder of ordinary text works as an override."""
    return not path.name.startswith(".") and path.suffix in ("", ".txt")


def _files_in(folder: Path) -> List[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        # "off" holds the offensive fortunes (fortunes-off); they are not for a default corpus.
        dirs[:] = sorted(d for d in dirs if d != "off" and not d.startswith("."))
        found += [Path(root, f) for f in sorted(files) if _is_text_file(Path(f))]
    return [p for p in found if p.is_file()]


def _resolve_sources(paths) -> List[Path]:
    """Files to read: paths=, else $LOWBIT_TEXT_CORPUS, else the fortunes folder."""
    if paths is None:
        paths = [os.environ.get(ENV_VAR) or DEFAULT_ROOT]
    elif isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    hint = (f"Install the default corpus with `sudo apt-get install fortunes`, or pass "
            f"paths= (or set {ENV_VAR}) to text files or a folder of them.")
    files, seen = [], set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"text corpus path {p} does not exist. {hint}")
        for f in (_files_in(p) if p.is_dir() else [p]):
            key = f.resolve()  # the same file through a symlink is read once
            if key not in seen:
                seen.add(key)
                files.append(f)
    if not files:
        raise FileNotFoundError(f"no text files found in {', '.join(map(str, paths))}. {hint}")
    return files


def _documents(text: str) -> List[str]:
    """Split a fortune file into fortunes: separated by lines holding a single '%'.

    A file without '%' lines is one document. Blank documents are dropped.
    """
    docs, lines = [], []
    for line in text.split("\n") + ["%"]:  # the extra "%" flushes the last document
        if line.strip() == "%":
            doc = "\n".join(lines).strip("\n")
            if doc.strip():
                docs.append(doc)
            lines = []
        else:
            lines.append(line)
    return docs


def _check_split(split) -> Tuple[float, float, float]:
    try:
        fractions = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        fractions = ()
    if (len(fractions) != 3 or any(isinstance(f, bool) for f in split)
            or not all(f > 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6):
        raise ValueError(f"split must be three positive fractions summing to 1 "
                         f"(train, valid, test), got {split!r}")
    return fractions


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _encode(text: str, index: Dict[str, int]) -> torch.Tensor:
    return torch.tensor([index.get(ch, UNKNOWN_ID) for ch in text], dtype=torch.int64)


@dataclass(eq=False)  # field-wise == would compare tensors, which is ambiguous
class TextCorpus:
    """Character ids for the train/valid/test splits and the vocabulary that made them.

    vocab[0] is the unknown symbol: any character not seen in the training split encodes
    to id 0 (and decodes to U+FFFD).
    """
    vocab: List[str]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    _index: Dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.vocab or self.vocab[0] != UNKNOWN:
            raise ValueError(f"vocab[0] must be the unknown symbol {UNKNOWN!r}")
        self._index = {ch: i for i, ch in enumerate(self.vocab)}

    def __repr__(self) -> str:  # the default would print whole tensors
        return (f"TextCorpus(vocab={len(self.vocab)} chars, train={len(self.train)}, "
                f"valid={len(self.valid)}, test={len(self.test)})")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        """int64 ids of text's characters; unknown characters become UNKNOWN_ID."""
        return _encode(text, self._index)

    def decode(self, ids) -> str:
        """The string for a 1-D tensor (or sequence) of ids."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        return "".join(self.vocab[i] for i in ids)

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def batches(self, split: str, batch_size: int, seq_len: int,
                seed: Optional[int] = None) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x, y) int64 [batch_size, seq_len] with y[:, t] the character after x[:, t].

        The split is cut into batch_size contiguous streams (the usual "batchify" layout):
        row b of one batch continues row b of the previous batch, so a model's state can be
        carried from batch to batch. A trailing piece shorter than seq_len is dropped.
        With a seed, the streams start at a random offset below seq_len, so that different
        epochs see differently aligned windows; seed=None always starts at 0.
        """
        data = self.split(split)
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("seq_len", seq_len)
        # Each stream needs seq_len inputs plus one more character for the last target.
        slack = len(data) - 1 - batch_size * seq_len
        if slack < 0:
            raise ValueError(
                f"the {split} split has {len(data)} characters, too short for one batch of "
                f"{batch_size} x {seq_len} (needs {batch_size * seq_len + 1})")
        if seed is not None:
            data = data[random.Random(seed).randrange(min(seq_len, slack + 1)):]
        stream_len = (len(data) - 1) // batch_size
        n = batch_size * stream_len
        x_streams = data[:n].view(batch_size, stream_len)
        y_streams = data[1:n + 1].view(batch_size, stream_len)
        for start in range(0, stream_len - seq_len + 1, seq_len):
            yield (x_streams[:, start:start + seq_len].contiguous(),
                   y_streams[:, start:start + seq_len].contiguous())


def load_text_corpus(paths: Optional[Union[PathLike, Sequence[PathLike]]] = None, seed: int = 0,
                     split: Sequence[float] = (0.9, 0.05, 0.05),
                     max_chars: Optional[int] = None) -> TextCorpus:
    """Read, shuffle and split a character corpus.

    paths: text files and/or folders (folders: files without an extension or ending .txt,
    skipping "off" subfolders); defaults to $LOWBIT_TEXT_CORPUS, then the fortunes folder.
    Each file is cut into documents at lines holding a single "%"; documents are shuffled
    with `seed` (deterministic), joined with "\\n", and the text is cut into train / valid /
    test by the `split` fractions. max_chars caps the total, each split keeping its share.
    The vocabulary comes from the training split only, so valid/test may hold unknowns.
    """
    fractions = _check_split(split)
    if max_chars is not None:
        _check_positive_int("max_chars", max_chars)
    docs = []
    for path in _resolve_sources(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            docs += _documents(f.read())
    # Shuffling whole documents mixes the topics (one file each) across the three splits.
    random.Random(seed).shuffle(docs)
    text = "\n".join(docs)

    n_train = int(len(text) * fractions[0])
    n_valid = int(len(text) * fractions[1])
    parts = [text[:n_train], text[n_train:n_train + n_valid], text[n_train + n_valid:]]
    if max_chars is not None:
        parts = [part[:int(max_chars * frac)] for part, frac in zip(parts, fractions)]
    if not all(parts):
        sizes = ", ".join(f"{name}={len(p)}" for name, p in zip(SPLITS, parts))
        raise ValueError(f"corpus too small: a split is empty ({sizes} characters)")

    # U+FFFD from undecodable bytes would otherwise appear twice; it is the unknown symbol.
    vocab = [UNKNOWN] + sorted(set(parts[0]) - {UNKNOWN})
    index = {ch: i for i, ch in enumerate(vocab)}
    return TextCorpus(vocab, *(_encode(part, index) for part in parts))


def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _logits_and_state(model: torch.nn.Module, x: torch.Tensor, state=None):
    """(logits, state) from a language model that returns either (logits, state), like
    CharLSTM, or logits alone, like CharTransformer (its state is then None). A state is
    only passed back in when there is one, so stateless models are called as model(x)."""
    out = model(x) if state is None else model(x, state)
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


def bits_per_character(model: torch.nn.Module, corpus: TextCorpus, split: str = "test",
                       batch_size: int = 32, seq_len: Optional[int] = None) -> float:
    """Average next-character cross-entropy, in bits, of `model` on a split.

    model(x, state) -> (logits [batch, seq, vocab], state), like CharLSTM: the state is
    carried across the contiguous batches of corpus.batches (the tail that does not fill a
    whole batch is not scored). A model returning logits alone, like CharTransformer, is
    called as model(x) and scores each window on its own. seq_len defaults to the model's
    `context` attribute if it has one (CharTransformer), else 100. Runs in eval mode under
    no_grad; the mode is restored.
    """
    if seq_len is None:
        seq_len = getattr(model, "context", 100)
    was_training = model.training
    device = _model_device(model)
    total_nats, count, state = 0.0, 0, None
    model.eval()
    try:
        with torch.no_grad():
            for x, y in corpus.batches(split, batch_size, seq_len):
                logits, state = _logits_and_state(model, x.to(device), state)
                total_nats += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                              y.to(device).reshape(-1), reduction="sum").item()
                count += y.numel()
    finally:
        model.train(was_training)
    return total_nats / count / math.log(2)
