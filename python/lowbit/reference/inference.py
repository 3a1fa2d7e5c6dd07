"""Reference packed inference: the same arithmetic as the shift and LUT kernels, written
plainly (int64 matrix products for the shift kernels, a float matmul of the decoded
weights for the LUT kernel). Signatures match the torch.ops.lowbit operators."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from ._checks import check_bits
from .pack import pack, unpack
from .qparams import qparams
from .quantize import quantize


def row_bytes(K: int, bits: int) -> int:
    """Bytes of one row-packed row: whole blocks of 8 fields, `bits` bytes each."""
    return (K + 7) // 8 * bits


def pack_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    check_bits(bits, 1, 8, "pack_rows")
    if codes.dim() != 2 or codes.numel() == 0:
        raise ValueError(f"codes must be a non-empty [rows, K] matrix, got shape {tuple(codes.shape)}")
    rb = row_bytes(codes.shape[1], bits)
    out = torch.zeros(codes.shape[0], rb, dtype=torch.uint8, device=codes.device)
    for r in range(codes.shape[0]):
        p = pack(codes[r], bits)
        out[r, :p.numel()] = p
    return out


def fields(w_packed: torch.Tensor, K: int, bits: int) -> torch.Tensor:
    """The unsigned fields [O, K] (int64) of row-packed weights."""
    if w_packed.dim() != 2 or w_packed.shape[1] != row_bytes(K, bits):
        raise ValueError(f"packed rows hold {w_packed.shape[-1]} bytes but {K} input features at "
                         f"{bits} bits need {row_bytes(K, bits)}: wrong input size or bits")
    n = (K + 7) // 8 * 8
    return torch.stack([unpack(r, bits, n, False)[:K] for r in w_packed]).to(torch.int64)


def lowest_exponent_code(bits: int) -> int:
    """k_lo: pow2 codes with |c| < k_lo fall below the integer kernels' 31-exponent window."""
    return max(1, (2 ** (bits - 1) - 1) - 30)


def shift_weights_int(w_packed: torch.Tensor, K: int, bits: int) -> torch.Tensor:
    """Integer weights sign(c) * 2^(|c| - k_lo) (int64, [O, K]); field 0 reads as 0."""
    u = fields(w_packed, K, bits)
    c = torch.where(u == 0, torch.zeros_like(u), u - 2 ** (bits - 1))
    mag, k_lo = c.abs(), lowest_exponent_code(bits)
    powers = torch.where(mag >= k_lo, torch.ones_like(mag) << (mag - k_lo).clamp(min=0), torch.zeros_like(mag))
    return torch.sign(c) * powers


def quantize_activations(x: torch.Tensor, act_bits: int, x_scale: Optional[float] = None
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
    check_bits(act_bits, 2, 8, "activations")
    if x.dtype != torch.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    if x_scale is None:
        step = qparams(x.reshape(1, -1), "symmetric", act_bits, 1, "maxabs")[0]
    else:
        step = torch.tensor([x_scale], dtype=torch.float32, device=x.device)
    return quantize(x.reshape(1, -1), "symmetric", act_bits, step).reshape(x.shape), step


def shift_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int, method: str = "auto") -> torch.Tensor:
    check_bits(bits, 2, 8, "power-of-two weights")
    W = shift_weights_int(w_packed, x_codes.shape[-1], bits)
    return x_codes.to(torch.int64) @ W.T


def shift_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
                 bias: Optional[torch.Tensor], act_bits: int = 8, x_scale: Optional[float] = None,
                 method: str = "auto") -> torch.Tensor:
    codes, step = quantize_activations(x, act_bits, x_scale)
    acc = shift_matmul_int(codes, w_packed, bits, method)
    y = (acc.double() * (step.double() * w_scale)).float()
    return y + bias if bias is not None else y


def lut_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
               bias: Optional[torch.Tensor]) -> torch.Tensor:
    check_bits(bits, 1, 8, "codebook weights")
    u = fields(w_packed, x.shape[-1], bits)
    rows_per_table = u.shape[0] // tables.shape[0]
    table_of_row = torch.arange(u.shape[0], device=u.device) // rows_per_table
    W = tables[table_of_row[:, None], u]
    y = x @ W.T
    return y + bias if bias is not None else y


# ---- The same weights on bit-plane rows (lowbit.reference.int_inference's layout) --------------

