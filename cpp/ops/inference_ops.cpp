// CPU adapters for packed inference: row packing, the power-of-two shift kernels with
// integer activations, the codebook look-up-table kernel with float activations, and the
// integer kernels for uniform codes (int8 activations per row, bit-plane weight rows).
#include <ATen/ATen.h>
#include <c10/util/Optional.h>
#include <torch/library.h>

#include "lowbit/common.h"
#include "lowbit/conv_shape.h"
#include "lowbit/int_rows.h"
#include "lowbit/kernels.h"
#include "lowbit/packed_rows.h"
#include "ops/check.h"
#include "ops/codebook_taps.h"
#include "ops/define.h"

namespace lowbit {
// [O x K] codes -> O bit-plane rows of int_row_bytes(K, bits) bytes (int_pack.cpp); code c
// is stored as the field (c + offset) mod 256. Returns false if a field does not fit in
// `bits` bits.
LOWBIT_KERNEL(bool, pack_int_rows,
              (const uint8_t* codes, int64_t O, int64_t K, int bits, uint8_t offset, uint8_t* out),
              (codes, O, K, bits, offset, out))
}  // namespace lowbit

namespace lowbit::ops {
namespace {
namespace K = lowbit::kernels;

// [O, K] codes -> [O, ceil(K/8) * bits] bytes, each row packed on its own.
at::Tensor pack_rows_cpu(const at::Tensor& codes_in, int64_t bits) {
  check_bits(bits, 1, 8, "pack_rows");
  const auto dt = codes_in.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kByte || dt == at::kChar, "codes must be uint8 or int8, got ", dt);
  TORCH_CHECK_VALUE(codes_in.dim() == 2 && codes_in.numel() > 0, "codes must be a non-empty [rows, K] matrix, got shape ",
                    codes_in.sizes());
  const at::Tensor codes = codes_in.contiguous();
  const int64_t O = codes.size(0), Kd = codes.size(1), rb = packed_row_bytes(Kd, int(bits));
  const uint8_t offset = dt == at::kChar ? uint8_t(1u << (bits - 1)) : 0;
  at::Tensor out = at::zeros({O, rb}, codes.options().dtype(at::kByte));
  const uint8_t* c = static_cast<const uint8_t*>(codes.data_ptr());
  uint8_t* o = out.data_ptr<uint8_t>();
  bool ok = true;
  for (int64_t r = 0; r < O && ok; ++r) ok = K::pack_bits(c + r * Kd, Kd, int(bits), offset, o + r * rb);
  TORCH_CHECK_VALUE(ok, "codes do not fit in ", bits, " bits");
  return out;
}

void check_packed(const at::Tensor& w, int64_t Kd, int64_t bits) {
  TORCH_CHECK_TYPE(w.scalar_type() == at::kByte, "packed weights must be uint8, got ", w.scalar_type());
  TORCH_CHECK_VALUE(w.dim() == 2 && w.size(0) > 0, "packed weights must be [out_features, row_bytes], got shape ",
                    w.sizes());
  TORCH_CHECK_VALUE(w.size(1) == packed_row_bytes(Kd, int(bits)), "packed rows hold ", w.size(1),
                    " bytes but ", Kd, " input features at ", bits, " bits need ",
                    packed_row_bytes(Kd, int(bits)), ": wrong input size or bits");
}

// x [..., K] float -> [N, K] contiguous
at::Tensor as_matrix(const at::Tensor& x, const char* name) {
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat, name, " must be float32, got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.numel() > 0, name, " must be non-empty with at least one dimension, got shape ",
                    x.sizes());
  return x.reshape({-1, x.size(-1)}).contiguous();
}

std::vector<int64_t> out_shape(const at::Tensor& x, int64_t O) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s.back() = O;
  return s;
}

// The bias, checked against O outputs: contiguous float32 [O], or undefined when there is none.
at::Tensor checked_bias(const c10::optional<at::Tensor>& bias, int64_t O) {
  if (!bias) return at::Tensor();
  TORCH_CHECK_TYPE(bias->scalar_type() == at::kFloat, "bias must be float32, got ", bias->scalar_type());
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == O, "bias must have shape [", O, "], got ", bias->sizes());
  return bias->contiguous();
}

