"""Reference integer kernels for uniform codes (symmetric and asymmetric, 2..8 bits):
int8 activations per row times unsigned weight fields, summed exactly, the zero point
taken out through the activation row sums. Signatures match the torch.ops.lowbit
operators; the weight layout is the kernels' bit-plane rows (cpp/include/lowbit/int_rows.h):

    every row padded with zero fields to a multiple of 64; each block of 64 fields takes
    8 * bits bytes, as planes of 4, 2 and 1 bits, low bits first (2: 2; 3: 2+1; 4: 4;
    5: 4+1; 6: 4+2; 7: 4+2+1; 8: 8). In a plane of width p (8 p bytes) byte i holds the
    fields i + 8 p q at bits [p q, p q + p).
"""
from typing import List, Optional

import torch

from ._checks import check_bits
from .qparams import qparams
from .quantize import quantize

BLOCK = 64
MAX_K = 2 ** 19  # the kernels sum in int32 lanes


def planes(bits: int) -> List[int]:
    """The plane widths of a `bits`-bit field, low bits first."""
    return {2: [2], 3: [2, 1], 4: [4], 5: [4, 1], 6: [4, 2], 7: [4, 2, 1], 8: [8]}[bits]


def int_row_bytes(K: int, bits: int) -> int:
    """Bytes of one bit-plane row of K fields."""
    return (K + BLOCK - 1) // BLOCK * BLOCK // 8 * bits


def pack_int_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    check_bits(bits, 2, 8, "pack_int_rows")
    if codes.dtype not in (torch.uint8, torch.int8):
        raise TypeError(f"codes must be uint8 or int8, got {codes.dtype}")
    if codes.dim() != 2 or codes.numel() == 0:
        raise ValueError(f"codes must be a non-empty [rows, K] matrix, got shape {tuple(codes.shape)}")
    offset = 2 ** (bits - 1) if codes.dtype == torch.int8 else 0
    f = (codes.to(torch.int64) + offset) % 256
    if bool((f >> bits).any()):
        raise ValueError(f"codes do not fit in {bits} bits")
    O, K = f.shape
    Kp = (K + BLOCK - 1) // BLOCK * BLOCK
    blocks = torch.nn.functional.pad(f, (0, Kp - K)).reshape(O, Kp // BLOCK, BLOCK)
    parts, shift = [], 0
    for w in planes(bits):
        nb, per = 8 * w, 8 // w
        v = ((blocks >> shift) & (2 ** w - 1)).reshape(O, Kp // BLOCK, per, nb)  # field q * nb + i
        weights = (2 ** (w * torch.arange(per, device=f.device))).reshape(1, 1, per, 1)
        parts.append((v * weights).sum(2))
        shift += w
    return torch.cat(parts, 2).reshape(O, -1).to(torch.uint8)


def int_fields(w_packed: torch.Tensor, K: int, bits: int) -> torch.Tensor:
    """The unsigned fields [O, K] (int64) of bit-plane rows."""
    rb = int_row_bytes(K, bits)
    if w_packed.dtype != torch.uint8:
        raise TypeError(f"packed weights must be uint8, got {w_packed.dtype}")
    if w_packed.dim() != 2 or w_packed.shape[0] == 0 or w_packed.shape[1] != rb:
        raise ValueError(f"bit-plane rows hold {w_packed.shape[-1] if w_packed.dim() else 0} bytes but {K} input "
                         f"features at {bits} bits need {rb}: wrong input size or bits")
    O, B = w_packed.shape[0], rb // bits // 8
    blk = w_packed.to(torch.int64).reshape(O, B, 8 * bits)
    f = torch.zeros(O, B, BLOCK, dtype=torch.int64, device=w_packed.device)
    at, shift = 0, 0
    for w in planes(bits):
        nb, per = 8 * w, 8 // w
        q = (w * torch.arange(per, device=f.device)).reshape(1, 1, per, 1)
        vals = (blk[:, :, None, at:at + nb] >> q) & (2 ** w - 1)
        f |= vals.reshape(O, B, BLOCK) << shift
        at, shift = at + nb, shift + w
    return f.reshape(O, B * BLOCK)[:, :K]


def _check_zero_point(zero_point: torch.Tensor, O: int, bits: int) -> None:
    if zero_point.dtype != torch.int32:
        raise TypeError(f"zero_point must be int32, got {zero_point.dtype}")
    if zero_point.dim() != 1 or zero_point.shape[0] != O:
        raise ValueError(f"zero_point must have shape [{O}], got {tuple(zero_point.shape)}")
    if not zero_point.is_meta and not bool(((zero_point >= 0) & (zero_point < 2 ** bits)).all()):
        raise ValueError(f"zero_point must hold fields in [0, {2 ** bits - 1}] for {bits} bits")


def int_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int, zero_point: torch.Tensor
                   ) -> torch.Tensor:
    check_bits(bits, 2, 8, "uniform weights")
    if x_codes.dtype != torch.int8:
        raise TypeError(f"x codes must be int8, got {x_codes.dtype}")
    if x_codes.dim() < 1 or x_codes.numel() == 0:
        raise ValueError(f"x codes must be non-empty, got shape {tuple(x_codes.shape)}")
    K = x_codes.shape[-1]
    if K > MAX_K:
        raise ValueError(f"int kernels take at most {MAX_K} input features, got {K}")
    u = int_fields(w_packed, K, bits)
    _check_zero_point(zero_point, u.shape[0], bits)
    W = u - zero_point.to(torch.int64)[:, None]
    # float64 holds every partial sum exactly (|sum| < 2^19 * 128 * 255 < 2^53), on any device.
    acc = x_codes.reshape(-1, K).to(torch.float64) @ W.T.to(torch.float64)
    return acc.to(torch.int64).reshape(*x_codes.shape[:-1], u.shape[0])


def int_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
               zero_point: torch.Tensor, bias: Optional[torch.Tensor], act_bits: int = 8) -> torch.Tensor:
    check_bits(bits, 2, 8, "uniform weights")
    check_bits(act_bits, 2, 8, "activations")
    if x.dtype != torch.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    if x.dim() < 1 or x.numel() == 0:
        raise ValueError(f"x must be non-empty with at least one dimension, got shape {tuple(x.shape)}")
    if w_scale.dtype != torch.float64:
        raise TypeError(f"w_scale must be float64, got {w_scale.dtype}")
    x2 = x.reshape(-1, x.shape[-1])
    step = qparams(x2, "symmetric", act_bits, x2.shape[0], "maxabs")[0]  # one step per row
    codes = quantize(x2, "symmetric", act_bits, step)
    acc = int_matmul_int(codes, w_packed, bits, zero_point)
    if w_scale.dim() != 1 or w_scale.shape[0] != acc.shape[1]:
        raise ValueError(f"w_scale must have shape [{acc.shape[1]}], got {tuple(w_scale.shape)}")
    y = (acc.to(torch.float64) * (step.to(torch.float64)[:, None] * w_scale[None, :])).to(torch.float32)
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], acc.shape[1])
