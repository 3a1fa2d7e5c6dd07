// A fused inference chain (torch.classes.lowbit.ChainPlan): the layers of a converted
// model run one after another inside one native call, with no Python and no per-layer
// dispatch in between. Each step does exactly the arithmetic of the module it replaces
// (ShiftLinear/ShiftConv2d/IntLinear/IntConv2d/LUTLinear/LUTConv2d, ReLU, MaxPool2d,
// flatten, and float Linear/Conv2d/BatchNorm2d through the same ATen ops), so a fused
// model's outputs equal the unfused converted model's bit for bit. Shift convolutions
// quantize their whole input once and build integer im2col columns per image; int layers
// quantize each row of float columns with its own step; the kernels write NCHW directly.
#include <ATen/ATen.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <omp.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/common.h"
#include "lowbit/int_rows.h"
#include "lowbit/kernels.h"
#include "lowbit/packed_rows.h"
#include "ops/check.h"
#include "ops/codebook_taps.h"

namespace lowbit {
// pack_int_rows as in inference_ops.cpp (unpack_int_rows: ops/codebook_taps.h).
LOWBIT_KERNEL(bool, pack_int_rows, (const uint8_t* codes, int64_t O, int64_t K, int bits, uint8_t offset, uint8_t* out),
              (codes, O, K, bits, offset, out))
}  // namespace lowbit