const float* data_or_null(const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// Per-group value tables of a float-activation kernel: float32 [groups, 2^bits], groups dividing O.
void check_tables(const at::Tensor& tables, int64_t O, int64_t bits) {
  TORCH_CHECK_TYPE(tables.scalar_type() == at::kFloat, "tables must be float32, got ", tables.scalar_type());
  TORCH_CHECK_VALUE(tables.dim() == 2 && tables.size(1) == (int64_t(1) << bits) && tables.size(0) >= 1 &&
                        O % tables.size(0) == 0,
                    "tables must be [groups, 2^bits = ", int64_t(1) << bits, "] with groups dividing ", O,
                    ", got shape ", tables.sizes());
}

// Activations -> symmetric integer codes (|code| <= 2^(act_bits-1) - 1) and their step:
// the dynamic step is max|x| / (2^(act_bits-1) - 1); a static one saturates larger values.
std::tuple<at::Tensor, at::Tensor> quantize_activations_cpu(const at::Tensor& x_in, int64_t act_bits,
                                                            c10::optional<double> scale) {
  check_bits(act_bits, 2, 8, "activations");
  const at::Tensor x = as_matrix(x_in, "x");
  at::Tensor step = at::empty({1}, x.options());
  float* s = step.data_ptr<float>();
  if (scale) {
    TORCH_CHECK_VALUE(*scale > 0 && std::isfinite(*scale), "x_scale must be a positive finite number, got ", *scale);
    *s = float(*scale);
  } else {
    TORCH_CHECK_VALUE(K::qstep_maxabs<float>(x.data_ptr<float>(), 1, x.numel(), int(act_bits), s),
                      "x contains NaN or Inf");
  }
  at::Tensor codes = at::empty(x.sizes(), x.options().dtype(at::kChar));
  TORCH_CHECK_VALUE(K::sym_quantize<float>(x.data_ptr<float>(), 1, x.numel(), s, int(act_bits),
                                           codes.data_ptr<int8_t>(), nullptr, nullptr),
                    "x contains NaN or Inf");
  return {codes.reshape(x_in.sizes()), step};
}

void check_w_scale(const at::Tensor& w_scale, int64_t O) {
  TORCH_CHECK_TYPE(w_scale.scalar_type() == at::kDouble, "w_scale must be float64, got ", w_scale.scalar_type());
  TORCH_CHECK_VALUE(w_scale.dim() == 1 && w_scale.size(0) == O, "w_scale must have shape [", O, "], got ",
                    w_scale.sizes());
}

// Exact integer accumulators of int8 activation codes times power-of-two weights.
at::Tensor shift_matmul_int_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits,
                                const std::string& method) {
  check_bits(bits, 2, 8, "power-of-two weights");
  TORCH_CHECK_TYPE(x_in.scalar_type() == at::kChar, "x codes must be int8, got ", x_in.scalar_type());
  TORCH_CHECK_VALUE(x_in.dim() >= 1 && x_in.numel() > 0, "x codes must be non-empty, got shape ", x_in.sizes());
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)}).contiguous(), w = w_in.contiguous();
  check_packed(w, x.size(1), bits);
  const int64_t O = w.size(0);
  at::Tensor acc = at::empty({x.size(0), O}, x.options().dtype(at::kLong));
  std::vector<double> ones(size_t(O), 1.0);
  K::shift_gemm(x.data_ptr<int8_t>(), x.size(0), x.size(1), w.data_ptr<uint8_t>(), O, int(bits), 1.0f,
                ones.data(), nullptr, shift_method_id(method, bits), acc.data_ptr<int64_t>(), nullptr, O, 1);
  return acc.reshape(out_shape(x_in, O));
}

