"""Reference bit packing: value i fills bits [i*bits, (i+1)*bits) of a little-endian
bit stream; signed (int8) codes are stored offset by 2^(bits-1)."""
import torch

from ._checks import check_bits


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    check_bits(bits, 1, 8, "pack")
    if codes.dtype not in (torch.uint8, torch.int8):
        raise TypeError(f"codes must be uint8 (unsigned codes) or int8 (signed codes), got {codes.dtype}")
    n = codes.numel()
    nbytes = (n * bits + 7) // 8
    if codes.is_meta:
        return torch.empty(nbytes, dtype=torch.uint8, device=codes.device)
    v = codes.reshape(-1).to(torch.int64)
    if codes.dtype == torch.int8:
        v = v + 2 ** (bits - 1)
    if bool(((v < 0) | (v >= 2 ** bits)).any()):
        raise ValueError(f"codes do not fit in {bits} bits")
    shifts = torch.arange(bits, device=codes.device)
    stream = ((v[:, None] >> shifts) & 1).reshape(-1)                # bit i*bits + j
    stream = torch.cat([stream, stream.new_zeros(nbytes * 8 - stream.numel())])
    weights = (2 ** torch.arange(8, device=codes.device))
    return (stream.reshape(nbytes, 8) * weights).sum(1).to(torch.uint8)


def unpack(packed: torch.Tensor, bits: int, count: int, is_signed: bool) -> torch.Tensor:
    check_bits(bits, 1, 8, "unpack")
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be uint8, got {packed.dtype}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    need = (count * bits + 7) // 8
    if packed.numel() != need:
        raise ValueError(f"packed holds {packed.numel()} bytes but {count} codes of {bits} bits need {need}")
    if packed.is_meta:
        return torch.empty(count, dtype=torch.int8 if is_signed else torch.uint8, device=packed.device)
    b = packed.reshape(-1).to(torch.int64)
    stream = ((b[:, None] >> torch.arange(8, device=packed.device)) & 1).reshape(-1)
    fields = stream[: count * bits].reshape(count, bits)
    v = (fields * (2 ** torch.arange(bits, device=packed.device))).sum(1)
    if is_signed:
        return (v - 2 ** (bits - 1)).to(torch.int8)
    return v.to(torch.uint8)