namespace lowbit::ops {
namespace {
namespace K = lowbit::kernels;

// Power-of-two linear layers run on int_gemm from this many rows (plan_wide): below it the
// 8-bit weights cost more to stream than the faster tiles save.
constexpr int64_t kWideMinRows = 8;
constexpr int kWideZero = 64;

// Layers on bit-plane rows (method "planes"): ShiftLinear's default layout on the pow2
// kernel, VLUTLinear on the vlut kernel.
constexpr int64_t kPlanes = 3;

// A Shift/Int/LUTLinear (conv = false) or Shift/Int/LUTConv2d (conv = true) layer.
enum class Kind { shift, integer, lut };

struct PackedLayer {
  Kind kind = Kind::shift;         // pow2 + integer activations, uniform + int8 rows, or tables
  bool shift = true;               // kind == Kind::shift
  std::vector<at::Tensor> packed;  // per convolution group: [O / groups, row bytes] uint8
  at::Tensor scale;                // shift, int: w_scale [O] float64; LUT: tables [groups * t, 2^bits]
  at::Tensor zero_point;           // int: the zero field of each row, int32 [O]
  at::Tensor bias;                 // [O] float32, or undefined
  int64_t bits = 4, act_bits = 8, method = 1, O = 0;
  c10::optional<double> x_scale;
  int64_t in = 0;                  // linear: input features; conv: input channels
  bool conv = false;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  // conv on direct_conv2d: per group, the integer weights as floats [Kg x O / groups]
  std::vector<std::vector<float>> direct;
  // shift linear layers up to 4 bits: the weights as 8-bit int rows and zero points (plan_wide)
  at::Tensor wide, wide_zero;
  bool relu = false;  // a ReLU that follows in the chain, applied to each output block here
  std::vector<int64_t> pool;  // conv: a max pool that follows (kernel, stride, padding, dilation pairs), or none
};

int64_t taps(const PackedLayer& L) { return L.in / L.groups * L.kh * L.kw; }

// The integer weight of each field of bit-plane rows: (u - zero_point) for uniform codes,
// sign(c) 2^(|c| - k_lo) for power-of-two codes (c = u - 2^(bits-1), as pow2_gemm reads them).
float int_weight(const PackedLayer& L, int64_t o, uint8_t u) {
  if (L.kind == Kind::integer) return float(int32_t(u) - L.zero_point.data_ptr<int32_t>()[o]);
  return float(pow2_weight(u, int(L.bits)));  // up to 2^30: exact in float
}

// The unsigned fields [Og x Kg] of group g, from either layout.
std::vector<uint8_t> group_fields(const PackedLayer& L, int64_t g) {
  const int64_t Kg = taps(L), Og = L.O / L.groups;
  std::vector<uint8_t> fields(size_t(Og * Kg + 8));  // read_fields writes whole blocks of 8
  const uint8_t* packed = L.packed[size_t(g)].data_ptr<uint8_t>();
  if (L.kind == Kind::integer || L.method == kPlanes) {  // bit-plane rows
    TORCH_CHECK(K::unpack_int_rows(packed, Og, Kg, int(L.bits), fields.data()), "unpack_int_rows failed");
  } else {  // row-packed codes
    for (int64_t o = 0; o < Og; ++o)
      read_fields(packed + o * packed_row_bytes(Kg, int(L.bits)), 0, Kg, int(L.bits), fields.data() + o * Kg);
  }
  return fields;
}

// Fills L.direct when the layer is a convolution with few taps whose sums direct_conv2d
// computes exactly; leaves it empty otherwise (the layer then runs on im2col rows).
void plan_direct(PackedLayer& L) {
  const int64_t Kg = taps(L), Og = L.O / L.groups;
  if (!L.conv || Kg > kDirectMaxTaps) return;
  std::vector<std::vector<float>> tables;
  if (L.kind == Kind::lut) {  // codebook values on bit-plane rows, float activations (as vlut_conv2d)
    const int64_t n_tables = L.scale.size(0) / L.groups, T = L.scale.size(1);
    for (int64_t g = 0; g < L.groups; ++g)
      tables.push_back(codebook_taps(L.packed[size_t(g)].data_ptr<uint8_t>(), Og, Kg, int(L.bits),
                                     L.scale.data_ptr<float>() + g * n_tables * T, n_tables));
    L.direct = std::move(tables);
    return;
  }
  for (int64_t g = 0; g < L.groups; ++g) {
    const std::vector<uint8_t> fields = group_fields(L, g);
    std::vector<float> t(size_t(Kg * Og));
    for (int64_t o = 0; o < Og; ++o)
      for (int64_t k = 0; k < Kg; ++k) t[size_t(k * Og + o)] = int_weight(L, g * Og + o, fields[size_t(o * Kg + k)]);
    if (!direct_conv_fits(t.data(), Kg, Og, int(L.act_bits))) return;
    tables.push_back(std::move(t));
  }
  L.direct = std::move(tables);
}

// Fills L.wide for a power-of-two linear layer of up to 4 bits: its weights (at most 2^6
// in magnitude) as 8-bit uniform fields w + 64 with zero point 64, so that batches run on
// int_gemm's VNNI tiles, about twice pow2_gemm's rate there, with the same integer sums
// and the same rescaling (one step for every row).
void plan_wide(PackedLayer& L) {
  if (L.kind != Kind::shift || L.conv || L.bits > 4 || L.in > kIntMaxK) return;
  const std::vector<uint8_t> fields = group_fields(L, 0);
  std::vector<uint8_t> wide(size_t(L.O * L.in));
  for (int64_t o = 0; o < L.O; ++o)
    for (int64_t k = 0; k < L.in; ++k)
      wide[size_t(o * L.in + k)] = uint8_t(int(int_weight(L, o, fields[size_t(o * L.in + k)])) + kWideZero);
  L.wide = at::empty({L.O, int_row_bytes(L.in, 8)}, at::kByte);
  TORCH_CHECK(K::pack_int_rows(wide.data(), L.O, L.in, 8, 0, L.wide.data_ptr<uint8_t>()), "pack_int_rows failed");
  L.wide_zero = at::full({L.O}, kWideZero, at::kInt);
}

// Integer codes of the whole input (shift layers) and their step, as quantize_activations.
at::Tensor activation_codes(const PackedLayer& L, const at::Tensor& x, float* step) {
  const float* xp = x.data_ptr<float>();
  at::Tensor codes = at::empty(x.sizes(), x.options().dtype(at::kChar));
  bool ok;
  if (L.x_scale) {
    *step = float(*L.x_scale);
    ok = K::sym_quantize<float>(xp, 1, x.numel(), step, int(L.act_bits), codes.data_ptr<int8_t>(), nullptr, nullptr);
  } else {  // the whole input as one row: the step and codes of qstep_maxabs + sym_quantize, vectorized
    ok = K::quantize_rows(xp, 1, x.numel(), int(L.act_bits), codes.data_ptr<int8_t>(), step);
  }
  TORCH_CHECK_VALUE(ok, "input of a shift layer contains NaN or Inf");
  return codes;
}

// Float rows [N x Kg] -> int8 codes and one step per row, as int_linear does.
void row_codes(const PackedLayer& L, const float* rows, int64_t N, int64_t Kg, int8_t* codes, float* steps) {
  TORCH_CHECK_VALUE(K::quantize_rows(rows, N, Kg, int(L.act_bits), codes, steps),
                    "input of an int layer contains NaN or Inf");
}

// Uniform weights of group g times float rows [N x Kg], quantized per row here.
void int_product(const PackedLayer& L, int64_t g, const float* rows, int64_t N, int64_t Kg, float* out,
                 bool channel_major, std::vector<int8_t>& codes, std::vector<float>& steps) {
  const int64_t Og = L.O / L.groups;
  codes.resize(size_t(N * Kg));
  steps.resize(size_t(N));
  row_codes(L, rows, N, Kg, codes.data(), steps.data());
  K::int_gemm(codes.data(), N, Kg, L.packed[size_t(g)].data_ptr<uint8_t>(), Og, int(L.bits),
              L.zero_point.data_ptr<int32_t>() + g * Og, steps.data(), L.scale.data_ptr<double>() + g * Og,
              L.bias.defined() ? L.bias.data_ptr<float>() + g * Og : nullptr, nullptr, out,
              channel_major ? 1 : L.O, channel_major ? N : 1);
}

// One product of columns [N x Kg] with the packed rows of group g, written channel-major
// (conv: out[o * N + n]) or row-major (linear: out[n * O + o]).
void packed_product(const PackedLayer& L, int64_t g, const void* cols, int64_t N, int64_t Kg, float step,
                    float* out, bool channel_major) {
  const int64_t Og = L.O / L.groups;
  const float* bias = L.bias.defined() ? L.bias.data_ptr<float>() + g * Og : nullptr;
  const uint8_t* w = L.packed[size_t(g)].data_ptr<uint8_t>();
  const int64_t sn = channel_major ? 1 : L.O, so = channel_major ? N : 1;
  if (L.kind == Kind::integer) {
    std::vector<int8_t> codes;
    std::vector<float> steps;
    int_product(L, g, static_cast<const float*>(cols), N, Kg, out, channel_major, codes, steps);
  } else if (L.wide.defined() && N >= kWideMinRows) {
    const std::vector<float> steps(size_t(N), step);
    K::int_gemm(static_cast<const int8_t*>(cols), N, Kg, L.wide.data_ptr<uint8_t>(), Og, 8,
                L.wide_zero.data_ptr<int32_t>(), steps.data(), L.scale.data_ptr<double>(), bias, nullptr, out, sn, so);
  } else if (L.method == kPlanes && L.shift) {
    K::pow2_gemm(static_cast<const int8_t*>(cols), N, Kg, w, Og, int(L.bits), step, L.scale.data_ptr<double>() + g * Og,
                 bias, nullptr, out, sn, so);
  } else if (L.method == kPlanes) {
    const int64_t tables = L.scale.size(0) / L.groups, T = L.scale.size(1);
    K::vlut_gemm(static_cast<const float*>(cols), N, Kg, w, Og, int(L.bits), L.scale.data_ptr<float>() + g * tables * T,
                 tables, bias, out, sn, so);
  } else if (L.shift) {
    K::shift_gemm(static_cast<const int8_t*>(cols), N, Kg, w, Og, int(L.bits), step,
                  L.scale.data_ptr<double>() + g * Og, bias, int(L.method), nullptr, out, sn, so);
  } else {
    const int64_t tables = L.scale.size(0) / L.groups, T = L.scale.size(1);
    K::lut_gemm(static_cast<const float*>(cols), N, Kg, w, Og, int(L.bits), L.scale.data_ptr<float>() + g * tables * T,
                tables, bias, out, sn, so);
  }
}

// The first exception thrown in a parallel region, which an exception may not leave:
// run() catches it inside, rethrow() raises it after the region.
class FirstError {
 public:
  template <class F> void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
#pragma omp critical(lowbit_chain_error)
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

// Threads for a linear layer split by rows of x: for integer sums (the same integers for
// any split, where float sums could take another kernel path), when the packed weights
// fit in L2 (each thread reads them from its own cache) and every thread gets rows and
// work; 1 leaves the split to the kernel (over output rows, weights read once).
int rows_in_parallel(const PackedLayer& L, int64_t N) {
  const int nt = num_threads();
  if (L.kind == Kind::lut || nt == 1 || N < 4 * nt || L.packed[0].nbytes() > (size_t(1) << 20)) return 1;
  return threads_for(N * L.in * L.O / 32);
}

at::Tensor run_linear(const PackedLayer& L, const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.size(-1) == L.in, "a fused linear layer expects ", L.in,
                    " features in the last dimension, got shape ", x.sizes());
  float step = 1.0f;
  const at::Tensor codes = L.shift ? activation_codes(L, x, &step) : at::Tensor();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = L.O;
  at::Tensor out = at::empty(shape, x.options());
  const int64_t N = x.numel() / L.in;
  auto rows_from = [&](int64_t n) -> const void* {  // int: x's rows (quantized per row inside)
    return L.shift ? static_cast<const void*>(codes.data_ptr<int8_t>() + n * L.in) : x.data_ptr<float>() + n * L.in;
  };
  const int nt = rows_in_parallel(L, N);
  float* o = out.data_ptr<float>();
  if (nt == 1) {
    packed_product(L, 0, rows_from(0), N, L.in, step, o, false);
    if (L.relu) K::relu_inplace(o, N * L.O);
    return out;
  }
  // Each thread runs the whole layer on its share of the rows, in one parallel region: a
  // region costs 10-70 us to wake passive OpenMP threads (measured on a 2-vCPU VM), more
  // than a small layer's product.
  const int master_cpu = current_cpu();
  FirstError error;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    const int64_t t = omp_get_thread_num(), n0 = N * t / nt, n1 = N * (t + 1) / nt;
    if (n1 > n0)
      error.run([&] {
        packed_product(L, 0, rows_from(n0), n1 - n0, L.in, step, o + n0 * L.O, false);
        if (L.relu) K::relu_inplace(o + n0 * L.O, (n1 - n0) * L.O);
      });
  }
  error.rethrow();
  return out;
}

// A max pool's geometry over [C, H, W] inputs; window holds the kernel, stride, padding and
// dilation pairs.
Conv2dShape pool_shape(const std::vector<int64_t>& window, int64_t C, int64_t H, int64_t W) {
  const auto& w = window;
  Conv2dShape s{C, H, W, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], 0, 0};
  const bool fits = s.fit();  // sets Ho, Wo
  TORCH_CHECK_VALUE(fits, "a fused max pool's window does not fit a ", s.H, "x", s.W, " input");
  return s;
}