at::Tensor shift_linear_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits,
                            const at::Tensor& w_scale_in, const c10::optional<at::Tensor>& bias_in,
                            int64_t act_bits, c10::optional<double> x_scale, const std::string& method) {
  check_bits(bits, 2, 8, "power-of-two weights");
  const at::Tensor w = w_in.contiguous(), w_scale = w_scale_in.contiguous();
  const int64_t O = w.size(0);
  const int m = shift_method_id(method, bits);
  auto [codes, step] = quantize_activations_cpu(x_in, act_bits, x_scale);
  const at::Tensor xq = codes.reshape({-1, x_in.size(-1)});
  check_packed(w, xq.size(1), bits);
  check_w_scale(w_scale, O);
  const at::Tensor bias = checked_bias(bias_in, O);
  at::Tensor out = at::empty({xq.size(0), O}, x_in.options());
  K::shift_gemm(xq.data_ptr<int8_t>(), xq.size(0), xq.size(1), w.data_ptr<uint8_t>(), O, int(bits),
                step.item<float>(), w_scale.data_ptr<double>(), data_or_null(bias),
                m, nullptr, out.data_ptr<float>(), O, 1);
  return out.reshape(out_shape(x_in, O));
}

at::Tensor lut_linear_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits,
                          const at::Tensor& tables_in, const c10::optional<at::Tensor>& bias_in) {
  check_bits(bits, 1, 8, "codebook weights");
  const at::Tensor x = as_matrix(x_in, "x"), w = w_in.contiguous(), tables = tables_in.contiguous();
  check_packed(w, x.size(1), bits);
  const int64_t O = w.size(0);
  check_tables(tables, O, bits);
  const at::Tensor bias = checked_bias(bias_in, O);
  at::Tensor out = at::empty({x.size(0), O}, x.options());
  K::lut_gemm(x.data_ptr<float>(), x.size(0), x.size(1), w.data_ptr<uint8_t>(), O, int(bits),
              tables.data_ptr<float>(), tables.size(0), data_or_null(bias),
              out.data_ptr<float>(), O, 1);
  return out.reshape(out_shape(x_in, O));
}

// [O, K] codes -> [O, int_row_bytes(K, bits)] bit-plane rows.
at::Tensor pack_int_rows_cpu(const at::Tensor& codes_in, int64_t bits) {
  check_bits(bits, 2, 8, "pack_int_rows");
  const auto dt = codes_in.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kByte || dt == at::kChar, "codes must be uint8 or int8, got ", dt);
  TORCH_CHECK_VALUE(codes_in.dim() == 2 && codes_in.numel() > 0, "codes must be a non-empty [rows, K] matrix, got shape ",
                    codes_in.sizes());
  const at::Tensor codes = codes_in.contiguous();
  const int64_t O = codes.size(0), Kd = codes.size(1);
  const uint8_t offset = dt == at::kChar ? uint8_t(1u << (bits - 1)) : 0;
  at::Tensor out = at::empty({O, int_row_bytes(Kd, int(bits))}, codes.options().dtype(at::kByte));
  TORCH_CHECK_VALUE(K::pack_int_rows(static_cast<const uint8_t*>(codes.data_ptr()), O, Kd, int(bits), offset,
                                     out.data_ptr<uint8_t>()),
                    "codes do not fit in ", bits, " bits");
  return out;
}

void check_int_packed(const at::Tensor& w, int64_t Kd, int64_t bits) {
  TORCH_CHECK_VALUE(Kd <= kIntMaxK, "int kernels take at most ", kIntMaxK, " input features, got ", Kd);
  TORCH_CHECK_TYPE(w.scalar_type() == at::kByte, "packed weights must be uint8, got ", w.scalar_type());
  TORCH_CHECK_VALUE(w.dim() == 2 && w.size(0) > 0, "packed weights must be [out_features, row_bytes], got shape ",
                    w.sizes());
  TORCH_CHECK_VALUE(w.size(1) == int_row_bytes(Kd, int(bits)), "bit-plane rows hold ", w.size(1), " bytes but ", Kd,
                    " input features at ", bits, " bits need ", int_row_bytes(Kd, int(bits)),
                    ": wrong input size or bits");
}

