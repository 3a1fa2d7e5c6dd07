"""Packed low-bit inference: bit-shift kernels for power-of-two weights and look-up-table
kernels for any codebook (see modules.py and convert.py)."""
from .convert import MODES, convert, model_size
from .fuse import FusedModel, fuse, fuse_or_keep
from .modules import LUTConv2d, LUTLinear, ShiftConv2d, ShiftLinear, lookup_tables

__all__ = ["convert", "fuse", "fuse_or_keep", "FusedModel", "model_size", "MODES", "ShiftLinear", "ShiftConv2d", "LUTLinear", "LUTConv2d",
           "lookup_tables"]
