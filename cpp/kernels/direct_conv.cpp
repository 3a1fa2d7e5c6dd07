// Convolutions with short windows (LeNet-5's 25 and 150 taps), computed from the image
// itself instead of im2col rows and dot products padded to 64 fields. Integer activation
// codes times integer weights are summed in float32, which is exact while every partial
// sum stays below 2^24 (the caller checks direct_conv_fits), so the sums are the integers
// of int_gemm / pow2_gemm bit for bit, and they are rescaled by the same formula. Codebook
// convolutions (act_bits 0, no w_scale) multiply float activations by the taps' decoded
// values and sum them in tap order (vlut_conv2d, and the fused plan through it).
// Lanes are kLanes consecutive outputs: window tap (c, i, j) of the outputs of one output
// row is a strided run of the (padded) image, so a block's taps load as vectors and the
// products vectorize across lanes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

namespace {

// GCC vector types: one build's widest float vector (each build lowers them to its ISA).
#if defined(__AVX512F__)
constexpr int kVec = 16;
constexpr int64_t kOuts = 6;  // output channels per accumulator tile: 6 of 32 vector registers
#elif defined(__AVX__)
constexpr int kVec = 8;
constexpr int64_t kOuts = 4;  // 8 of 16
#else
constexpr int kVec = 4;       // SSE2's width: wider GCC vectors would be split op by op
constexpr int64_t kOuts = 2;  // 8 of 16
#endif
typedef float vf __attribute__((vector_size(4 * kVec)));
typedef int32_t vi __attribute__((vector_size(4 * kVec)));
constexpr int64_t kLanes = 16;           // output positions per block
constexpr int kPer = int(kLanes / kVec);  // vectors per tap row

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// acc[r] = sum_k weights[k * O + r] q[k] for R output channels; out[r * N + l] rescaled.
template <int R>
void tile(const float* q, int64_t K, const float* weights, int64_t O, const float* step, int64_t valid,
          const double* w_scale, const float* bias, float* out, int64_t N) {
  vf acc[R][kPer] = {};
  for (int64_t k = 0; k < K; ++k) {
    vf qk[kPer];
    for (int p = 0; p < kPer; ++p) qk[p] = load(q + k * kLanes + p * kVec);
    for (int r = 0; r < R; ++r) {
      const vf w = weights[k * O + r] * (vf{} + 1.0f);  // a broadcast (x * 1 folds to x)
      for (int p = 0; p < kPer; ++p) acc[r][p] += w * qk[p];
    }
  }
  for (int r = 0; r < R; ++r) {
    float sums[kLanes];
    for (int p = 0; p < kPer; ++p) store(sums + p * kVec, acc[r][p]);
    float* dst = out + r * N;
    if (!w_scale) {  // float weights and activations: the sums themselves
      for (int64_t l = 0; l < valid; ++l) dst[l] = bias ? sums[l] + bias[r] : sums[l];
      continue;
    }
    const double ws = w_scale[r];
    for (int64_t l = 0; l < valid; ++l) {
      const float y = float(double(sums[l]) * (double(step[l]) * ws));
      dst[l] = bias ? y + bias[r] : y;
    }
  }
}

using Tile = void (*)(const float*, int64_t, const float*, int64_t, const float*, int64_t, const double*,
                      const float*, float*, int64_t);
constexpr Tile kTiles[] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};
static_assert(sizeof kTiles / sizeof kTiles[0] > size_t(kOuts), "a tile for every row count");

inline vf vabs(vf v) { return (vf)((vi)v & 0x7fffffff); }

