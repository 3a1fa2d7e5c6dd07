// Power-of-two weights times integer activations, without multiplying by the weights:
// the literal kernel shifts each activation by its weight's exponent and adds; the fast
// kernel decodes the exponents to int8 powers of two (bits <= 4) and multiply-adds,
// which gives the same integers. See kernels.inc for the exact arithmetic.
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

constexpr int64_t kRows = 4;      // weight rows decoded together and reused across x rows
constexpr int64_t kChunk = 2048;  // fields per decoded chunk; int32 sums cannot overflow

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Literal shift-and-add over one chunk of one row: |x| << (|c| - k_lo), signed, summed.
int64_t shift_add(const int8_t* x, const uint8_t* fields, int64_t n, int half, int k_lo) {
  int64_t s = 0;
  for (int64_t k = 0; k < n; ++k) {
    const int c = fields[k] == 0 ? 0 : int(fields[k]) - half;
    const int mag = c < 0 ? -c : c;
    const int xv = x[k];
    // Shift the magnitude (left-shifting a negative number is undefined before C++20).
    const int64_t v = mag >= k_lo ? int64_t(uint64_t(xv < 0 ? -xv : xv) << (mag - k_lo)) : 0;
    s += ((c < 0) != (xv < 0)) ? -v : v;
  }
  return s;
}

void literal_block(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t row_bytes,
                   int bits, int64_t o0, int64_t rows, int64_t* acc, uint8_t* fields) {
  const int half = 1 << (bits - 1), k_lo = pow2_lowest_code(bits);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + (o0 + r) * row_bytes;
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const int64_t cnt = std::min(kChunk, K - k0);
      read_fields(row, k0, cnt, bits, fields);
      for (int64_t n = 0; n < N; ++n) acc[r * N + n] += shift_add(x + n * K + k0, fields, cnt, half, k_lo);
    }
  }
}

// int8 value of each field for bits <= 4: sign(c) * 2^(|c| - 1), 0 for c = 0 and u = 0.
void pow2_int8_table(int bits, int8_t table[16]) {
  const int half = 1 << (bits - 1);
  for (int u = 0; u < 16; ++u) {
    const int c = (u == 0 || u >= 2 * half) ? 0 : u - half;
    const int mag = c < 0 ? -c : c;
    table[u] = int8_t(c == 0 ? 0 : (c < 0 ? -(1 << (mag - 1)) : (1 << (mag - 1))));
  }
}

// fields -> int8 weights (n rounded up to 32, zero padded); returns their sum.
int32_t decode_int8(const uint8_t* fields, int64_t n, const int8_t table[16], int8_t* w8) {
  const int64_t np = round_up(n, 32);
  int64_t k = 0;
  int32_t sum = 0;
#ifdef __AVX2__
  const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table)));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i vsum = _mm256_setzero_si256();
  for (; k + 32 <= n; k += 32) {
    const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(fields + k));
    const __m256i v = _mm256_shuffle_epi8(lut, f);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w8 + k), v);
    vsum = _mm256_add_epi32(vsum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vsum);
  for (int i = 0; i < 8; ++i) sum += lanes[i];
#endif
  for (; k < n; ++k) {
    w8[k] = table[fields[k] & 15];
    sum += w8[k];
  }
  for (; k < np; ++k) w8[k] = 0;
  return sum;
}

// out[r] = sum_k xu[k] * w8[r * stride + k] for 4 rows; n a multiple of 32.
void dot_u8s8_x4(const uint8_t* xu, const int8_t* w8, int64_t stride, int64_t n, int32_t out[4]) {
#ifdef __AVX2__
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t k = 0; k < n; k += 32) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xu + k));
    // |w| <= 64 and xu <= 255: each 16-bit pair sum is at most 32640, no saturation.
#define LOWBIT_ROW(acc, r)                                                                     \
  acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(                         \
      xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w8 + (r) * stride + k))), ones16))
    LOWBIT_ROW(a0, 0); LOWBIT_ROW(a1, 1); LOWBIT_ROW(a2, 2); LOWBIT_ROW(a3, 3);