at::Tensor run_conv(const PackedLayer& L, const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() == 4 && x.size(1) == L.in, "a fused convolution expects [N, ", L.in,
                    ", H, W] inputs, got shape ", x.sizes());
  Conv2dShape s{L.in, x.size(2), x.size(3), L.kh, L.kw, L.sh, L.sw, L.ph, L.pw, L.dh, L.dw, 0, 0};
  const bool fits = s.fit();  // sets Ho, Wo
  TORCH_CHECK_VALUE(fits, "a fused convolution's ", s.kh, "x", s.kw, " window does not fit a ",
                    s.H, "x", s.W, " input");
  float step = 1.0f;
  const at::Tensor codes = L.shift ? activation_codes(L, x, &step) : at::Tensor();
  const int64_t B = x.size(0), N = s.Ho * s.Wo, Cg = L.in / L.groups, Kg = Cg * s.kh * s.kw, Og = L.O / L.groups;
  const int64_t image = L.in * s.H * s.W;
  // With a pool joined, each image's convolution goes to a buffer and is pooled from there.
  const bool pooled = !L.pool.empty();
  const Conv2dShape ps = pooled ? pool_shape(L.pool, L.O, s.Ho, s.Wo) : Conv2dShape{};
  at::Tensor out = pooled ? at::empty({B, L.O, ps.Ho, ps.Wo}, x.options()) : at::empty({B, L.O, s.Ho, s.Wo}, x.options());
  // Images in parallel; the kernels inside then run on one thread (nested regions do).
  const int nt = B > 1 ? int(std::min<int64_t>(num_threads(), B)) : 1;
  const int master_cpu = nt > 1 ? current_cpu() : -1;
  FirstError error;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<int8_t> icols;  // im2col rows, for the paths that need them
    std::vector<float> fcols;
    std::vector<float> steps;
    std::vector<float> image_out(pooled ? size_t(L.O * N) : 0);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      float* o = pooled ? image_out.data() : out.data_ptr<float>() + b * L.O * N;  // this image's [O, Ho, Wo]
      for (int64_t g = 0; g < L.groups; ++g) error.run([&] {
        float* dst = o + g * Og * N;
        const float* bias = L.bias.defined() ? L.bias.data_ptr<float>() + g * Og : nullptr;
        if (!L.direct.empty()) {
          const float* table = L.direct[size_t(g)].data();
          const double* ws = L.kind == Kind::lut ? nullptr : L.scale.data_ptr<double>() + g * Og;  // lut: tables
          const float* xb = x.data_ptr<float>() + b * image;
          const bool ok = L.shift ? K::direct_conv2d<int8_t>(codes.data_ptr<int8_t>() + b * image, s, g * Cg, Cg, table,
                                                             Og, int(L.act_bits), step, ws, bias, dst)
                                  : K::direct_conv2d<float>(xb, s, g * Cg, Cg, table, Og,
                                                            L.kind == Kind::lut ? 0 : int(L.act_bits), 1.0f, ws, bias, dst);
          TORCH_CHECK_VALUE(ok, "input of an int layer contains NaN or Inf");
          return;
        }
        if (L.shift && L.method == 1 &&  // int8 multiply-add on 4-tap columns, when it applies
            K::shift_conv2d(codes.data_ptr<int8_t>() + b * image, s, g * Cg, Cg, L.packed[size_t(g)].data_ptr<uint8_t>(),
                            Og, int(L.bits), step, L.scale.data_ptr<double>() + g * Og, bias, dst)) {
          return;
        } else if (L.shift) {
          icols.resize(size_t(N * Kg));
          K::im2col<int8_t>(codes.data_ptr<int8_t>() + b * image, s, g * Cg, Cg, icols.data());
          packed_product(L, g, icols.data(), N, Kg, step, dst, true);
        } else if (L.kind == Kind::integer) {
          fcols.resize(size_t(N * Kg));
          K::im2col<float>(x.data_ptr<float>() + b * image, s, g * Cg, Cg, fcols.data());
          int_product(L, g, fcols.data(), N, Kg, dst, true, icols, steps);
        } else {
          fcols.resize(size_t(N * Kg));
          K::im2col<float>(x.data_ptr<float>() + b * image, s, g * Cg, Cg, fcols.data());
          packed_product(L, g, fcols.data(), N, Kg, step, dst, true);
        }
      });
      if (L.relu) K::relu_inplace(o, L.O * N);  // while the image is in cache
      if (pooled) K::max_pool2d(o, ps, out.data_ptr<float>() + b * L.O * ps.Ho * ps.Wo);
    }
  }
  error.rethrow();
  return out;
}

