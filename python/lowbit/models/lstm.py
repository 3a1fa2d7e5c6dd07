"""Character-level LSTM language model."""
from typing import Optional, Tuple

import torch
from torch import nn

from ._checks import positive_int, probability

State = Tuple[torch.Tensor, torch.Tensor]  # (h, c), each [layers, batch, hidden]


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear decoder predicting the next character.

    ``forward(x, state)`` returns the new state so that callers can carry it across
    consecutive batches of a contiguous stream (truncated backpropagation through time);
    detach it between training batches.
    """

    def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 128, layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("embed", embed)
        positive_int("hidden", hidden)
        positive_int("layers", layers)
        probability("dropout", dropout)
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed)
        # nn.LSTM only applies dropout between stacked layers (and warns when layers == 1).
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        # Dropout on the LSTM output, so dropout also regularizes a single-layer model.
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor,
                state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        """x: int64 [batch, seq] character ids -> (logits [batch, seq, vocab], (h, c))."""
        if x.dim() != 2:
            raise ValueError(f"CharLSTM expects [batch, seq] ids, got shape {tuple(x.shape)}")
        out, state = self.lstm(self.embed(x), state)
        return self.decoder(self.drop(out)), state