// Rounded toward zero, for 0 <= t < 2^31: one instruction where the build has it.
inline vf trunc(vf t) {
#if defined(__AVX512F__)
  return (vf)_mm512_roundscale_ps((__m512)t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#elif defined(__AVX__)
  return (vf)_mm256_round_ps((__m256)t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#else
  return __builtin_convertvector(__builtin_convertvector(t, vi), vf);
#endif
}

// Lanes [0, valid) of each window tap row quantized with one step per lane, exactly as
// quantize_rows quantizes an im2col row: false if a valid lane holds NaN or Inf.
bool quantize_lanes(float* q, int64_t K, int64_t valid, int L, float* step) {
  vi lane;
  for (int l = 0; l < kVec; ++l) lane[l] = l;
  const vf fmax = vf{} + std::numeric_limits<float>::max(), vL = vf{} + float(L);
  for (int p = 0; p < kPer; ++p) {
    const vi live = lane + p * kVec < int(valid);
    // Two independent maxima (a compare and a blend per tap are a chain), named so that
    // they stay in registers (an array indexed by k % 2 went through the stack).
    vf mx = {}, mx2 = {};
    vi bad = {}, bad2 = {};
    int64_t k = 0;
    for (; k + 2 <= K; k += 2) {
      const vf a = vabs(load(q + k * kLanes + p * kVec)), b = vabs(load(q + (k + 1) * kLanes + p * kVec));
      bad |= !(a <= fmax);  // NaN or Inf
      bad2 |= !(b <= fmax);
      mx = a > mx ? a : mx;
      mx2 = b > mx2 ? b : mx2;
    }
    if (k < K) {
      const vf a = vabs(load(q + k * kLanes + p * kVec));
      bad |= !(a <= fmax);
      mx = a > mx ? a : mx;
    }
    mx = mx2 > mx ? mx2 : mx;
    bad |= bad2;
    for (int l = 0; l < kVec; ++l)
      if (live[l] && bad[l]) return false;
    const vf D = mx / vL;  // positive_step (params.cpp): 1 for zeros, mx if mx / L underflows
    const vf st = mx > 0 ? (D > 0 ? D : mx) : vf{} + 1.0f;
    store(step + p * kVec, st);
    for (int64_t k = 0; k < K; ++k) {
      float* at = q + k * kLanes + p * kVec;
      const vf v = load(at), a = vabs(v) / st;
      const vf t = a < vL ? a : vL;
      const vf r = trunc(t);
      const vf mag = r + (t - r >= 0.5f ? vf{} + 1.0f : vf{});
      store(at, (vf)((vi)mag | ((vi)v & int32_t(0x80000000u))));  // v's sign; -0 gives -0, which sums as 0
    }
  }
  return true;
}

}  // namespace

template <class T>
bool direct_conv2d(const T* x, const Conv2dShape& s, int64_t c0, int64_t channels, const float* weights,
                   int64_t O, int act_bits, float x_scale, const double* w_scale, const float* bias, float* out) {
  const int64_t K = channels * s.kh * s.kw, N = s.Ho * s.Wo;
  // Zero padded copy; a lane run reads kLanes strided values from its start, so the copy
  // ends with that much slack (values read there belong to lanes that are overwritten or dropped).
  const int64_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw;
  std::vector<float> image(size_t(channels * Hp * Wp + kLanes * s.sw), 0.0f), q(size_t(2 * (K + 1) * kLanes));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t h = 0; h < s.H; ++h) {
      const T* src = x + ((c0 + c) * s.H + h) * s.W;
      float* dst = image.data() + (c * Hp + h + s.ph) * Wp + s.pw;
      for (int64_t w = 0; w < s.W; ++w) dst[w] = float(src[w]);
    }
  std::vector<int64_t> tap(static_cast<size_t>(K));  // where tap (c, i, j) of output (0, 0) sits in the copy
  for (int64_t c = 0, k = 0; c < channels; ++c)
    for (int64_t i = 0; i < s.kh; ++i)
      for (int64_t j = 0; j < s.kw; ++j) tap[size_t(k++)] = (c * Hp + i * s.dh) * Wp + j * s.dw;
  const int L = act_bits > 0 ? (1 << (act_bits - 1)) - 1 : 0;
  float step[kLanes];
  std::fill(step, step + kLanes, x_scale);
  // A block is kLanes consecutive outputs (row-major over Ho x Wo): runs of adjacent outputs
  // of one output row, each a strided run of the image per tap. A run is copied as whole
  // vectors, in lane order (its spill past its end is overwritten by the next run).
  const auto fill = [&](int64_t n0, float* qb) {
    const int64_t valid = std::min(kLanes, N - n0);
    int64_t run_lane[kLanes], run_at[kLanes], run_len[kLanes];
    int runs = 0;
    for (int64_t lane = 0; lane < valid; ++runs) {
      const int64_t oh = (n0 + lane) / s.Wo, ow = (n0 + lane) % s.Wo;
      run_lane[runs] = lane;
      run_at[runs] = oh * s.sh * Wp + ow * s.sw;
      run_len[runs] = std::min(s.Wo - ow, valid - lane);
      lane += run_len[runs];
    }
    for (int64_t k = 0; k < K; ++k)
      for (int r = 0; r < runs; ++r) {  // lane order within a tap row; the last spills into the next row
        const float* src = image.data() + tap[size_t(k)] + run_at[r];
        float* dst = qb + k * kLanes + run_lane[r];
        if (s.sw == 1) {
          for (int p = 0; p < kPer; ++p) store(dst + p * kVec, load(src + p * kVec));
        } else {
          for (int64_t l = 0; l < run_len[r]; ++l) dst[l] = src[l * s.sw];
        }
      }
  };
  // Block n + 1 is copied before block n is read: a vector read from the last few stores,
  // which it straddles, would wait for them to reach the cache (store forwarding fails).
  float* cur = q.data();
  float* next = q.data() + (K + 1) * kLanes;
  fill(0, cur);
  for (int64_t n0 = 0; n0 < N; n0 += kLanes) {
    const int64_t valid = std::min(kLanes, N - n0);
    if (n0 + kLanes < N) fill(n0 + kLanes, next);
    if constexpr (std::is_same_v<T, float>) {
      if (act_bits > 0 && !quantize_lanes(cur, K, valid, L, step)) return false;
    }
    for (int64_t o0 = 0; o0 < O; o0 += kOuts) {
      const int64_t rows = std::min(kOuts, O - o0);
      kTiles[rows](cur, K, weights + o0, O, step, valid, w_scale ? w_scale + o0 : nullptr, bias ? bias + o0 : nullptr,
                   out + o0 * N + n0, N);
    }
    std::swap(cur, next);
  }
  return true;
}
template bool direct_conv2d<float>(const float*, const Conv2dShape&, int64_t, int64_t, const float*, int64_t, int,
                                   float, const double*, const float*, float*);
template bool direct_conv2d<int8_t>(const int8_t*, const Conv2dShape&, int64_t, int64_t, const float*, int64_t, int,
                                    float, const double*, const float*, float*);

LOWBIT_ISA_END
