"""Character-level causal Transformer language model, beside CharLSTM.

    corpus = lb.data.load_text_corpus()
    torch.manual_seed(0)
    model = CharTransformer(corpus.vocab_size)              # 2 layers, d_model 64, context 64
    history = train_char_model(model, corpus, steps=800)    # about 75 s on one CPU thread
    lb.data.bits_per_character(model, corpus, "test")       # about 3.1 (unigram entropy: 4.76)
    ids = generate(model, corpus.encode("The "), 200, temperature=0.8, seed=0)
    print(corpus.decode(ids))

Only standard torch modules hold the weights (nn.Embedding, nn.TransformerEncoderLayer
with its nn.MultiheadAttention and nn.Linear, nn.LayerNorm, nn.Linear head), so lowbit
finds the layers by module kind like in any other model. `generate` and
`train_char_model` only call `model(x)`, so they also work on CharLSTM and on converted
copies of either model.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..data.text import TextCorpus, _logits_and_state, bits_per_character
from ..progress import progress_bar
from ._checks import positive_int, probability

_ID_DTYPES = (torch.int64, torch.int32)  # what nn.Embedding accepts


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, as a function torch does not recognize: it keeps nn.TransformerEncoderLayer off
    its fused inference fast path (see CharTransformer), which reads the layers' weights
    directly instead of calling the nn.Linear modules."""
    return F.gelu(x)


