// A power-of-two convolution over one image, for weights of at most 4 bits: the integer
// activation codes are laid out as columns of 4 consecutive taps per output position
// (offset by 128 to be unsigned), the codes of the weights are decoded to int8 powers of
// two, and pmaddubsw + pmaddwd sum 4 taps of 8 positions per instruction pair. The
// integers equal shift_gemm's (see kernels.inc); only the order of the work differs.
#include <algorithm>
#include <cstring>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"
#include "lowbit/packed_rows.h"

LOWBIT_ISA_BEGIN

namespace {

constexpr int64_t kBlock = 32;  // output positions per register block (4 x 8 int32 lanes)

// cols[(q * Np + n) * 4 + r] = x at tap k = 4q + r of output position n, plus 128; taps in
// the zero padding and past the last tap hold 128 (x = 0).
void quad_columns(const int8_t* x, const Conv2dShape& s, int64_t c0, int64_t channels, int64_t Np,
                  uint8_t* cols) {
  const int64_t Kg = channels * s.kh * s.kw, Kq = (Kg + 3) / 4;
  std::memset(cols, 128, size_t(Kq * Np * 4));
  for (int64_t k = 0; k < Kg; ++k) {
    const int64_t c = k / (s.kh * s.kw), i = k / s.kw % s.kh, j = k % s.kw;
    const int8_t* img = x + (c0 + c) * s.H * s.W;
    uint8_t* dst = cols + (k / 4) * Np * 4 + k % 4;
    // Output columns whose tap lands inside the image: w = ow * sw - pw + j * dw in [0, W).
    const int64_t off = j * s.dw - s.pw;
    const int64_t ow_lo = off >= 0 ? 0 : (-off + s.sw - 1) / s.sw;
    const int64_t ow_hi = off >= s.W ? 0 : std::min(s.Wo, (s.W - 1 - off) / s.sw + 1);
    for (int64_t oh = 0; oh < s.Ho; ++oh) {
      const int64_t h = oh * s.sh - s.ph + i * s.dh;
      if (h < 0 || h >= s.H) continue;
      const int8_t* src = img + h * s.W + off;
      uint8_t* d = dst + oh * s.Wo * 4;
      for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow * 4] = uint8_t(int(src[ow * s.sw]) + 128);
    }
  }
}

// Sum of 4 taps of 8 positions per 32-bit lane, for kBlock positions starting at cols.
void dot_block(const uint8_t* cols, int64_t Np, const int8_t* wq, int64_t Kq, int32_t out[kBlock]) {
#ifdef __AVX2__
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t q = 0; q < Kq; ++q) {
    int32_t w4;
    std::memcpy(&w4, wq + 4 * q, 4);
    const __m256i wv = _mm256_set1_epi32(w4);
    const uint8_t* p = cols + q * Np * 4;
    // xu <= 255 and |w| <= 64: a pair sum is at most 32640, pmaddubsw never saturates.
#define LOWBIT_QUAD(acc, o) \
  acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16( \
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + (o))), wv), ones16))
    LOWBIT_QUAD(a0, 0); LOWBIT_QUAD(a1, 32); LOWBIT_QUAD(a2, 64); LOWBIT_QUAD(a3, 96);
#undef LOWBIT_QUAD
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), a0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), a1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), a2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 24), a3);
#else
  for (int64_t n = 0; n < kBlock; ++n) {
    int32_t s = 0;
    for (int64_t q = 0; q < Kq; ++q)
      for (int r = 0; r < 4; ++r) s += int32_t(cols[(q * Np + n) * 4 + r]) * wq[4 * q + r];
    out[n] = s;
  }
#endif
}

}  // namespace

bool shift_conv2d(const int8_t* x, const Conv2dShape& s, int64_t c0, int64_t channels, const uint8_t* w,
                  int64_t O, int bits, float x_scale, const double* w_scale, const float* bias, float* out) {
  const int64_t Kg = channels * s.kh * s.kw, Kq = (Kg + 3) / 4, N = s.Ho * s.Wo;
  if (bits > 4 || Kg >= (int64_t(1) << 17)) return false;  // int8 weights; int32 sums cannot overflow
  const int64_t Np = (N + kBlock - 1) / kBlock * kBlock, row_bytes = packed_row_bytes(Kg, bits);
  std::vector<uint8_t> cols(size_t(Kq * Np * 4)), fields(size_t((Kg + 7) / 8 * 8));
  std::vector<int8_t> wq(size_t(Kq * 4));
  quad_columns(x, s, c0, channels, Np, cols.data());
  // int8 value of each field: sign(c) * 2^(|c| - 1) (k_lo = 1 up to 4 bits), 0 for c = 0.
  const int half = 1 << (bits - 1);
  int8_t table[256] = {};
  for (int u = 1; u < 2 * half; ++u) {
    const int c = u - half, mag = c < 0 ? -c : c;
    table[u] = int8_t(c == 0 ? 0 : (c < 0 ? -(1 << (mag - 1)) : (1 << (mag - 1))));
  }
  alignas(32) int32_t blk[kBlock];
  for (int64_t o = 0; o < O; ++o) {
    read_fields(w + o * row_bytes, 0, Kg, bits, fields.data());
    int32_t wsum = 0;
    for (int64_t k = 0; k < Kq * 4; ++k) {
      wq[size_t(k)] = k < Kg ? table[fields[size_t(k)]] : int8_t(0);
      wsum += wq[size_t(k)];
    }
    const double scale = double(x_scale) * w_scale[o];
    for (int64_t n0 = 0; n0 < N; n0 += kBlock) {
      dot_block(cols.data() + n0 * 4, Np, wq.data(), Kq, blk);
      for (int64_t n = n0; n < std::min(N, n0 + kBlock); ++n) {
        const int64_t acc = int64_t(blk[n - n0]) - 128 * int64_t(wsum);  // the columns hold x + 128
        const float y = float(double(acc) * scale);
        out[o * N + n] = bias ? y + bias[o] : y;
      }
    }
  }
  return true;
}

LOWBIT_ISA_END
