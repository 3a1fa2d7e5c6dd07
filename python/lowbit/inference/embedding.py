"""Packed embedding tables: the weight stays row-packed codes and only the rows a forward
looks up are decoded (lowbit's unpack op, whose reference serves devices other than the
CPU), then mapped through the
per-group value tables. The values are the dequantized ones, so a lookup equals
F.embedding on the frozen (fake-quantized) weight bit for bit.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..quant import QParams
from .modules import _dtype_name, _group_of_rows, _Packed, lookup_tables


def _reject_options(module: nn.Module, name: str) -> None:
    if module.max_norm is not None:
        raise ValueError(f"{name}: max_norm={module.max_norm} renormalizes the weight rows in place at "
                         "lookup, which a packed table cannot do; build the layer with max_norm=None")
    if module.sparse:
        raise ValueError(f"{name}: sparse=True only changes the gradient, and a packed table has none; "
                         "build the layer with sparse=False")


class _PackedTable(_Packed):
    """Row-packed codes of a [num_embeddings, embedding_dim] weight and their value tables."""

    padding_idx: Optional[int]

    def __init__(self, weight: torch.Tensor, qp: QParams, padding_idx: Optional[int]):
        super().__init__()
        if not weight.is_floating_point():
            raise TypeError(f"the embedding weight must be a float tensor, got {weight.dtype}")
        self.num_embeddings, self.embedding_dim = weight.shape
        _group_of_rows(qp, self.num_embeddings)
        self._store(weight, qp, None)
        self.rows_per_group = self.num_embeddings // qp.groups
        self.register_buffer("tables", lookup_tables(qp, weight.dtype).to(weight.device))
        self.padding_idx = padding_idx

    def _check_indices(self, input: torch.Tensor, name: str) -> None:
        if not isinstance(input, torch.Tensor):  # statically true under TorchScript: not compiled
            raise TypeError(f"{name} expects a tensor of int64 or int32 indices, got {type(input).__name__}")
        if input.dtype != torch.int64 and input.dtype != torch.int32:
            raise TypeError(f"{name} expects int64 or int32 indices, got {_dtype_name(input)}")
        if input.device != self.w_packed.device:
            raise ValueError(f"{name}: indices are on {input.device} but the table is on "
                             f"{self.w_packed.device}; move one of them (module.to(device))")
        # Data-dependent, so skipped while tracing (the trace would freeze the answer).
        if not torch.jit.is_tracing() and input.numel() > 0:
            lo, hi = int(input.min()), int(input.max())
            if lo < 0 or hi >= self.num_embeddings:
                raise IndexError(f"{name}: indices must be in [0, {self.num_embeddings}), "
                                 f"got min {lo}, max {hi}")

    def _decode(self, flat: torch.Tensor) -> torch.Tensor:
        """The values [n, embedding_dim] of rows `flat` (int64 [n], in range)."""
        rows = self.w_packed.index_select(0, flat)  # [n, row bytes]
        # a row holds embedding_dim fields rounded up to 8, so n rows are one packed stream
        width = rows.shape[1] * 8 // self.bits
        fields = torch.ops.lowbit.unpack(rows.reshape(-1), self.bits, rows.shape[0] * width, False)
        fields = fields.reshape(rows.shape[0], width)[:, :self.embedding_dim].long()
        group = torch.div(flat, self.rows_per_group, rounding_mode="floor")
        at = (group * self.tables.shape[1]).unsqueeze(1) + fields   # into the flattened tables
        return self.tables.reshape(-1).index_select(0, at.reshape(-1)).reshape(at.shape)


class PackedEmbedding(_PackedTable):
    """nn.Embedding with a packed weight: `forward(input)` takes int64 / int32 indices of
    any shape and returns input.shape + [embedding_dim], equal to F.embedding on the frozen
    weight. padding_idx is kept (it only affects training, a packed table has no gradient);
    max_norm and sparse are rejected."""

    def __init__(self, emb: nn.Embedding, qp: QParams):
        _reject_options(emb, "PackedEmbedding")
        super().__init__(emb.weight.detach(), qp, emb.padding_idx)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_indices(input, "PackedEmbedding")
        rows = self._decode(input.reshape(-1).long())
        return rows.reshape(list(input.shape) + [self.embedding_dim])

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}{pad}"


class PackedEmbeddingBag(_PackedTable):
    """nn.EmbeddingBag with a packed weight: `forward(input, offsets=None,
    per_sample_weights=None)` as nn.EmbeddingBag (modes sum / mean / max, 1-D input with
    offsets or 2-D input with one bag per row, include_last_offset, per_sample_weights with
    mode='sum', padding_idx entries left out of the reduction, empty bags give zeros).

    The looked-up rows are decoded once per entry and reduced by F.embedding_bag. Offsets
    are checked first (start at 0, never decrease, end within the input): torch 1.13's
    kernel can crash the process on offsets that break these rules, and on 2-D input with
    include_last_offset=True, which here means one bag per row, as torch later fixed it.
    Entries past the last offset with include_last_offset belong to no bag, as in torch.
    """

    def __init__(self, bag: nn.EmbeddingBag, qp: QParams):
        _reject_options(bag, "PackedEmbeddingBag")
        super().__init__(bag.weight.detach(), qp, bag.padding_idx)
        self.mode = str(bag.mode)
        self.include_last_offset = bool(bag.include_last_offset)

    def _bag_ends(self, input: torch.Tensor,
                  offsets: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(offsets of every bag plus the input length, the position where the bags end)."""
        name = "PackedEmbeddingBag"
        n = input.numel()
        if input.dim() == 2:
            if offsets is not None:
                raise ValueError(f"{name}: 2-D input holds one bag per row, so offsets must be None")
            starts = torch.arange(input.shape[0], device=input.device) * input.shape[1]
            return torch.cat([starts, starts.new_full((1,), n)]), starts.new_full((1,), n)
        if input.dim() != 1:
            raise ValueError(f"{name} expects 1-D input with offsets or 2-D input (one bag per row), "
                             f"got shape {list(input.shape)}")
        if offsets is None:
            raise ValueError(f"{name}: 1-D input needs offsets (where each bag starts)")
        if offsets.dtype != torch.int64 and offsets.dtype != torch.int32:
            raise TypeError(f"{name} expects int64 or int32 offsets, got {_dtype_name(offsets)}")
        empty = not torch.jit.is_tracing() and offsets.numel() == 0  # sizes are tensors while tracing
        if offsets.dim() != 1 or (self.include_last_offset and empty):
            raise ValueError(f"{name}: offsets must be 1-D (and non-empty with include_last_offset), "
                             f"got shape {list(offsets.shape)}")
        offsets = offsets.long()
        # Data-dependent, so skipped while tracing (the trace would freeze the answer).
        if not torch.jit.is_tracing() and offsets.numel() > 0:
            first, last = int(offsets[0]), int(offsets[-1])
            decreasing = bool((offsets[1:] < offsets[:-1]).any())
            if first != 0 or last > n or decreasing:
                raise ValueError(f"{name}: offsets must start at 0, never decrease and end within the "
                                 f"input ({n} entries), got first {first}, last {last}"
                                 f"{', and a decrease' if decreasing else ''}")
        if self.include_last_offset:
            return torch.cat([offsets[:-1], offsets.new_full((1,), n)]), offsets[-1:]
        return torch.cat([offsets, offsets.new_full((1,), n)]), offsets.new_full((1,), n)

    def forward(self, input: torch.Tensor, offsets: Optional[torch.Tensor] = None,
                per_sample_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        self._check_indices(input, "PackedEmbeddingBag")
        if per_sample_weights is not None and list(per_sample_weights.shape) != list(input.shape):
            raise ValueError(f"PackedEmbeddingBag: per_sample_weights must have the input's shape "
                             f"{list(input.shape)}, got {list(per_sample_weights.shape)}")
        bounds, end = self._bag_ends(input, offsets)
        flat = input.reshape(-1).long()
        n = flat.shape[0]
        # Entry i reads decoded row i. Padding entries, and entries past the last bag, read
        # an extra zero row that is F.embedding_bag's padding_idx, so it leaves them out as
        # it would. Every call ends its last bag at n, and a leading bag (dropped below)
        # keeps two or more offsets even with no bags: the layouts its kernel handles.
        rows = torch.cat([self._decode(flat), self.tables.new_zeros(1, self.embedding_dim)])
        local = torch.arange(n, device=flat.device)
        dropped = local >= end
        pad = self.padding_idx
        if pad is not None:
            dropped = dropped | (flat == pad)
        local = torch.where(dropped, torch.full_like(local, n), local)
        weights = None if per_sample_weights is None else per_sample_weights.reshape(-1)
        bounds = torch.cat([bounds.new_zeros(1), bounds])
        return F.embedding_bag(local, rows, bounds, None, 2.0, False, self.mode, False, weights, True, n)[1:]

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}, mode={self.mode!r}{pad}"