// torch's own relu: vectorized and branch-free (a plain loop branches on the sign, and
// mispredicts half the time on activations), NaN stays NaN as in nn.ReLU.
at::Tensor relu(at::Tensor x, bool owned) { return owned ? at::relu_(x) : at::relu(x); }

at::Tensor max_pool(const at::Tensor& x, const std::vector<int64_t>& window) {
  TORCH_CHECK_VALUE(x.dim() == 4, "a fused max pool expects [N, C, H, W] inputs, got shape ", x.sizes());
  const Conv2dShape s = pool_shape(window, x.size(1), x.size(2), x.size(3));
  at::Tensor out = at::empty({x.size(0), s.C, s.Ho, s.Wo}, x.options());
  // One channel of one image at a time: every plane is a job.
  const int64_t planes = x.size(0) * s.C, in_plane = s.H * s.W, out_plane = s.Ho * s.Wo;
  Conv2dShape one = s;
  one.C = 1;
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
#pragma omp parallel for num_threads(threads_for(planes * in_plane)) schedule(static)
  for (int64_t p = 0; p < planes; ++p) K::max_pool2d(src + p * in_plane, one, dst + p * out_plane);
  return out;
}

std::vector<int64_t> pair(const std::vector<int64_t>& v, const char* name) {
  TORCH_CHECK_VALUE(v.size() == 2 && v[0] >= 0 && v[1] >= 0, name, " must be two non-negative integers");
  return v;
}

