"""PackedTensor: a weight stored as packed low-bit codes plus its parameters. Its
`nbytes` is what the weight really costs on disk or in memory."""
from dataclasses import dataclass

import torch

from . import ops
from .quant import QParams, dequantize, quantize


@dataclass(frozen=True)
class PackedTensor:
    data: torch.Tensor      # uint8 bit stream, ceil(numel * bits / 8) bytes
    shape: torch.Size
    qparams: QParams

    @classmethod
    def from_tensor(cls, w: torch.Tensor, qp: QParams) -> "PackedTensor":
        codes = quantize(w, qp)
        return cls(ops.pack(codes, qp.bits), w.shape, qp)

    def codes(self) -> torch.Tensor:
        n = 1
        for s in self.shape:
            n *= s
        return ops.unpack(self.data, self.qparams.bits, n, self.qparams.signed).reshape(self.shape)

    def dequantize(self) -> torch.Tensor:
        return dequantize(self.codes(), self.qparams)

    @property
    def nbytes(self) -> int:
        """Packed codes plus parameters, in bytes."""
        params = [self.qparams.p0] + ([self.qparams.p1] if self.qparams.p1 is not None else [])
        return self.data.numel() + sum(p.numel() * p.element_size() for p in params)
