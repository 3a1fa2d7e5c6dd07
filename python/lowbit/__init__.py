"""lowbit: low-bit weight quantization for PyTorch with real packed C++ kernels.

    import lowbit as lb
    qp = lb.calibrate(w, scheme="symmetric", bits=4, granularity="channel")
    w_q = lb.fake_quantize(w, qp)            # values on the 4-bit grid
    packed = lb.PackedTensor.from_tensor(w, qp)
    packed.nbytes                            # what it really costs
"""
from . import ops, reference
from .packed import PackedTensor
from .quant import (GRANULARITIES, QParams, calibrate, codebook, dequantize, fake_quantize,
                    num_groups, qstep, quantize, ste_quantize)
from .threads import get_num_threads, kernel_isa, set_kernel_isa, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "QParams", "calibrate", "codebook", "qstep", "quantize", "dequantize", "fake_quantize",
    "ste_quantize", "num_groups", "GRANULARITIES", "PackedTensor", "ops", "reference",
    "get_num_threads", "set_num_threads", "kernel_isa", "set_kernel_isa", "__version__",
]