// The geometry, packed rows and bias shared by every packed layer; row_bytes(K) is the
// packed row length of the layer's layout.
template <class RowBytes>
PackedLayer packed_layer(std::vector<at::Tensor>& packed, const at::Tensor& scale, const c10::optional<at::Tensor>& bias,
                         int64_t bits, int64_t in, const std::vector<int64_t>& conv, RowBytes row_bytes) {
  PackedLayer L;
  L.bits = bits;
  L.in = in;
  L.conv = !conv.empty();
  if (L.conv) {
    TORCH_CHECK_VALUE(conv.size() == 9, "conv must be [kh, kw, sh, sw, ph, pw, dh, dw, groups]");
    L.kh = conv[0], L.kw = conv[1], L.sh = conv[2], L.sw = conv[3], L.ph = conv[4], L.pw = conv[5];
    L.dh = conv[6], L.dw = conv[7], L.groups = conv[8];
    TORCH_CHECK_VALUE(L.kh > 0 && L.kw > 0 && L.sh > 0 && L.sw > 0 && L.dh > 0 && L.dw > 0 && L.ph >= 0 &&
                          L.pw >= 0, "convolution kernel, stride and dilation must be positive, padding >= 0");
  }
  TORCH_CHECK_VALUE(L.groups >= 1 && int64_t(packed.size()) == L.groups && in % L.groups == 0,
                    "one packed weight per convolution group is needed");
  const int64_t Kg = L.conv ? in / L.groups * L.kh * L.kw : in;
  for (auto& p : packed) {
    TORCH_CHECK_VALUE(p.device().is_cpu() && scale.device().is_cpu() && (!bias || bias->device().is_cpu()),
                      "a fused plan runs on the CPU: packed weights, scales and bias must be CPU tensors");
    TORCH_CHECK_TYPE(p.scalar_type() == at::kByte && p.dim() == 2 && p.size(1) == row_bytes(Kg),
                     "packed weights must be uint8 [rows, ", row_bytes(Kg), "]");
    TORCH_CHECK_VALUE(p.size(0) >= 1 && p.size(0) == packed[0].size(0), "every group must have as many rows (>= 1)");
    L.packed.push_back(p.contiguous());
  }
  L.O = packed[0].size(0) * L.groups;
  if (bias) {
    TORCH_CHECK_TYPE(bias->scalar_type() == at::kFloat && bias->numel() == L.O, "bias must be float32 [", L.O, "]");
    L.bias = bias->contiguous();
  }
  return L;
}

