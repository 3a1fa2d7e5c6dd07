"""lowbit: low-bit weight quantization for PyTorch with real packed C++ kernels.

    import lowbit as lb
    qp = lb.calibrate(w, scheme="symmetric", bits=4, granularity="channel")
    w_q = lb.fake_quantize(w, qp)            # values on the 4-bit grid
    packed = lb.PackedTensor.from_tensor(w, qp)
    packed.nbytes                            # what it really costs
"""
from . import data, inference, models, ops, reference, schemes
from . import capacity, vbq
from .config import LayerConfig, QuantConfig
from .coverage import Coverage, coverage
from .layers import KINDS as LAYER_KINDS
from .plan import plan
from .hooks import (attach, detach, freeze, quantized_weights, set_bits, step_history, targets,
                    update_steps)
from .packed import PackedTensor
from .ptq import ptq
from .qrecord import recorded_qparams
from .quant import (GRANULARITIES, QParams, calibrate, codebook, dequantize, fake_quantize,
                    num_groups, qstep, quantize, ste_quantize)
from .retrain import retrain, retrained_copy
from .serialize import CorruptFileError, load_quantized, save_quantized
from .schedules import Adaptive, AdaptiveGradual, Conventional, Direct, Gradual, Schedule, search_steps
from .threads import get_num_threads, kernel_isa, set_kernel_isa, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "QParams", "calibrate", "codebook", "qstep", "quantize", "dequantize", "fake_quantize",
    "ste_quantize", "num_groups", "GRANULARITIES", "PackedTensor", "ops", "reference", "data", "models",
    "inference",
    "get_num_threads", "set_num_threads", "kernel_isa", "set_kernel_isa", "__version__",
    "QuantConfig", "LayerConfig", "attach", "detach", "freeze", "update_steps", "set_bits",
    "step_history", "quantized_weights", "recorded_qparams", "targets", "retrain", "Schedule", "Direct",
    "Conventional", "Adaptive", "Gradual", "AdaptiveGradual", "search_steps",
    "ptq", "retrained_copy", "save_quantized", "load_quantized", "CorruptFileError", "schemes", "coverage", "Coverage",
    "plan", "LAYER_KINDS",
]
__all__ += ["vbq", "capacity"]

# The study and its report use most of the above: imported last.
from . import report, study  # noqa: E402

__all__ += ["study", "report"]