def causal_mask(size: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[size, size] additive attention mask: 0 on and below the diagonal, -inf above it, so
    position t attends to positions 0..t only (what nn.Transformer's
    generate_square_subsequent_mask returns, on every torch version)."""
    return torch.full((size, size), float("-inf"), device=device, dtype=dtype).triu(1)


class CharTransformer(nn.Module):
    """Token + learned position embedding -> causal TransformerEncoder -> LayerNorm -> Linear.

    ``forward(x)`` maps int64 (or int32) ids [batch, time], time <= context, to next-character
    logits [batch, time, vocab]; the logits at t depend on x[:, :t + 1] only. There is no
    state to carry: score or train it on windows of at most `context` characters.

    Layers: ``embed`` (nn.Embedding over the vocabulary), ``pos_embed`` (nn.Embedding over
    `context` positions), ``encoder`` (nn.TransformerEncoder of `layers`
    nn.TransformerEncoderLayer, batch_first, pre-norm by default), ``norm`` (nn.LayerNorm),
    ``decoder`` (nn.Linear to the vocabulary: the output layer, last in module order).

    The causal mask is a float buffer passed as ``mask=``, not ``is_causal`` (which torch 1.13
    lacks); it is not persistent, so the state_dict holds weights only. The feed-forward
    activation is GELU through a plain function, so the encoder layers always take the same
    module-by-module path in training and eval mode, on torch 1.13 and 2.x: torch 2.x's fused
    inference path would bypass the feed-forward nn.Linear modules (and their lowbit hooks or
    packed replacements).

    Like CharLSTM, the weights come from torch's global RNG: call torch.manual_seed first.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, nhead: int = 4, layers: int = 2,
                 dim_feedforward: Optional[int] = None, context: int = 64, dropout: float = 0.0,
                 norm_first: bool = True):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("d_model", d_model)
        positive_int("nhead", nhead)
        positive_int("layers", layers)
        positive_int("context", context)
        dim_feedforward = 4 * d_model if dim_feedforward is None else dim_feedforward
        positive_int("dim_feedforward", dim_feedforward)
        probability("dropout", dropout)
        if d_model % nhead:
            raise ValueError(f"nhead must divide d_model ({d_model}), got nhead={nhead}")
        if not isinstance(norm_first, bool):
            raise ValueError(f"norm_first must be True or False, got {norm_first!r}")
        self.vocab_size, self.d_model, self.context = vocab_size, d_model, context
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           activation=_gelu, batch_first=True,
                                           norm_first=norm_first)
        # No nested tensors: they only serve padding masks, and torch 2.x warns about them
        # when norm_first is set.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, vocab_size)
        self.register_buffer("causal_mask", causal_mask(context), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # nn.Embedding's N(0, 1) would swamp the residual stream of a small model; GPT-style
        # N(0, 0.02) embeddings train markedly faster. The other layers keep torch's defaults.
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed.weight, std=0.02)

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor of character ids, got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"CharTransformer expects [batch, time] ids, got shape {tuple(x.shape)}")
        if x.dtype not in _ID_DTYPES:
            raise ValueError(f"x must hold integer ids (int64 or int32), got dtype {x.dtype}")
        if torch.jit.is_tracing():
            return  # a trace fixes the shape, and data-dependent checks would freeze their answer
        if x.shape[0] < 1 or not 1 <= x.shape[1] <= self.context:
            raise ValueError(f"x must have batch >= 1 and 1 <= time <= context ({self.context}), "
                             f"got shape {tuple(x.shape)}")
        if int(x.min()) < 0 or int(x.max()) >= self.vocab_size:
            raise ValueError(f"x holds ids outside [0, {self.vocab_size}) "
                             f"(min {int(x.min())}, max {int(x.max())})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 [batch, time] character ids, time <= context -> logits [batch, time, vocab]."""
        self._check_input(x)
        t = x.shape[1]
        positions = torch.arange(t, device=x.device)
        h = self.drop(self.embed(x) + self.pos_embed(positions))
        h = self.encoder(h, mask=self.causal_mask[:t, :t])
        return self.decoder(self.norm(h))

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, d_model={self.d_model}, context={self.context}"


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@torch.no_grad()
def generate(model: nn.Module, prompt: Union[torch.Tensor, Sequence[int]], n: int,
             temperature: float = 1.0, seed: int = 0,
             context: Optional[int] = None) -> torch.Tensor:
    """Sample `n` new character ids after `prompt`, one at a time, at batch 1.

    prompt: ids as a 1-D tensor, a [1, time] tensor or a list (at least one id; with a
    corpus, ``corpus.encode(text)``). temperature: softmax temperature; 0 is greedy
    (argmax). seed: the sampling generator's seed (the global RNG is not touched), so the
    same seed gives the same text. Each step calls ``model(x)`` on the last `context` ids
    only (default ``model.context``; a model without one sees the whole sequence) and reads
    the logits of the last position: any module with CharTransformer's contract works
    (model(x [1, time]) -> logits [1, time, vocab]); a returned (logits, state) pair, as
    from CharLSTM, has its state ignored. Runs in eval mode; the mode is restored.

    Returns the n new ids, int64 [n] on the prompt's device (decode with corpus.decode).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    _non_negative_int("n", n)
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if context is None:
        context = getattr(model, "context", None)
    if context is not None:
        positive_int("context", context)
    if isinstance(prompt, str):
        raise TypeError("prompt must be character ids, not a str: pass corpus.encode(text)")
    ids = prompt if isinstance(prompt, torch.Tensor) else torch.tensor(list(prompt), dtype=torch.int64)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1 or ids.numel() == 0:
        raise ValueError(f"prompt must be a non-empty 1-D (or [1, time]) sequence of ids, "
                         f"got shape {tuple(ids.shape)}")
    if ids.dtype not in _ID_DTYPES:
        raise ValueError(f"prompt must hold integer ids (int64 or int32), got dtype {ids.dtype}")

    out_device, device = ids.device, _model_device(model)
    seq = torch.empty(ids.numel() + n, dtype=torch.int64, device=device)
    seq[:ids.numel()] = ids.to(device)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        for end in range(ids.numel(), ids.numel() + n):
            start = 0 if context is None else max(0, end - context)
            logits, _ = _logits_and_state(model, seq[start:end].unsqueeze(0), None)
            last = logits[0, -1].double().cpu()
            if temperature == 0:
                nxt = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
            seq[end] = nxt
    finally:
        model.train(was_training)
    return seq[ids.numel():].to(out_device)


def train_char_model(model: nn.Module, corpus: TextCorpus, *, epochs: int = 1,
                     steps: Optional[int] = None, lr: float = 3e-3, batch_size: int = 32,
                     seq_len: Optional[int] = None, clip: float = 1.0, seed: int = 0,
                     valid: bool = True, progress: bool = True) -> Dict[str, List[float]]:
    """Train a character language model with Adam and a cosine learning-rate decay.

    Batches come from ``corpus.batches("train", batch_size, seq_len, seed=...)`` with a
    different seeded offset per epoch; seq_len defaults to ``model.context`` (else 100).
    A model returning (logits, state), like CharLSTM, has its state carried across batches
    and detached (truncated backpropagation through time); a model returning logits, like
    CharTransformer, sees each window on its own. Training runs `epochs` passes over the
    train split, or, if `steps` is given, exactly `steps` updates (as many epochs as that
    takes). clip: gradient-norm clip (0 disables). seed fixes the batch offsets and dropout
    (the global RNG is restored afterwards); initialize the weights under torch.manual_seed,
    as for any model.

    Returns the history: "loss" (training cross-entropy of every step, nats) and
    "valid_bpc" (bits per character on the valid split after each epoch, if `valid`).
    The model is left in eval mode.
    """
    positive_int("epochs", epochs)
    if steps is not None:
        positive_int("steps", steps)
    if seq_len is None:
        seq_len = getattr(model, "context", 100)
    positive_int("batch_size", batch_size)
    positive_int("seq_len", seq_len)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not (math.isfinite(clip) and clip >= 0):
        raise ValueError(f"clip must be a finite number >= 0 (0 disables clipping), got {clip!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")

    # Windows per epoch (a seeded start offset can drop one; the schedule only needs an estimate).
    per_epoch = ((len(corpus.train) - 1) // batch_size) // seq_len
    if per_epoch < 1:
        raise ValueError(f"the train split has {len(corpus.train)} characters, too short for one "
                         f"batch of {batch_size} x {seq_len}")
    eval_batch = min(batch_size, (len(corpus.valid) - 1) // seq_len)
    if valid and eval_batch < 1:
        raise ValueError(f"the valid split has {len(corpus.valid)} characters, too short to score "
                         f"one window of {seq_len}; pass valid=False or a smaller seq_len")
    total = steps if steps is not None else epochs * per_epoch
    device = _model_device(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, total) / total)))
    history: Dict[str, List[float]] = {"loss": [], "valid_bpc": []}
    losses = history["loss"]
    fork = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        # None when progress is off (a bar with only a total has no iterable to hand back)
        bar = progress_bar(total=total, desc=f"training {type(model).__name__}", disable=not progress)
        epoch = 0
        while len(losses) < total and (steps is not None or epoch < epochs):
            model.train()
            state = None
            for x, y in corpus.batches("train", batch_size, seq_len, seed=seed * 1000003 + epoch):
                logits, state = _logits_and_state(model, x.to(device), state)
                if state is not None:
                    state = tuple(s.detach() for s in state)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1))
                opt.zero_grad()
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                sched.step()
                losses.append(float(loss))
                if bar is not None:
                    bar.update(1)
                if len(losses) >= total:
                    break
            epoch += 1
            if valid:
                history["valid_bpc"].append(
                    bits_per_character(model, corpus, "valid", eval_batch, seq_len))
                if bar is not None:
                    bar.set_postfix(valid_bpc=f"{history['valid_bpc'][-1]:.3f}")
        if bar is not None:
            bar.close()
    model.eval()
    return history
