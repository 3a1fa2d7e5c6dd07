"""Model size from real bytes: the float32 file, the packed file, and both compressed
with gzip and LZMA (paper 004, Tables 1 and 5)."""
import gzip
import lzma
from dataclasses import dataclass
from typing import Optional

from torch import nn

from ..serialize import to_bytes


@dataclass(frozen=True)
class ModelSizes:
    """Bytes of one model stored in lowbit's file format (`lowbit.save_quantized`).

    float32: every tensor raw (what the float model costs); packed: quantized weights
    packed at their bit width plus their parameters, the rest raw; packed_gzip /
    packed_lzma: that packed file compressed. values_gzip / values_lzma: the quantized
    values stored back as float32 and compressed, which is how paper 004 measures its
    Table 5 (it keeps quantized models in floating point).
    """
    float32: int
    packed: int
    packed_gzip: int
    packed_lzma: int
    values_gzip: int
    values_lzma: int


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def lzma_size(data: bytes) -> int:
    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def model_sizes(model: nn.Module, float_model: Optional[nn.Module] = None) -> ModelSizes:
    """Sizes of `model` (quantized by ptq / freeze). float32 is the size of `float_model`
    if given, else of `model` with every tensor stored raw (the same count of values)."""
    packed = to_bytes(model)
    values = to_bytes(model, pack=False)
    float32 = len(values) if float_model is None else len(to_bytes(float_model, pack=False))
    return ModelSizes(float32=float32, packed=len(packed), packed_gzip=gzip_size(packed),
                      packed_lzma=lzma_size(packed), values_gzip=gzip_size(values),
                      values_lzma=lzma_size(values))
