"""Analysis of post-training quantization (paper 004). Every function returns plain data
(dataclasses and lists) and draws a PNG when given png=path (matplotlib, Agg backend)."""
from .bit_efficiency import (LayerEfficiency, bit_efficiency, entropy_bits, plot_bit_efficiency,
                             tensor_efficiency)
from .distributions import ChannelStats, Histogram, channel_quartiles, layer_tensor, weight_histograms
from .grouping import (GroupingResult, Merge, class_grouping, confusion_matrix, confusion_similarity,
                       group_classes, grouped_accuracy, linkage)
from .pow2_levels import Pow2Levels, Pow2Summary, pow2_bit_levels, tensor_pow2_levels
from .sizes import ModelSizes, gzip_size, lzma_size, model_sizes
from .sweep import SweepRow, accuracy_size_table, knee_bits, plot_sweep

__all__ = [
    "ModelSizes", "model_sizes", "gzip_size", "lzma_size",
    "SweepRow", "accuracy_size_table", "knee_bits", "plot_sweep",
    "LayerEfficiency", "bit_efficiency", "tensor_efficiency", "entropy_bits", "plot_bit_efficiency",
    "ChannelStats", "Histogram", "channel_quartiles", "weight_histograms", "layer_tensor",
    "Pow2Levels", "Pow2Summary", "pow2_bit_levels", "tensor_pow2_levels",
    "Merge", "GroupingResult", "confusion_matrix", "confusion_similarity", "linkage",
    "group_classes", "grouped_accuracy", "class_grouping",
]