void check_zero_point(const at::Tensor& z, int64_t O, int64_t bits) {
  TORCH_CHECK_TYPE(z.scalar_type() == at::kInt, "zero_point must be int32, got ", z.scalar_type());
  TORCH_CHECK_VALUE(z.dim() == 1 && z.size(0) == O, "zero_point must have shape [", O, "], got ", z.sizes());
  const int32_t* p = z.data_ptr<int32_t>();
  for (int64_t i = 0; i < O; ++i)
    TORCH_CHECK_VALUE(p[i] >= 0 && p[i] < (1 << bits), "zero_point must hold fields in [0, ", (1 << bits) - 1,
                      "] for ", bits, " bits, got ", p[i]);
}

// Exact sums x_codes @ (u - zero_point)^T of int8 codes and bit-plane rows.
at::Tensor int_matmul_int_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits,
                              const at::Tensor& zero_point_in) {
  check_bits(bits, 2, 8, "uniform weights");
  TORCH_CHECK_TYPE(x_in.scalar_type() == at::kChar, "x codes must be int8, got ", x_in.scalar_type());
  TORCH_CHECK_VALUE(x_in.dim() >= 1 && x_in.numel() > 0, "x codes must be non-empty, got shape ", x_in.sizes());
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)}).contiguous(), w = w_in.contiguous();
  check_int_packed(w, x.size(1), bits);
  const int64_t O = w.size(0);
  const at::Tensor z = zero_point_in.contiguous();
  check_zero_point(z, O, bits);
  at::Tensor acc = at::empty({x.size(0), O}, x.options().dtype(at::kLong));
  K::int_gemm(x.data_ptr<int8_t>(), x.size(0), x.size(1), w.data_ptr<uint8_t>(), O, int(bits), z.data_ptr<int32_t>(),
              nullptr, nullptr, nullptr, acc.data_ptr<int64_t>(), nullptr, O, 1);
  return acc.reshape(out_shape(x_in, O));
}

at::Tensor int_linear_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits, const at::Tensor& w_scale_in,
                          const at::Tensor& zero_point_in, const c10::optional<at::Tensor>& bias_in,
                          int64_t act_bits) {
  check_bits(bits, 2, 8, "uniform weights");
  check_bits(act_bits, 2, 8, "activations");
  const at::Tensor x = as_matrix(x_in, "x"), w = w_in.contiguous(), w_scale = w_scale_in.contiguous();
  const at::Tensor z = zero_point_in.contiguous();
  const int64_t N = x.size(0), Kd = x.size(1);
  check_int_packed(w, Kd, bits);
  const int64_t O = w.size(0);
  check_w_scale(w_scale, O);
  check_zero_point(z, O, bits);
  const at::Tensor bias = checked_bias(bias_in, O);
  // One dynamic step per row, max|x| / (2^(act_bits-1) - 1), as qparams' 'maxabs' rule.
  at::Tensor step = at::empty({N}, x.options());
  at::Tensor codes = at::empty({N, Kd}, x.options().dtype(at::kChar));
  TORCH_CHECK_VALUE(K::quantize_rows(x.data_ptr<float>(), N, Kd, int(act_bits), codes.data_ptr<int8_t>(),
                                     step.data_ptr<float>()),
                    "x contains NaN or Inf");
  at::Tensor out = at::empty({N, O}, x.options());
  K::int_gemm(codes.data_ptr<int8_t>(), N, Kd, w.data_ptr<uint8_t>(), O, int(bits), z.data_ptr<int32_t>(),
              step.data_ptr<float>(), w_scale.data_ptr<double>(), data_or_null(bias),
              nullptr, out.data_ptr<float>(), O, 1);
  return out.reshape(out_shape(x_in, O));
}

// Power-of-two codes on bit-plane rows: exact sums x_codes @ W^T (W as shift_matmul_int).
at::Tensor pow2_matmul_int_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits) {
  check_bits(bits, 2, 8, "power-of-two weights");
  TORCH_CHECK_TYPE(x_in.scalar_type() == at::kChar, "x codes must be int8, got ", x_in.scalar_type());
  TORCH_CHECK_VALUE(x_in.dim() >= 1 && x_in.numel() > 0, "x codes must be non-empty, got shape ", x_in.sizes());
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)}).contiguous(), w = w_in.contiguous();
  check_int_packed(w, x.size(1), bits);
  const int64_t O = w.size(0);
  at::Tensor acc = at::empty({x.size(0), O}, x.options().dtype(at::kLong));
  K::pow2_gemm(x.data_ptr<int8_t>(), x.size(0), x.size(1), w.data_ptr<uint8_t>(), O, int(bits), 1.0f, nullptr,
               nullptr, acc.data_ptr<int64_t>(), nullptr, O, 1);
  return acc.reshape(out_shape(x_in, O));
}