class ChainPlan : public torch::CustomClassHolder {
 public:
  // Uniform weights on the integer kernel (IntLinear / IntConv2d): bit-plane rows, w_scale
  // float64 [O], zero_point int32 [O]; conv as in add_packed.
  void add_int(std::vector<at::Tensor> packed, at::Tensor w_scale, at::Tensor zero_point,
               c10::optional<at::Tensor> bias, int64_t bits, int64_t in, std::vector<int64_t> conv,
               int64_t act_bits) {
    check_bits(bits, 2, 8, "uniform weights");
    check_bits(act_bits, 2, 8, "activations");
    PackedLayer L = packed_layer(packed, w_scale, bias, bits, in, conv,
                                 [bits](int64_t k) { return int_row_bytes(k, int(bits)); });
    TORCH_CHECK_VALUE(L.conv ? in / L.groups * L.kh * L.kw <= kIntMaxK : in <= kIntMaxK,
                      "int kernels take at most ", kIntMaxK, " input features per product");
    L.kind = Kind::integer;
    L.shift = false;
    L.act_bits = act_bits;
    TORCH_CHECK_TYPE(w_scale.scalar_type() == at::kDouble && w_scale.numel() == L.O, "w_scale must be float64 [", L.O, "]");
    TORCH_CHECK_TYPE(zero_point.scalar_type() == at::kInt && zero_point.numel() == L.O && zero_point.device().is_cpu(),
                     "zero_point must be int32 [", L.O, "]");
    L.scale = w_scale.contiguous();
    L.zero_point = zero_point.contiguous();
    const int32_t* z = L.zero_point.data_ptr<int32_t>();
    for (int64_t i = 0; i < L.O; ++i)
      TORCH_CHECK_VALUE(z[i] >= 0 && z[i] < (1 << bits), "zero_point must hold fields in [0, ", (1 << bits) - 1, "]");
    plan_direct(L);
    const bool is_conv = L.conv;
    add_layer(std::string("int") + (is_conv ? "_conv2d" : "_linear"), std::move(L));
  }

