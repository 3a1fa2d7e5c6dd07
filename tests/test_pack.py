"""Bit packing: exact round trips, byte-identical to the reference, real sizes."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lowbit import ops
from lowbit import reference as R


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("signed", [False, True])
def test_round_trip_and_reference(bits, signed, isa):
    if signed and bits == 1:
        pytest.skip("1-bit signed codes hold only -1/0: not a scheme we use")
    for n in (1, 7, 8, 9, 63, 64, 1000, 100_003):
        if signed:
            codes = torch.randint(-(2 ** (bits - 1)), 2 ** (bits - 1), (n,), dtype=torch.int8)
        else:
            codes = torch.randint(0, 2 ** bits, (n,), dtype=torch.int16).to(torch.uint8)
        packed = ops.pack(codes, bits)
        assert packed.dtype == torch.uint8 and packed.numel() == (n * bits + 7) // 8
        if n <= 1000:
            assert torch.equal(packed, R.pack(codes, bits))
            assert torch.equal(R.unpack(packed, bits, n, signed), codes)
        assert torch.equal(ops.unpack(packed, bits, n, signed), codes)


@given(st.integers(1, 8), st.lists(st.integers(0, 255), min_size=0, max_size=200))
def test_pack_property(bits, values):
    codes = torch.tensor([v % (2 ** bits) for v in values], dtype=torch.uint8)
    packed = ops.pack(codes, bits)
    assert torch.equal(packed, R.pack(codes, bits))
    assert torch.equal(ops.unpack(packed, bits, len(values), False), codes)


def test_layout_is_little_endian_bit_stream():
    codes = torch.tensor([1, 2, 3, 4, 5], dtype=torch.uint8)
    # 3-bit fields 001 010 011 100 101, LSB first: bits 1000 1011 | 0001 1010 ...
    assert ops.pack(codes, 3).tolist() == [0b11010001, 0b01011000]
    assert ops.pack(torch.tensor([1, 15, 3], dtype=torch.uint8), 4).tolist() == [0xF1, 0x03]


def test_non_contiguous_codes():
    codes = torch.randint(0, 16, (20, 6), dtype=torch.int16).to(torch.uint8).t()
    assert torch.equal(ops.pack(codes, 4), ops.pack(codes.contiguous(), 4))