// As shift_linear (one activation step for the whole input), weights on bit-plane rows.
at::Tensor pow2_linear_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits, const at::Tensor& w_scale_in,
                           const c10::optional<at::Tensor>& bias_in, int64_t act_bits, c10::optional<double> x_scale) {
  check_bits(bits, 2, 8, "power-of-two weights");
  const at::Tensor w = w_in.contiguous(), w_scale = w_scale_in.contiguous();
  auto [codes, step] = quantize_activations_cpu(x_in, act_bits, x_scale);
  const at::Tensor xq = codes.reshape({-1, x_in.size(-1)});
  check_int_packed(w, xq.size(1), bits);
  const int64_t O = w.size(0);
  check_w_scale(w_scale, O);
  const at::Tensor bias = checked_bias(bias_in, O);
  at::Tensor out = at::empty({xq.size(0), O}, x_in.options());
  K::pow2_gemm(xq.data_ptr<int8_t>(), xq.size(0), xq.size(1), w.data_ptr<uint8_t>(), O, int(bits), step.item<float>(),
               w_scale.data_ptr<double>(), data_or_null(bias), nullptr,
               out.data_ptr<float>(), O, 1);
  return out.reshape(out_shape(x_in, O));
}

// Codebook codes on bit-plane rows with float activations (in-register table look-ups).
at::Tensor vlut_linear_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits, const at::Tensor& tables_in,
                           const c10::optional<at::Tensor>& bias_in) {
  check_bits(bits, 2, 8, "codebook weights (vlut)");
  const at::Tensor x = as_matrix(x_in, "x"), w = w_in.contiguous(), tables = tables_in.contiguous();
  check_int_packed(w, x.size(1), bits);
  const int64_t O = w.size(0);
  check_tables(tables, O, bits);
  const at::Tensor bias = checked_bias(bias_in, O);
  at::Tensor out = at::empty({x.size(0), O}, x.options());
  K::vlut_gemm(x.data_ptr<float>(), x.size(0), x.size(1), w.data_ptr<uint8_t>(), O, int(bits),
               tables.data_ptr<float>(), tables.size(0), data_or_null(bias),
               out.data_ptr<float>(), O, 1);
  return out.reshape(out_shape(x_in, O));
}