def pow2_weights_from_fields(u: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer weights sign(c) * 2^(|c| - k_lo) (int64) of power-of-two fields u (int64);
    field 0 and codes below the 31-exponent window read as 0."""
    c = torch.where(u == 0, torch.zeros_like(u), u - 2 ** (bits - 1))
    mag, k_lo = c.abs(), lowest_exponent_code(bits)
    powers = torch.where(mag >= k_lo, torch.ones_like(mag) << (mag - k_lo).clamp(min=0), torch.zeros_like(mag))
    return torch.sign(c) * powers


def pow2_matmul_int(x_codes: torch.Tensor, w_packed: torch.Tensor, bits: int) -> torch.Tensor:
    """shift_matmul_int with the weights on bit-plane rows (pack_int_rows of the int8 codes)."""
    from .int_inference import MAX_K, int_fields
    check_bits(bits, 2, 8, "power-of-two weights")
    if x_codes.dtype != torch.int8:
        raise TypeError(f"x codes must be int8, got {x_codes.dtype}")
    if x_codes.dim() < 1 or x_codes.numel() == 0:
        raise ValueError(f"x codes must be non-empty, got shape {tuple(x_codes.shape)}")
    K = x_codes.shape[-1]
    if K > MAX_K:
        raise ValueError(f"int kernels take at most {MAX_K} input features, got {K}")
    W = pow2_weights_from_fields(int_fields(w_packed, K, bits), bits)
    return x_codes.to(torch.int64) @ W.T


def pow2_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, w_scale: torch.Tensor,
                bias: Optional[torch.Tensor], act_bits: int = 8, x_scale: Optional[float] = None) -> torch.Tensor:
    """shift_linear with the weights on bit-plane rows: the same activation codes (one step
    for the whole input), the same integers and the same float rescaling."""
    check_bits(bits, 2, 8, "power-of-two weights")
    codes, step = quantize_activations(x, act_bits, x_scale)
    acc = pow2_matmul_int(codes, w_packed, bits)
    if w_scale.dtype != torch.float64:
        raise TypeError(f"w_scale must be float64, got {w_scale.dtype}")
    y = (acc.double() * (step.double() * w_scale)).float()
    return y + bias if bias is not None else y


def _vlut_weights(w_packed: torch.Tensor, K: int, bits: int, tables: torch.Tensor) -> torch.Tensor:
    """The float weights [O, K] of bit-plane codes: each field's value in its row's table."""
    from .int_inference import int_fields
    check_bits(bits, 2, 8, "codebook weights (vlut)")
    if tables.dtype != torch.float32:
        raise TypeError(f"tables must be float32, got {tables.dtype}")
    u = int_fields(w_packed, K, bits)
    if tables.dim() != 2 or tables.shape[1] != 2 ** bits or u.shape[0] % tables.shape[0]:
        raise ValueError(f"tables must be [groups, 2^bits = {2 ** bits}] with groups dividing {u.shape[0]}, "
                         f"got shape {tuple(tables.shape)}")
    rows_per_table = u.shape[0] // tables.shape[0]
    table_of_row = torch.arange(u.shape[0], device=u.device) // rows_per_table
    return tables[table_of_row[:, None], u]


def vlut_linear(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
    """lut_linear with the codes on bit-plane rows: x @ W^T + b, W = the fields' table values."""
    if x.dtype != torch.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    y = x @ _vlut_weights(w_packed, x.shape[-1], bits, tables).T
    return y + bias if bias is not None else y


def vlut_conv2d(x: torch.Tensor, w_packed: torch.Tensor, bits: int, tables: torch.Tensor,
                bias: Optional[torch.Tensor], c0: int, channels: int, kernel_size: List[int], stride: List[int],
                padding: List[int], dilation: List[int]) -> torch.Tensor:
    """vlut_linear's weights as a convolution of input channels [c0, c0 + channels) of x
    [N, C, H, W]: F.conv2d with the decoded weights [O, channels, kh, kw] (equal to the
    kernel up to float summation order)."""
    if x.dtype != torch.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    if x.dim() != 4 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty [N, C, H, W] tensor, got shape {tuple(x.shape)}")
    if not (0 <= c0 and channels > 0 and c0 + channels <= x.shape[1]):
        raise ValueError(f"input channels [{c0}, {c0 + channels}) do not lie in x's {x.shape[1]}")
    kh, kw = kernel_size
    W = _vlut_weights(w_packed, channels * kh * kw, bits, tables)
    return F.conv2d(x[:, c0:c0 + channels], W.reshape(-1, channels, kh, kw), bias, list(stride), list(padding),
                    list(dilation))
