"""Pure-PyTorch references of every lowbit kernel, with the same signatures as the
torch.ops.lowbit operators. They define the expected results in the tests and are
registered as the operators' implementation on every device but CPU (CUDA, meta...)."""
from .pack import pack, unpack
from .qparams import qparams
from .quantize import dequantize, fake_quant, fake_quant_mask, quantize, ste_fake_quant

__all__ = ["quantize", "dequantize", "fake_quant", "fake_quant_mask", "ste_fake_quant",
           "qparams", "pack", "unpack"]