// A codebook convolution of input channels [c0, c0 + channels) of x [N, C, H, W] with
// float activations, on the image itself (direct_conv2d): the taps in unfold order, summed
// in order per output position. At most kDirectMaxTaps taps (channels x kernel).
at::Tensor vlut_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t bits, const at::Tensor& tables_in,
                           const c10::optional<at::Tensor>& bias_in, int64_t c0, int64_t channels,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation) {
  check_bits(bits, 2, 8, "codebook weights (vlut)");
  TORCH_CHECK_TYPE(x_in.scalar_type() == at::kFloat, "x must be float32, got ", x_in.scalar_type());
  TORCH_CHECK_VALUE(x_in.dim() == 4 && x_in.numel() > 0, "x must be a non-empty [N, C, H, W] tensor, got shape ",
                    x_in.sizes());
  for (auto [v, name, least] : {std::tuple{kernel_size, "kernel_size", 1}, std::tuple{stride, "stride", 1},
                                std::tuple{padding, "padding", 0}, std::tuple{dilation, "dilation", 1}})
    TORCH_CHECK_VALUE(v.size() == 2 && v[0] >= least && v[1] >= least, name, " must be two integers >= ", least,
                      ", got ", v);
  TORCH_CHECK_VALUE(c0 >= 0 && channels > 0 && c0 + channels <= x_in.size(1), "input channels [", c0, ", ",
                    c0 + channels, ") do not lie in x's ", x_in.size(1));
  const int64_t taps = channels * kernel_size[0] * kernel_size[1];
  TORCH_CHECK_VALUE(taps <= kDirectMaxTaps, "vlut_conv2d takes at most ", kDirectMaxTaps, " taps per output, got ",
                    taps, "; run vlut_linear on im2col rows instead");
  const at::Tensor x = x_in.contiguous(), w = w_in.contiguous(), tables = tables_in.contiguous();
  check_int_packed(w, taps, bits);
  const int64_t O = w.size(0);
  check_tables(tables, O, bits);
  const at::Tensor bias = checked_bias(bias_in, O);
  Conv2dShape s{x.size(1), x.size(2), x.size(3), kernel_size[0], kernel_size[1], stride[0], stride[1],
                padding[0], padding[1], dilation[0], dilation[1], 0, 0};
  const bool fits = s.fit();  // sets Ho, Wo
  TORCH_CHECK_VALUE(fits, "a ", s.kh, "x", s.kw, " window does not fit a ", s.H, "x", s.W, " input");
  const std::vector<float> weights = codebook_taps(w.data_ptr<uint8_t>(), O, taps, int(bits), tables.data_ptr<float>(),
                                                   tables.size(0));
  const int64_t B = x.size(0), image = s.C * s.H * s.W, N = s.Ho * s.Wo;
  at::Tensor out = at::empty({B, O, s.Ho, s.Wo}, x.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int nt = int(std::min<int64_t>(threads_for(B * N * O * taps / 32), B));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    K::direct_conv2d<float>(xp + b * image, s, c0, channels, weights.data(), O, 0, 1.0f, nullptr, data_or_null(bias),
                            op + b * O * N);
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  // Row-packed weights, [O, ceil(K/8) * bits] bytes (lowbit/packed_rows.h).
  define(m, "pack_rows(Tensor codes, int bits) -> Tensor", pack_rows_cpu);
  define(m, "quantize_activations(Tensor x, int act_bits, float? x_scale=None) -> (Tensor, Tensor)",
         quantize_activations_cpu);
  define(m, "shift_matmul_int(Tensor x_codes, Tensor w_packed, int bits, str method='auto') -> Tensor",
         shift_matmul_int_cpu);
  define(m,
         "shift_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor? bias,"
         " int act_bits=8, float? x_scale=None, str method='auto') -> Tensor",
         shift_linear_cpu);
  define(m, "lut_linear(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias) -> Tensor",
         lut_linear_cpu);
  // Uniform codes with int8 activations: weights as bit-plane rows (lowbit/int_rows.h),
  // zero_point int32 [O] the field that stands for 0, w_scale float64 [O].
  define(m, "pack_int_rows(Tensor codes, int bits) -> Tensor", pack_int_rows_cpu);
  define(m, "int_matmul_int(Tensor x_codes, Tensor w_packed, int bits, Tensor zero_point) -> Tensor",
         int_matmul_int_cpu);
  define(m,
         "int_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor zero_point, Tensor? bias,"
         " int act_bits=8) -> Tensor",
         int_linear_cpu);
  // Power-of-two codes on bit-plane rows (the int kernels' layout), int8 activations with
  // one step per call as shift_linear; codebook codes on bit-plane rows, float activations.
  define(m, "pow2_matmul_int(Tensor x_codes, Tensor w_packed, int bits) -> Tensor", pow2_matmul_int_cpu);
  define(m,
         "pow2_linear(Tensor x, Tensor w_packed, int bits, Tensor w_scale, Tensor? bias,"
         " int act_bits=8, float? x_scale=None) -> Tensor",
         pow2_linear_cpu);
  define(m, "vlut_linear(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias) -> Tensor",
         vlut_linear_cpu);
  define(m, "vlut_conv2d(Tensor x, Tensor w_packed, int bits, Tensor tables, Tensor? bias, int c0, int channels, "
            "int[] kernel_size, int[] stride, int[] padding, int[] dilation) -> Tensor",
         vlut_conv2d_cpu);
}

}  // namespace lowbit::ops