#undef LOWBIT_ROW
  }
  // Horizontal sums of the four accumulators.
  const __m256i s01 = _mm256_hadd_epi32(a0, a1), s23 = _mm256_hadd_epi32(a2, a3);
  const __m256i s = _mm256_hadd_epi32(s01, s23);  // per lane: r0 r1 r2 r3
  const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), t);
#else
  for (int r = 0; r < 4; ++r) {
    int32_t s = 0;
    for (int64_t k = 0; k < n; ++k) s += int32_t(xu[k]) * int32_t(w8[r * stride + k]);
    out[r] = s;
  }
#endif
}

// acc[r * N + n] += sum_k x[n, k] * w[r, k] for the rows [o0, o0 + rows) (rows <= kRows).
void int8_block(const uint8_t* xu, int64_t N, int64_t K, int64_t Kp, const uint8_t* w,
                int64_t row_bytes, int bits, const int8_t table[16], int64_t o0, int64_t rows,
                int64_t* acc, uint8_t* fields, int8_t* w8) {
  int64_t row_sum[kRows] = {0, 0, 0, 0};
  for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
    const int64_t cnt = std::min(kChunk, K - k0), cntp = round_up(cnt, 32);
    for (int64_t r = 0; r < kRows; ++r) {  // missing rows of a short block decode as zeros
      if (r < rows) {
        read_fields(w + (o0 + r) * row_bytes, k0, cnt, bits, fields);
        row_sum[r] += decode_int8(fields, cnt, table, w8 + r * kChunk);
      } else {
        std::fill(w8 + r * kChunk, w8 + r * kChunk + cntp, int8_t(0));
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      int32_t d[4];
      dot_u8s8_x4(xu + n * Kp + k0, w8, kChunk, cntp, d);
      for (int64_t r = 0; r < rows; ++r) acc[r * N + n] += d[r];
    }
  }
  // xu = x + 128, so sum xu * w = sum x * w + 128 * sum w.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) acc[r * N + n] -= 128 * row_sum[r];
}

// int16 value of each field for 5-bit codes: sign(c) * 2^(|c| - 1) (|c| <= 15: at most 2^14).
void pow2_int16_table(int bits, int16_t table[32]) {
  const int half = 1 << (bits - 1);
  for (int u = 0; u < 32; ++u) {
    const int c = (u == 0 || u >= 2 * half) ? 0 : u - half;
    const int mag = c < 0 ? -c : c;
    table[u] = int16_t(c == 0 ? 0 : (c < 0 ? -(1 << (mag - 1)) : (1 << (mag - 1))));
  }
}

// sum_k x16[k] * w16[k] over n values (n a multiple of 16): |x| <= 128, |w| <= 2^14, so a
// pmaddwd pair is at most 2^22 and a lane of 128 pairs (one 2048-field chunk) stays in int32.
int64_t dot_i16(const int16_t* x16, const int16_t* w16, int64_t n) {
#ifdef __AVX2__
  __m256i a = _mm256_setzero_si256();
  for (int64_t k = 0; k < n; k += 16)
    a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x16 + k)),
                                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w16 + k))));
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a);
  int64_t s = 0;
  for (int i = 0; i < 8; ++i) s += lanes[i];
  return s;
#else
  int64_t s = 0;
  for (int64_t k = 0; k < n; ++k) s += int32_t(x16[k]) * int32_t(w16[k]);
  return s;
#endif
}

// acc[r * N + n] += sum_k x[n, k] * w[r, k] for rows [o0, o0 + rows), 5-bit codes decoded to
// int16 powers of two chunk by chunk; x16 is [N x Kp] int16, zero padded.
void int16_block(const int16_t* x16, int64_t N, int64_t K, int64_t Kp, const uint8_t* w, int64_t row_bytes,
                 int bits, const int16_t table[32], int64_t o0, int64_t rows, int64_t* acc, uint8_t* fields,
                 int16_t* w16) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const int64_t cnt = std::min(kChunk, K - k0), cntp = round_up(cnt, 16);
      read_fields(w + (o0 + r) * row_bytes, k0, cnt, bits, fields);
      for (int64_t k = 0; k < cntp; ++k) w16[k] = k < cnt ? table[fields[k] & 31] : int16_t(0);
      for (int64_t n = 0; n < N; ++n) acc[r * N + n] += dot_i16(x16 + n * Kp + k0, w16, cntp);
    }
}

