"""Packed low-bit inference: integer kernels for uniform weights, bit-shift kernels for
power-of-two weights and look-up-table kernels for any codebook (see modules.py,
int_modules.py, embedding.py, attention.py and convert.py)."""
from .attention import PackedMultiheadAttention
from .convert import MODES, convert, model_size
from .embedding import PackedEmbedding, PackedEmbeddingBag
from .fuse import FusedModel, fuse, fuse_or_keep
from .int_modules import IntConv1d, IntConv2d, IntLinear
from .modules import (LUTConv1d, LUTConv2d, LUTLinear, ShiftConv1d, ShiftConv2d, ShiftLinear,
                      lookup_tables)
from .modules import VLUTConv1d, VLUTConv2d, VLUTLinear

__all__ = ["convert", "fuse", "fuse_or_keep", "FusedModel", "model_size", "MODES", "ShiftLinear", "ShiftConv2d",
           "ShiftConv1d", "IntLinear", "IntConv2d", "IntConv1d", "LUTLinear", "LUTConv2d", "LUTConv1d", "PackedEmbedding", "PackedEmbeddingBag",
           "PackedMultiheadAttention", "lookup_tables", "VLUTLinear", "VLUTConv2d", "VLUTConv1d"]
