"""The user-facing quantizer API: parameters, quantize / dequantize / fake-quantize and
the straight-through estimator, for any scheme and granularity."""
from dataclasses import dataclass
from typing import Optional, Union

import torch

from . import ops, schemes

GRANULARITIES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class QParams:
    """A scheme, its bit width and its per-group parameters.

    p0 is the step (symmetric), the scale (asymmetric, range), the largest level (pow2) or
    the sorted values [G, K] (codebook); p1 is the int32 zero point (asymmetric) or the
    float offset, the value of code 0 (range). `lowbit.schemes` has every scheme's facts.
    Groups split a weight along dim 0: 1 group = per tensor, w.size(0) = per channel.
    """
    scheme: str
    bits: int
    p0: torch.Tensor
    p1: Optional[torch.Tensor] = None

    @property
    def groups(self) -> int:
        if self.p0.dim() == 1 and schemes.get(self.scheme).params[0].shape == "[G, K]":
            return 1
        return int(self.p0.shape[0])

    @property
    def signed(self) -> bool:
        return schemes.get(self.scheme).signed

    def to(self, device: Union[str, torch.device]) -> "QParams":
        p1 = None if self.p1 is None else self.p1.to(device)
        return QParams(self.scheme, self.bits, self.p0.to(device), p1)


def num_groups(w: torch.Tensor, granularity: str = "tensor", groups: Optional[int] = None) -> int:
    """Groups along dim 0 for a granularity: 'tensor' -> 1, 'channel' -> w.size(0),
    'group' -> `groups` row blocks (e.g. 4 for the gates of an LSTM weight)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if w.dim() == 0:
        raise ValueError("w must have at least one dimension, got a 0-dim tensor")
    if granularity == "tensor":
        return 1
    if granularity == "channel":
        return int(w.shape[0])
    if not isinstance(groups, int) or groups < 1 or w.shape[0] % groups:
        raise ValueError(f"granularity='group' needs groups dividing w.size(0) = {w.shape[0]}, "
                         f"got groups={groups!r}")
    return groups


def calibrate(w: torch.Tensor, scheme: str = "symmetric", bits: int = 4,
              granularity: str = "tensor", groups: Optional[int] = None,
              method: Optional[str] = None) -> QParams:
    """Parameters that quantize `w` with `scheme` at `bits` bits.

    method: the step rule (`lowbit.schemes.get(scheme).step_rules`): symmetric 'l2' (the
    L2-optimal QStep of paper 002, the default), 'maxabs' (paper 004's max |w| rule) or
    'meanstd' (RMS times the Gaussian-optimal ratio); asymmetric 'minmax'; pow2 'maxabs'.
    The default is the scheme's retraining rule. Codebooks come from `codebook(values)`.
    """
    spec = schemes.get(scheme)
    if not spec.calibrated:
        raise ValueError(f"{scheme} parameters are not computed from the weights ({spec.step_note}): "
                         "use lowbit.codebook(values)")
    g = num_groups(w, granularity, groups)
    p = ops.qparams(w.detach(), scheme, bits, g, method or spec.retrain_step)
    return QParams(scheme, bits, p[0], p[1] if len(p) > 1 else None)


def codebook(values, bits: Optional[int] = None, dtype: torch.dtype = torch.float32) -> QParams:
    """A codebook (VBQ) quantizer from sorted representative values, [K] or [groups, K].
    bits defaults to the fewest that index K values."""
    cb = torch.as_tensor(values, dtype=dtype) if not isinstance(values, torch.Tensor) else values
    if cb.dim() not in (1, 2) or cb.shape[-1] < 2:
        raise ValueError(f"codebook values must be [K] or [groups, K] with K >= 2, got shape {tuple(cb.shape)}")
    K = int(cb.shape[-1])
    if bits is None:
        bits = max(1, (K - 1).bit_length())
    return QParams("codebook", bits, cb if cb.dim() == 2 else cb.unsqueeze(0))


def qstep(w: torch.Tensor, bits: int, granularity: str = "tensor", groups: Optional[int] = None,
          method: str = "l2") -> torch.Tensor:
    """The symmetric quantizer's step size per group (see `calibrate` for methods)."""
    return calibrate(w, "symmetric", bits, granularity, groups, method).p0


def quantize(w: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Integer codes: int8 for symmetric / pow2, uint8 for asymmetric / codebook / range."""
    return ops.quantize(w, qp.scheme, qp.bits, qp.p0, qp.p1)


def dequantize(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    return ops.dequantize(codes, qp.scheme, qp.bits, qp.p0, qp.p1)


def fake_quantize(w: torch.Tensor, qp: QParams) -> torch.Tensor:
    """w replaced by its quantized values (no gradient)."""
    return ops.fake_quant(w, qp.scheme, qp.bits, qp.p0, qp.p1)


def ste_quantize(w: torch.Tensor, qp: QParams, clip_grad: bool = False) -> torch.Tensor:
    """Fake-quantized w whose gradient passes straight through to w (paper 002's
    retraining rule); clip_grad=True zeroes it where the quantizer saturates."""
    return ops.ste_fake_quant(w, qp.scheme, qp.bits, qp.p0, qp.p1, clip_grad)