  // conv: [] for a linear layer, else [kh, kw, sh, sw, ph, pw, dh, dw, groups].
  void add_packed(bool shift, std::vector<at::Tensor> packed, at::Tensor scale, c10::optional<at::Tensor> bias,
                  int64_t bits, int64_t in, std::vector<int64_t> conv, int64_t act_bits,
                  c10::optional<double> x_scale, std::string method) {
    check_bits(bits, 1, 8, "packed weights");
    const bool planes = method == "planes";  // bit-plane rows: the pow2 or vlut kernel
    if (planes) check_bits(bits, 2, 8, "bit-plane weights");
    PackedLayer L = packed_layer(packed, scale, bias, bits, in, conv, [bits, planes](int64_t k) {
      return planes ? int_row_bytes(k, int(bits)) : packed_row_bytes(k, int(bits));
    });
    if (planes)
      TORCH_CHECK_VALUE(L.conv ? in / L.groups * L.kh * L.kw <= kIntMaxK : in <= kIntMaxK,
                        "bit-plane kernels take at most ", kIntMaxK, " input features per product");
    L.shift = shift;
    L.kind = shift ? Kind::shift : Kind::lut;
    if (planes) L.method = kPlanes;
    if (shift) {
      check_bits(bits, 2, 8, "power-of-two weights");
      check_bits(act_bits, 2, 8, "activations");
      if (!planes) L.method = shift_method_id(method, bits);
      TORCH_CHECK_TYPE(scale.scalar_type() == at::kDouble && scale.numel() == L.O, "w_scale must be float64 [", L.O, "]");
      TORCH_CHECK_VALUE(!x_scale || (*x_scale > 0 && std::isfinite(*x_scale)), "x_scale must be positive and finite");
    } else {
      check_bits(bits, 1, 8, "codebook weights");
      TORCH_CHECK_TYPE(scale.scalar_type() == at::kFloat && scale.dim() == 2 && scale.size(1) == (int64_t(1) << bits) &&
                           scale.size(0) >= L.groups && scale.size(0) % L.groups == 0 && (L.O / L.groups) % (scale.size(0) / L.groups) == 0,
                       "tables must be float32 [groups, 2^bits] splitting the output rows");
    }
    L.scale = scale.contiguous();
    L.act_bits = act_bits;
    L.x_scale = x_scale;
    // 'literal' and 'int8'/'int16' name a kernel; the direct kernel gives the same integers
    if (shift && (planes || method == "auto")) {
      plan_direct(L);
      plan_wide(L);
    } else if (planes) {  // vlut: the direct kernel, as vlut_conv2d runs it unfused
      plan_direct(L);
    }
    const bool is_conv = L.conv;
    // the step names the kernel as lowbit.schemes does: shift (either layout), vlut or lut
    add_layer(std::string(shift ? "shift" : planes ? "vlut" : "lut") + (is_conv ? "_conv2d" : "_linear"), std::move(L));
  }

  // A ReLU right after a packed layer runs inside it, on each output block while it is in
  // cache (the step is then named e.g. 'int_conv2d+relu'); so does a max pool after a packed
  // convolution, per image. A ReLU after a joined pool stays a step: relu runs before the
  // pool inside the layer, and the two orders can differ in the sign of a zero.
  void add_relu() {
    if (last_layer_joins() && !last_layer_->relu && last_layer_->pool.empty()) {
      last_layer_->relu = true;
      names_.back() += "+relu";
      return;
    }
    add("relu", [](const at::Tensor& x, bool owned) { return relu(x, owned); });
  }