#ifdef __AVX2__
// Few activation rows, 4-bit codes: decode in registers, never through a buffer. The 32
// packed bytes of 64 codes split into low nibbles (codes 0, 2, .., 62) and high nibbles
// (codes 1, 3, .., 63); the activations are permuted the same way once per call.
constexpr int64_t kNibbleBlock = 64;

// x [K] -> |x| and sign(x), permuted to the nibble order, zero padded to Kp (a multiple of
// 64). Returns false if some x is -128 (|x| must fit the int16 pair sums below).
bool permute_for_nibbles(const int8_t* x, int64_t K, int64_t Kp, uint8_t* ax, int8_t* sx) {
  bool ok = true;
  for (int64_t b = 0; b < Kp; b += kNibbleBlock)
    for (int j = 0; j < 32; ++j)
      for (int h = 0; h < 2; ++h) {
        const int64_t k = b + 2 * j + h;
        const int v = k < K ? x[k] : 0;
        ok &= v != -128;
        ax[b + 32 * h + j] = uint8_t(v < 0 ? -v : v);
        sx[b + 32 * h + j] = int8_t(v < 0 ? -1 : (v > 0 ? 1 : 0));
      }
  return ok;
}

// |x| <= 127 times w carrying x's sign (|w| <= 64): a maddubs pair sum is at most 16256,
// so the two halves of a block add in int16 before widening.
#define LOWBIT_NIBBLE_MAC(acc, src)                                                            \
  do {                                                                                         \
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));               \
    const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, m15));                     \
    const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m15)); \
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(xa0, _mm256_sign_epi8(lo, xs0)),   \
                                       _mm256_maddubs_epi16(xa1, _mm256_sign_epi8(hi, xs1))); \
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones16));                                 \
  } while (0)

// acc[r] = sum_k x[k] * w[r, k] for 4 (or fewer) rows of 4-bit codes.
void gemv_nibbles_x4(const uint8_t* ax, const int8_t* sx, int64_t K, const uint8_t* w,
                     int64_t row_bytes, int64_t rows, const int8_t table[16], int64_t acc[4]) {
  const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table)));
  const __m256i ones16 = _mm256_set1_epi16(1), m15 = _mm256_set1_epi8(15);
  // Missing rows of a short block re-read row 0; their sums are dropped.
  const uint8_t* p0 = w;
  const uint8_t* p1 = w + (rows > 1 ? 1 : 0) * row_bytes;
  const uint8_t* p2 = w + (rows > 2 ? 2 : 0) * row_bytes;
  const uint8_t* p3 = w + (rows > 3 ? 3 : 0) * row_bytes;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  const int64_t full = K / kNibbleBlock;  // whole 32-byte groups inside every row
  auto load_x = [&](int64_t blk, __m256i& xa0, __m256i& xa1, __m256i& xs0, __m256i& xs1) {
    const uint8_t* a = ax + kNibbleBlock * blk;
    const int8_t* q = sx + kNibbleBlock * blk;
    xa0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    xa1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 32));
    xs0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    xs1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
  };
  for (int64_t blk = 0; blk < full; ++blk) {
    __m256i xa0, xa1, xs0, xs1;
    load_x(blk, xa0, xa1, xs0, xs1);
    const int64_t off = 32 * blk;
    LOWBIT_NIBBLE_MAC(a0, p0 + off);
    LOWBIT_NIBBLE_MAC(a1, p1 + off);
    LOWBIT_NIBBLE_MAC(a2, p2 + off);
    LOWBIT_NIBBLE_MAC(a3, p3 + off);
  }
  if (full * kNibbleBlock < K) {  // last partial group: the row's remaining bytes, zero padded
    alignas(32) uint8_t t[4][32] = {};
    const size_t n = size_t(row_bytes - 32 * full);
    std::memcpy(t[0], p0 + 32 * full, n);
    std::memcpy(t[1], p1 + 32 * full, n);
    std::memcpy(t[2], p2 + 32 * full, n);
    std::memcpy(t[3], p3 + 32 * full, n);
    __m256i xa0, xa1, xs0, xs1;
    load_x(full, xa0, xa1, xs0, xs1);
    LOWBIT_NIBBLE_MAC(a0, t[0]);
    LOWBIT_NIBBLE_MAC(a1, t[1]);
    LOWBIT_NIBBLE_MAC(a2, t[2]);
    LOWBIT_NIBBLE_MAC(a3, t[3]);
  }
  const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  alignas(16) int32_t t4[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(t4),
                  _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
  for (int r = 0; r < 4; ++r) acc[r] = t4[r];
}
#undef LOWBIT_NIBBLE_MAC
#endif

}  // namespace

