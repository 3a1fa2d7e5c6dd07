// The lowbit operator library: schemas only. CPU kernels live in the *_ops.cpp files;
// the pure-PyTorch references are registered from Python as the fallback for every other
// device (python/lowbit/ops.py, which discovers the ops from these schemas).
#include <torch/library.h>

#include <string>

namespace {

struct OpDef {
  const char* schema;
  bool own_autograd;  // has an Autograd kernel of its own (ste_ops.cpp)
};

// The one list of operators in C++; everything else is derived from it.
constexpr OpDef kOps[] = {
    // scheme: 'symmetric' (p0 = step [G]), 'asymmetric' (p0 = scale [G], p1 = zero_point
    // int32 [G]), 'pow2' (p0 = max_level [G], a power of two), 'codebook' (p0 = sorted
    // values [G, K]); see cpp/include/lowbit/schemes.h. G groups split w along dim 0:
    // 1 = per tensor, w.size(0) = per channel.
    {"quantize(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor", false},
    {"dequantize(Tensor codes, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor", false},
    {"fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor", false},
    {"fake_quant_mask(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None)"
     " -> (Tensor, Tensor)", false},
    {"ste_fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None,"
     " bool clip_grad=False) -> Tensor", true},
    // method: one of the scheme's step rules (schemes.h).
    {"qparams(Tensor w, str scheme, int bits, int groups, str method) -> Tensor[]", false},
    {"pack(Tensor codes, int bits) -> Tensor", false},
    {"unpack(Tensor packed, int bits, int count, bool is_signed) -> Tensor", false},
    // Packed inference (inference_ops.cpp): weights as [O, ceil(K/8) * bits] row-packed codes.
    {"pack_rows(Tensor codes, int bits) -> Tensor", false},
    {"quantize_activations(Tensor x, int act_bits, float? x_scale=None) -> (Tensor, Tensor)", false},
    {"shift_matmul_int(Tensor x_codes, Tensor w_packed, int bits, str method='auto') -> Tensor", false},
    {"shift_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor? bias,"
     " int act_bits=8, float? x_scale=None, str method='auto') -> Tensor", false},
    {"lut_linear(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias) -> Tensor", false},
    // Uniform codes with int8 activations: weights as bit-plane rows (lowbit/int_rows.h),
    // zero_point int32 [O] the field that stands for 0, w_scale float64 [O].
    {"pack_int_rows(Tensor codes, int bits) -> Tensor", false},
    {"int_matmul_int(Tensor x_codes, Tensor w_packed, int bits, Tensor zero_point) -> Tensor", false},
    {"int_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor zero_point, Tensor? bias,"
     " int act_bits=8) -> Tensor", false},
    // Power-of-two codes on bit-plane rows (the int kernels' layout), int8 activations with
    // one step per call as shift_linear; codebook codes on bit-plane rows, float activations.
    {"pow2_matmul_int(Tensor x_codes, Tensor w_packed, int bits) -> Tensor", false},
    {"pow2_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor? bias,"
     " int act_bits=8, float? x_scale=None) -> Tensor", false},
    {"vlut_linear(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias) -> Tensor", false},
};

}  // namespace

TORCH_LIBRARY(lowbit, m) {
  for (const OpDef& op : kOps) m.def(op.schema);
}

// torch 1.13 has no AutogradMeta fallthrough for custom ops; without one, shape-only
// calls on meta tensors fail before reaching the reference implementation.
TORCH_LIBRARY_IMPL(lowbit, AutogradMeta, m) {
  for (const OpDef& op : kOps) {
    if (op.own_autograd) continue;
    const std::string schema(op.schema);
    m.impl(schema.substr(0, schema.find('(')).c_str(), torch::CppFunction::makeFallthrough());
  }
}