  void add_max_pool2d(std::vector<int64_t> k, std::vector<int64_t> st, std::vector<int64_t> pad,
                      std::vector<int64_t> dil) {
    pair(k, "kernel_size"), pair(st, "stride"), pair(pad, "padding"), pair(dil, "dilation");
    TORCH_CHECK_VALUE(k[0] > 0 && k[1] > 0 && st[0] > 0 && st[1] > 0 && dil[0] > 0 && dil[1] > 0,
                      "max pool kernel, stride and dilation must be positive");
    TORCH_CHECK_VALUE(2 * pad[0] <= k[0] && 2 * pad[1] <= k[1],
                      "max pool padding must be at most half the kernel size (as in torch)");
    const std::vector<int64_t> window{k[0], k[1], st[0], st[1], pad[0], pad[1], dil[0], dil[1]};
    if (last_layer_joins() && last_layer_->conv && last_layer_->pool.empty()) {  // (after its ReLU, if any)
      last_layer_->pool = window;
      names_.back() += "+max_pool2d";
      return;
    }
    add("max_pool2d", [window](const at::Tensor& x, bool) { return max_pool(x, window); });
  }

  void add_flatten(int64_t start_dim) {
    add("flatten", [start_dim](const at::Tensor& x, bool) { return x.flatten(start_dim); });
  }

  void add_linear(at::Tensor w, c10::optional<at::Tensor> b) {
    add("linear", [=](const at::Tensor& x, bool) { return at::linear(x, w, b); });
  }

  void add_conv2d(at::Tensor w, c10::optional<at::Tensor> b, std::vector<int64_t> st, std::vector<int64_t> pad,
                  std::vector<int64_t> dil, int64_t groups) {
    add("conv2d", [=](const at::Tensor& x, bool) { return at::conv2d(x, w, b, st, pad, dil, groups); });
  }

  void add_batch_norm(c10::optional<at::Tensor> w, c10::optional<at::Tensor> b, at::Tensor mean, at::Tensor var,
                      double eps) {
    add("batch_norm", [=](const at::Tensor& x, bool) {
      return at::batch_norm(x, w, b, mean, var, false, 0.0, eps, false);
    });
  }

  at::Tensor run(at::Tensor x) const {
    TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat, "a fused model expects float32 inputs, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.device().is_cpu(), "a fused model runs the CPU kernels; got a tensor on ", x.device());
    TORCH_CHECK_VALUE(x.dim() >= 1 && x.numel() > 0, "a fused model expects a non-empty input, got shape ", x.sizes());
    at::Tensor cur = x.contiguous();
    for (const auto& step : steps_) {
      // A step may overwrite its input only when it is not (a view of) the caller's tensor.
      cur = step(cur, !cur.is_alias_of(x)).contiguous();
    }
    return cur;
  }

  std::vector<std::string> steps() const { return names_; }

 private:
  using Step = std::function<at::Tensor(const at::Tensor&, bool)>;
  void add(std::string name, Step step) {
    names_.push_back(std::move(name));
    steps_.push_back(std::move(step));
    last_layer_ = nullptr;
  }
  bool last_layer_joins() const { return last_layer_ != nullptr; }
  void add_layer(std::string name, PackedLayer L) {
    auto layer = std::make_shared<PackedLayer>(std::move(L));
    add(std::move(name), [layer](const at::Tensor& x, bool) { return layer->conv ? run_conv(*layer, x) : run_linear(*layer, x); });
    last_layer_ = layer;
  }
  std::vector<Step> steps_;
  std::vector<std::string> names_;
  std::shared_ptr<PackedLayer> last_layer_;  // the last step, when it is a packed layer a ReLU or pool may join
};

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.class_<ChainPlan>("ChainPlan")
      .def(torch::init<>())
      .def("add_packed", &ChainPlan::add_packed)
      .def("add_int", &ChainPlan::add_int)
      .def("add_relu", &ChainPlan::add_relu)
      .def("add_max_pool2d", &ChainPlan::add_max_pool2d)
      .def("add_flatten", &ChainPlan::add_flatten)
      .def("add_linear", &ChainPlan::add_linear)
      .def("add_conv2d", &ChainPlan::add_conv2d)
      .def("add_batch_norm", &ChainPlan::add_batch_norm)
      .def("run", &ChainPlan::run)
      .def("steps", &ChainPlan::steps);
}

}  // namespace lowbit::ops