bool shift_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
                float x_scale, const double* w_scale, const float* bias, int method, int64_t* acc,
                float* out, int64_t out_stride_n, int64_t out_stride_o) {
  if ((method == 1 && bits > 4) || (method == 2 && bits != 5)) return false;
  const int64_t row_bytes = packed_row_bytes(K, bits), Kp = round_up(K, 32);
  int8_t table[16];
  pow2_int8_table(std::min(bits, 4), table);
  // Few rows of activations with 4-bit codes: the register-decoding GEMV (AVX2 only).
  bool nibbles = false;
  std::vector<uint8_t> ax, xu;
  std::vector<int8_t> sx;
#ifdef __AVX2__
  nibbles = method == 1 && bits == 4 && N < 4 && K < (int64_t(1) << 17);  // int32 lane sums cannot overflow
  if (nibbles) {
    const int64_t Kn = round_up(K, kNibbleBlock);
    ax.resize(size_t(N * Kn));
    sx.resize(size_t(N * Kn));
    for (int64_t n = 0; n < N && nibbles; ++n)
      nibbles = permute_for_nibbles(x + n * K, K, Kn, ax.data() + n * Kn, sx.data() + n * Kn);
  }
#endif
  std::vector<int16_t> x16;
  int16_t table16[32];
  if (method == 2) {  // activations widened to int16 once, rows padded with zeros
    pow2_int16_table(bits, table16);
    x16.assign(size_t(N * Kp), int16_t(0));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) x16[n * Kp + k] = x[n * K + k];
  }
  if (method == 1 && !nibbles) {  // activations offset to unsigned for maddubs, padded with x = 0
    xu.assign(size_t(N * Kp), uint8_t(128));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) xu[n * Kp + k] = uint8_t(int(x[n * K + k]) + 128);
  }
  const int64_t blocks = (O + kRows - 1) / kRows;
  // Below about a million products, waking a second thread costs more than it saves.
  const int nt = threads_for(N * K * O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<uint8_t> fields(static_cast<size_t>(kChunk));
    std::vector<int8_t> w8(method == 1 ? size_t(kRows * kChunk) : 0);
    std::vector<int16_t> w16(method == 2 ? size_t(kChunk) : 0);
    std::vector<int64_t> blk(size_t(kRows * N));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t o0 = b * kRows, rows = std::min(kRows, O - o0);
      std::fill(blk.begin(), blk.end(), 0);
      if (nibbles) {
#ifdef __AVX2__
        for (int64_t n = 0; n < N; ++n) {
          int64_t a4[4];
          const int64_t Kn = round_up(K, kNibbleBlock);
          gemv_nibbles_x4(ax.data() + n * Kn, sx.data() + n * Kn, K, w + o0 * row_bytes, row_bytes, rows, table, a4);
          for (int64_t r = 0; r < rows; ++r) blk[r * N + n] = a4[r];
        }
#endif
      } else if (method == 2)
        int16_block(x16.data(), N, K, Kp, w, row_bytes, bits, table16, o0, rows, blk.data(), fields.data(), w16.data());
      else if (method == 1)
        int8_block(xu.data(), N, K, Kp, w, row_bytes, bits, table, o0, rows, blk.data(), fields.data(), w8.data());
      else
        literal_block(x, N, K, w, row_bytes, bits, o0, rows, blk.data(), fields.data());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t o = o0 + r;
        const double scale = double(x_scale) * w_scale[o];
        for (int64_t n = 0; n < N; ++n) {
          const int64_t a = blk[r * N + n];
          if (acc) acc[n * O + o] = a;
          if (out) {
            const float y = float(double(a) * scale);
            out[n * out_stride_n + o * out_stride_o] = bias ? y + bias[o] : y;
          }
        }
      }
    }
  }
  return true;
}

LOWBIT_ISA_END
