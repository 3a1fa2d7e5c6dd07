// The lowbit operator library: schemas only. CPU kernels live in the *_ops.cpp files;
// the pure-PyTorch references are registered from Python as the fallback for every other
// device (python/lowbit/ops.py).
#include <torch/library.h>

TORCH_LIBRARY(lowbit, m) {
  // scheme: 'symmetric' (p0 = step [G]), 'asymmetric' (p0 = scale [G], p1 = zero_point
  // int32 [G]), 'pow2' (p0 = max_level [G], a power of two), 'codebook' (p0 = sorted
  // values [G, K]). G groups split w along dim 0: 1 = per tensor, w.size(0) = per channel.
  m.def("quantize(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor");
  m.def("dequantize(Tensor codes, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor");
  m.def("fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor");
  m.def("fake_quant_mask(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None)"
        " -> (Tensor, Tensor)");
  m.def("ste_fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None,"
        " bool clip_grad=False) -> Tensor");
  // method: symmetric 'l2' | 'maxabs' | 'meanstd'; asymmetric 'minmax'; pow2 'maxabs'.
  m.def("qparams(Tensor w, str scheme, int bits, int groups, str method) -> Tensor[]");
  m.def("pack(Tensor codes, int bits) -> Tensor");
  m.def("unpack(Tensor packed, int bits, int count, bool is_signed) -> Tensor");
  // Packed inference (inference_ops.cpp): weights as [O, ceil(K/8) * bits] row-packed codes.
  m.def("pack_rows(Tensor codes, int bits) -> Tensor");
  m.def("quantize_activations(Tensor x, int act_bits, float? x_scale=None) -> (Tensor, Tensor)");
  m.def("shift_matmul_int(Tensor x_codes, Tensor w_packed, int bits, str method='auto') -> Tensor");
  m.def("shift_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor? bias,"
        " int act_bits=8, float? x_scale=None, str method='auto') -> Tensor");
  m.def("lut_linear(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias) -> Tensor");
}

// torch 1.13 has no AutogradMeta fallthrough for custom ops; without one, shape-only
// calls on meta tensors fail before reaching the reference implementation.
TORCH_LIBRARY_IMPL(lowbit, AutogradMeta, m) {
  for (const char* op : {"quantize", "dequantize", "fake_quant", "fake_quant_mask", "qparams",
                         "pack", "unpack", "pack_rows", "quantize_activations", "shift_matmul_int",
                         "shift_linear", "lut_linear"})
    m.impl(op, torch::CppFunction::makeFallthrough());
}
