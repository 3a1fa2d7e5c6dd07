"""Pure-PyTorch references of every lowbit kernel, with the same signatures as the
torch.ops.lowbit operators. They define the expected results in the tests and are
registered as the operators' implementation on every device but CPU (CUDA, meta...)."""
from .inference import lut_linear, pack_rows, quantize_activations, shift_linear, shift_matmul_int
from .inference import pow2_linear, pow2_matmul_int, vlut_conv2d, vlut_linear
from .int_inference import int_linear, int_matmul_int, pack_int_rows
from .pack import pack, unpack
from .qparams import qparams
from .quantize import dequantize, fake_quant, fake_quant_mask, quantize, ste_fake_quant
from . import vbq

__all__ = ["quantize", "dequantize", "fake_quant", "fake_quant_mask", "ste_fake_quant",
           "qparams", "pack", "unpack", "pack_rows", "quantize_activations", "shift_matmul_int",
           "shift_linear", "lut_linear", "pack_int_rows", "int_matmul_int", "int_linear", "pow2_matmul_int", "pow2_linear", "vlut_linear",
           "vlut_conv2d", "vbq"]
