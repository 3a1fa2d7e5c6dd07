// Uniform weight codes times int8 activations, summed exactly in integers (the arithmetic
// is in kernels.inc). Weights are bit-plane rows (int_rows.h): a block of 64 fields is
// decoded with one load, a shift and a mask per plane, in registers.
//   - AVX-512 VNNI: vpdpbusd multiplies the unsigned fields by the signed activations and
//     adds groups of four products into int32 lanes; nothing saturates.
//   - AVX2: vpmaddubsw (unsigned fields x signed activations, pairs summed in int16) then
//     vpmaddwd by 1. A pair is at most 2 * 127 * 128 = 32512 for fields up to 127 (7 bits);
//     8-bit fields are split into nibbles. Up to 6 bits two pairs still fit in int16.
//   - Up to 3 activation rows (1 with AVX2): each tile of 4 weight rows is decoded in
//     registers and used at once. More rows: a job's 16 weight rows are decoded 1024
//     fields at a time into an L1 buffer and reused by a register-blocked micro-kernel
//     over 6 (AVX-512) or 2 (AVX2) activation rows at a time, up to 256 rows per job.
//   - The vpdpbusd accumulators are named variables updated through inline asm (GCC 12
//     otherwise copies them around every product); outputs are written a row at a time.
// The zero point (2^(bits-1) for symmetric codes) is taken out once per output through
// the activation row sums.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/int_rows.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

namespace {

constexpr int64_t kRows = 4;         // weight rows per register tile
constexpr int64_t kTilesPerJob = 4;  // tiles of weight rows per job: 16 output channels
constexpr int64_t kNChunk = 256;     // activation rows per job
constexpr int64_t kKc = 1024;        // fields of a job's rows decoded at a time: 16 KB, in L1

// kTileRows: activation rows per register tile; up to kGemvRows rows decode in registers.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define LOWBIT_INT_ZMM 1
constexpr int kTileRows = 6, kGemvRows = 3;  // 24 accumulators of 32 registers
#elif defined(__AVX2__)
#define LOWBIT_INT_YMM 1
constexpr int kTileRows = 2, kGemvRows = 1;  // 8 accumulators of 16 registers
#else
constexpr int kTileRows = 1, kGemvRows = 0;
#endif

#ifdef LOWBIT_INT_ZMM
// acc += the dot products of 4 unsigned fields u and 4 signed activations x in each int32
// lane (vpdpbusd). Written as asm: GCC 12 copies the accumulator around the intrinsic
// (two register moves per product in these loops, measured 2.5x slower).
inline void dpbusd(__m512i& acc, __m512i u, __m512i x) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x)); }

// 32 bytes -> 64 4-bit fields: low nibbles are fields 0..31, high nibbles 32..63.
inline __m512i zplane4(const uint8_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m = _mm256_set1_epi8(15);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}
// 16 bytes -> 64 2-bit fields: 128-bit lane q takes bits [2q, 2q + 2) of every byte.
inline __m512i zplane2(const uint8_t* p) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0)), _mm512_set1_epi8(3));
}
// 8 bytes -> 64 1-bit fields: 64-bit lane q takes bit q of every byte.
inline __m512i zplane1(const uint8_t* p) {
  long long b;
  std::memcpy(&b, p, 8);
  return _mm512_and_si512(_mm512_srlv_epi64(_mm512_set1_epi64(b), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)),
                          _mm512_set1_epi8(1));
}
// The planes' bits are below 8 - shift, so 16-bit shifts never carry across bytes.
template <int B> inline __m512i zdecode(const uint8_t* p) {
  if constexpr (B == 8) return _mm512_loadu_si512(p);
  else if constexpr (B == 2) return zplane2(p);
  else if constexpr (B == 3) return _mm512_or_si512(zplane2(p), _mm512_slli_epi16(zplane1(p + 16), 2));
  else if constexpr (B == 4) return zplane4(p);
  else if constexpr (B == 5) return _mm512_or_si512(zplane4(p), _mm512_slli_epi16(zplane1(p + 32), 4));
  else if constexpr (B == 6) return _mm512_or_si512(zplane4(p), _mm512_slli_epi16(zplane2(p + 32), 4));
  else
    return _mm512_or_si512(_mm512_or_si512(zplane4(p), _mm512_slli_epi16(zplane2(p + 32), 4)),
                           _mm512_slli_epi16(zplane1(p + 48), 6));
}
// The 16 int32 lanes summed in int64 (the lanes themselves cannot overflow: K <= 2^19).
inline int64_t zsum(__m512i a) {
  const __m512i w = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(a)),
                                     _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(a, 1)));
  return _mm512_reduce_add_epi64(w);
}
// out[r * ld + m] += the lane sum of a[m][r] for m < rows <= 4. Up to kTreeMaxK fields
// every total fits in int32 (65536 * 128 * 255 < 2^31), so 16 accumulators reduce
// together in an add tree.
constexpr int64_t kTreeMaxK = int64_t(1) << 16;
inline void zreduce(const __m512i (&a)[4][kRows], int rows, int64_t Kp, int64_t* out, int64_t ld) {
  if (Kp > kTreeMaxK) {
    for (int m = 0; m < rows; ++m)
      for (int r = 0; r < kRows; ++r) out[r * ld + m] += zsum(a[m][r]);
    return;
  }
  __m512i b[8], c[4];
  for (int j = 0; j < 8; ++j) {  // accumulators 2j, 2j + 1: row j / 2
    const __m512i a0 = a[j / 2][2 * (j % 2)], a1 = a[j / 2][2 * (j % 2) + 1];
    b[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  }
  for (int k = 0; k < 4; ++k)
    c[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * k], b[2 * k + 1]), _mm512_unpackhi_epi64(b[2 * k], b[2 * k + 1]));
  // c[k]'s 128-bit lane l holds lane l's part of accumulators 4k .. 4k + 3: sum the lanes.
  const __m512i e0 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88), _mm512_shuffle_i32x4(c[0], c[1], 0xDD));
  const __m512i e1 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2], c[3], 0x88), _mm512_shuffle_i32x4(c[2], c[3], 0xDD));
  const __m512i f = _mm512_add_epi32(_mm512_shuffle_i32x4(e0, e1, 0x88), _mm512_shuffle_i32x4(e0, e1, 0xDD));
  alignas(64) int32_t t[16];
  _mm512_store_si512(t, f);
  for (int m = 0; m < rows; ++m)
    for (int r = 0; r < kRows; ++r) out[r * ld + m] += t[m * kRows + r];
}

// out[r * ld + m] += sum_k x[m][k] u[r][k] over `blocks` blocks of 64, u from
// weights(r, b). The 4 x MR accumulators are named variables: an array of them, updated
// through the asm above, ends up in memory.
template <int MR, class Weights>
void zdots(const int8_t* x, int64_t xs, int64_t blocks, Weights weights, int64_t* out, int64_t ld) {
  static_assert(MR >= 1 && MR <= 6, "zdots takes 1 to 6 activation rows");
  const __m512i z = _mm512_setzero_si512();
  __m512i a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
  __m512i a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
  __m512i a40 = z, a41 = z, a42 = z, a43 = z, a50 = z, a51 = z, a52 = z, a53 = z;
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* xb = x + b * kIntBlock;
    const __m512i x0 = _mm512_loadu_si512(xb);
    const __m512i x1 = MR > 1 ? _mm512_loadu_si512(xb + xs) : z;
    const __m512i x2 = MR > 2 ? _mm512_loadu_si512(xb + 2 * xs) : z;
    const __m512i x3 = MR > 3 ? _mm512_loadu_si512(xb + 3 * xs) : z;
    const __m512i x4 = MR > 4 ? _mm512_loadu_si512(xb + 4 * xs) : z;
    const __m512i x5 = MR > 5 ? _mm512_loadu_si512(xb + 5 * xs) : z;
#define LOWBIT_ROW(r)                           \
  {                                             \
    const __m512i u = weights(r, b);            \
    dpbusd(a0##r, u, x0);                       \
    if constexpr (MR > 1) dpbusd(a1##r, u, x1); \
    if constexpr (MR > 2) dpbusd(a2##r, u, x2); \
    if constexpr (MR > 3) dpbusd(a3##r, u, x3); \
    if constexpr (MR > 4) dpbusd(a4##r, u, x4); \
    if constexpr (MR > 5) dpbusd(a5##r, u, x5); \
  }
    LOWBIT_ROW(0) LOWBIT_ROW(1) LOWBIT_ROW(2) LOWBIT_ROW(3)
#undef LOWBIT_ROW
  }
  const int64_t Kp = blocks * kIntBlock;
  const __m512i lo[4][kRows] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
  zreduce(lo, MR < 4 ? MR : 4, Kp, out, ld);
  if constexpr (MR > 4) {
    const __m512i hi[4][kRows] = {{a40, a41, a42, a43}, {a50, a51, a52, a53}, {z, z, z, z}, {z, z, z, z}};
    zreduce(hi, MR - 4, Kp, out + 4, ld);
  }
}

// The weights decoded in registers and used at once.
template <int B, int MR>
void gemv_tile(const int8_t* x, int64_t xs, const uint8_t* const* w, int64_t blocks, int64_t* out, int64_t ld) {
  zdots<MR>(x, xs, blocks, [w](int r, int64_t b) { return zdecode<B>(w[r] + b * 8 * B); }, out, ld);
}

// Blocks [b0, b0 + blocks) of 4 weight rows, decoded into ub [kRows x blocks * 64].
template <int B>
void decode_tile(const uint8_t* const* w, int64_t b0, int64_t blocks, uint8_t* ub) {
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b)
      _mm512_storeu_si512(ub + (r * blocks + b) * kIntBlock, zdecode<B>(w[r] + (b0 + b) * 8 * B));
}

// The same sums from a decoded tile ub [kRows x kc] (kc fields a row).
template <int B, int MR>
void buffer_tile(const int8_t* x, int64_t xs, const uint8_t* ub, int64_t kc, int64_t* out, int64_t ld) {
  zdots<MR>(x, xs, kc / kIntBlock, [ub, kc](int r, int64_t b) { return _mm512_loadu_si512(ub + r * kc + b * kIntBlock); },
            out, ld);
}
#endif  // LOWBIT_INT_ZMM

#ifdef LOWBIT_INT_YMM
// As the AVX-512 planes, a block as two halves: fields 0..31 and 32..63.
struct Half2 {
  __m256i lo, hi;
};
inline Half2 yplane4(const uint8_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m = _mm256_set1_epi8(15);
  return {_mm256_and_si256(v, m), _mm256_and_si256(_mm256_srli_epi16(v, 4), m)};
}
inline Half2 yplane2(const uint8_t* p) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i m = _mm256_set1_epi8(3);
  return {_mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 2, 2)), m),
          _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 4, 6, 6)), m)};
}
inline Half2 yplane1(const uint8_t* p) {
  long long b;
  std::memcpy(&b, p, 8);
  const __m256i v = _mm256_set1_epi64x(b), m = _mm256_set1_epi8(1);
  return {_mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 1, 2, 3)), m),
          _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 5, 6, 7)), m)};
}
inline Half2 yor(Half2 a, Half2 b, int s) {
  return {_mm256_or_si256(a.lo, _mm256_slli_epi16(b.lo, s)), _mm256_or_si256(a.hi, _mm256_slli_epi16(b.hi, s))};
}
template <int B> inline Half2 ydecode(const uint8_t* p) {
  if constexpr (B == 8)
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
  else if constexpr (B == 2) return yplane2(p);
  else if constexpr (B == 3) return yor(yplane2(p), yplane1(p + 16), 2);
  else if constexpr (B == 4) return yplane4(p);
  else if constexpr (B == 5) return yor(yplane4(p), yplane1(p + 32), 4);
  else if constexpr (B == 6) return yor(yplane4(p), yplane2(p + 32), 4);
  else return yor(yor(yplane4(p), yplane2(p + 32), 4), yplane1(p + 48), 6);
}
// acc += the products of one block (fields u, activations x), in int32 lanes.
template <int B> inline __m256i ydot(__m256i acc, Half2 u, __m256i x0, __m256i x1) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (B <= 6) {  // fields <= 63: two pair sums of at most 16128 each fit in int16
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(u.lo, x0), _mm256_maddubs_epi16(u.hi, x1));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
  } else if constexpr (B == 7) {
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u.lo, x0), ones),
                                                  _mm256_madd_epi16(_mm256_maddubs_epi16(u.hi, x1), ones)));
  } else {  // u = 16 h + l with nibbles h, l
    const __m256i m = _mm256_set1_epi8(15);
    const __m256i l = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(u.lo, m), x0),
                                       _mm256_maddubs_epi16(_mm256_and_si256(u.hi, m), x1));
    const __m256i h = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(u.lo, 4), m), x0),
                                       _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(u.hi, 4), m), x1));
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(l, ones),
                                                  _mm256_madd_epi16(h, _mm256_set1_epi16(16))));
  }
}
inline int64_t ysum(__m256i a) {
  const __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a)),
                                     _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a, 1)));
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}
// As zreduce: a row's 4 accumulators in one horizontal-add tree when the totals fit in int32.
constexpr int64_t kTreeMaxK = int64_t(1) << 16;
template <int MR> inline void yreduce(__m256i (&acc)[MR][kRows], int64_t Kp, int64_t* out, int64_t ld) {
  for (int m = 0; m < MR; ++m) {
    if (Kp > kTreeMaxK) {
      for (int r = 0; r < kRows; ++r) out[r * ld + m] += ysum(acc[m][r]);
      continue;
    }
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[m][0], acc[m][1]), _mm256_hadd_epi32(acc[m][2], acc[m][3]));
    alignas(16) int32_t t[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
    for (int r = 0; r < kRows; ++r) out[r * ld + m] += t[r];
  }
}

template <int B, int MR>
void gemv_tile(const int8_t* x, int64_t xs, const uint8_t* const* w, int64_t blocks, int64_t* out, int64_t ld) {
  __m256i acc[MR][kRows];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) acc[m][r] = _mm256_setzero_si256();
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i x0[MR], x1[MR];
    for (int m = 0; m < MR; ++m) {
      x0[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + b * kIntBlock));
      x1[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + b * kIntBlock + 32));
    }
    for (int r = 0; r < kRows; ++r) {
      const Half2 u = ydecode<B>(w[r] + b * 8 * B);
      for (int m = 0; m < MR; ++m) acc[m][r] = ydot<B>(acc[m][r], u, x0[m], x1[m]);
    }
  }
  yreduce<MR>(acc, blocks * kIntBlock, out, ld);
}

template <int B>
void decode_tile(const uint8_t* const* w, int64_t b0, int64_t blocks, uint8_t* ub) {
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const Half2 u = ydecode<B>(w[r] + (b0 + b) * 8 * B);
      uint8_t* dst = ub + (r * blocks + b) * kIntBlock;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), u.lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), u.hi);
    }
}

template <int B, int MR>
void buffer_tile(const int8_t* x, int64_t xs, const uint8_t* ub, int64_t Kp, int64_t* out, int64_t ld) {  // Kp: kc
  __m256i acc[MR][kRows];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) acc[m][r] = _mm256_setzero_si256();
  for (int64_t k = 0; k < Kp; k += kIntBlock) {
    __m256i x0[MR], x1[MR];
    for (int m = 0; m < MR; ++m) {
      x0[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + k));
      x1[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + k + 32));
    }
    for (int r = 0; r < kRows; ++r) {
      const Half2 u = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ub + r * Kp + k)),
                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ub + r * Kp + k + 32))};
      for (int m = 0; m < MR; ++m) acc[m][r] = ydot<B>(acc[m][r], u, x0[m], x1[m]);
    }
  }
  yreduce<MR>(acc, Kp, out, ld);
}
#endif  // LOWBIT_INT_YMM

#if !defined(LOWBIT_INT_ZMM) && !defined(LOWBIT_INT_YMM)
template <int B>
void decode_tile(const uint8_t* const* w, int64_t b0, int64_t blocks, uint8_t* ub) {
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) decode_fields(w[r] + (b0 + b) * 8 * B, B, ub + (r * blocks + b) * kIntBlock);
}

template <int B, int MR>
void buffer_tile(const int8_t* x, int64_t xs, const uint8_t* ub, int64_t Kp, int64_t* out, int64_t ld) {
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) {
      int32_t s = 0;  // at most 2^14 products of |x u| <= 32640: no int32 overflow
      int64_t total = 0;
      for (int64_t k0 = 0; k0 < Kp; k0 += 1 << 14) {
        s = 0;
        for (int64_t k = k0; k < std::min(Kp, k0 + (int64_t(1) << 14)); ++k)
          s += int32_t(x[m * xs + k]) * int32_t(ub[r * Kp + k]);
        total += s;
      }
      out[r * ld + m] += total;
    }
}
#endif

// Copies a row of K codes into dst, zero padded to Kp, and returns its sum (|sum| <=
// 128 * 2^19: int32). Sums come from the source, not from dst: loading 64 bytes just
// written as a shorter copy would stall on store forwarding.
inline int32_t copy_row(const int8_t* src, int64_t K, int8_t* dst, int64_t Kp) {
#if defined(LOWBIT_INT_ZMM)
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i a = _mm512_setzero_si512();
  for (int64_t k = 0; k < Kp; k += kIntBlock) {
    const int64_t left = K - k;
    const __mmask64 m = left >= 64 ? ~__mmask64(0) : left <= 0 ? __mmask64(0) : (__mmask64(1) << left) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(m, src + k);
    _mm512_storeu_si512(dst + k, v);
    a = _mm512_dpbusd_epi32(a, ones, v);
  }
  return _mm512_reduce_add_epi32(a);
#else
  std::memcpy(dst, src, size_t(K));
  std::memset(dst + K, 0, size_t(Kp - K));
  int64_t k = 0;
  int32_t s = 0;
#if defined(LOWBIT_INT_YMM)
  const __m256i ones = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i a = _mm256_setzero_si256();
  for (; k + 32 <= K; k += 32)
    a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k))), ones16));
  const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
  s = _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
#endif
  for (; k < K; ++k) s += src[k];
  return s;
#endif
}

// The arguments of one call, shared by the threads.
struct Problem {
  const int8_t* x;        // [N x Kp], zero padded
  const int32_t* rowsum;  // [N]
  int64_t N, Kp;
  const uint8_t* w;
  int64_t row_bytes, O;
  const int32_t* zero_point;
  const float* x_scale;
  const double* w_scale;
  const float* bias;
  int64_t* acc;
  float* out;
  int64_t sn, so;
};

// tile[r * ld + n] += sum_k x[n0 + n][k0 + k] u[r][k] (k < kc) for n < count.
template <int B, int MR>
void tiles_from_buffer(const Problem& p, int64_t n0, int64_t count, int64_t k0, int64_t kc, const uint8_t* ub,
                       int64_t* tile, int64_t ld) {
  int64_t n = 0;
  for (; n + MR <= count; n += MR) buffer_tile<B, MR>(p.x + (n0 + n) * p.Kp + k0, p.Kp, ub, kc, tile + n, ld);
  if constexpr (MR > 1) {
    if (count - n > 0) tiles_from_buffer<B, MR - 1>(p, n0 + n, count - n, k0, kc, ub, tile + n, ld);
  }
}

// tile[r * count + n] = the sums of weight rows w[r] (r < 4 * tiles) with activation rows
// n0 .. n0 + count. Several activation rows: the weights are decoded kKc fields at a time
// into ub, for every row of the job, and each group of activation rows then meets every
// decoded tile while it is in L1.
template <int B>
void job_products(const Problem& p, const uint8_t* const* w, int64_t tiles, int64_t n0, int64_t count, uint8_t* ub,
                  int64_t* tile) {
  std::fill(tile, tile + kRows * tiles * count, int64_t(0));
#if defined(LOWBIT_INT_ZMM) || defined(LOWBIT_INT_YMM)
  if (count <= kGemvRows) {  // too few rows to pay for a decoded buffer: decode in registers
    const int8_t* x = p.x + n0 * p.Kp;
    const int64_t blocks = p.Kp / kIntBlock;
    for (int64_t t = 0; t < tiles; ++t) {
      int64_t* out = tile + t * kRows * count;
      if (count == 1) gemv_tile<B, 1>(x, p.Kp, w + t * kRows, blocks, out, count);
      if constexpr (kGemvRows > 1) {
        if (count == 2) gemv_tile<B, 2>(x, p.Kp, w + t * kRows, blocks, out, count);
        if (count == 3) gemv_tile<B, 3>(x, p.Kp, w + t * kRows, blocks, out, count);
      }
    }
    return;
  }
#endif
  for (int64_t k0 = 0; k0 < p.Kp; k0 += kKc) {
    const int64_t kc = std::min(kKc, p.Kp - k0);
    for (int64_t t = 0; t < tiles; ++t) decode_tile<B>(w + t * kRows, k0 / kIntBlock, kc / kIntBlock, ub + t * kRows * kc);
    for (int64_t n = 0; n < count; n += kTileRows) {
      const int64_t c = std::min<int64_t>(kTileRows, count - n);
      for (int64_t t = 0; t < tiles; ++t)
        tiles_from_buffer<B, kTileRows>(p, n0 + n, c, k0, kc, ub + t * kRows * kc, tile + t * kRows * count + n, count);
    }
  }
}

// Outputs (n0 .. n0 + count, o) from the sums t[i] (the loops vectorize across i).
void store_row(const Problem& p, int64_t o, int64_t n0, int64_t count, const int64_t* t) {
  const int64_t z = p.zero_point[o];
  const int32_t* rs = p.rowsum + n0;
  if (p.acc)
    for (int64_t i = 0; i < count; ++i) p.acc[(n0 + i) * p.O + o] = t[i] - z * rs[i];
  if (!p.out) return;
  const double ws = p.w_scale[o];
  const float* xs = p.x_scale + n0;
  float* dst = p.out + n0 * p.sn + o * p.so;
  if (p.bias) {
    const float b = p.bias[o];
    for (int64_t i = 0; i < count; ++i) dst[i * p.sn] = float(double(t[i] - z * rs[i]) * (double(xs[i]) * ws)) + b;
  } else {
    for (int64_t i = 0; i < count; ++i) dst[i * p.sn] = float(double(t[i] - z * rs[i]) * (double(xs[i]) * ws));
  }
}

// The same for outputs laid out row-major (out[n * O + o]): rows o0 .. o0 + rows of each n
// are adjacent, so they are written together (one output row at a time, not one column).
void store_rows_row_major(const Problem& p, int64_t o0, int64_t rows, int64_t n0, int64_t count, const int64_t* t) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = n0 + i, rs = p.rowsum[n];
    if (p.acc)
      for (int64_t r = 0; r < rows; ++r) p.acc[n * p.O + o0 + r] = t[r * count + i] - int64_t(p.zero_point[o0 + r]) * rs;
    if (!p.out) continue;
    const double xs = double(p.x_scale[n]);
    float* dst = p.out + n * p.sn + o0 * p.so;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = o0 + r;
      const float y = float(double(t[r * count + i] - int64_t(p.zero_point[o]) * rs) * (xs * p.w_scale[o]));
      dst[r * p.so] = p.bias ? y + p.bias[o] : y;
    }
  }
}

template <int B> void run(const Problem& p) {
  constexpr int64_t kJobRows = kRows * kTilesPerJob;
  const int64_t blocks = (p.O + kJobRows - 1) / kJobRows, chunks = (p.N + kNChunk - 1) / kNChunk;
  // Below about a million products, waking a second thread costs more than it saves.
  const int nt = threads_for(p.N * p.Kp * p.O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
  // Jobs handed out in runs of about 2^18 products: a thread that shares its core with
  // another process takes fewer of them instead of holding the others up.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / (kJobRows * std::min(p.N, kNChunk) * p.Kp));
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<uint8_t> ub(size_t(kJobRows * std::min(kKc, p.Kp)));
    std::vector<int64_t> tile(size_t(std::min(p.N, kNChunk) * kJobRows));
#pragma omp for schedule(dynamic, grain)
    for (int64_t job = 0; job < chunks * blocks; ++job) {
      const int64_t n0 = job / blocks * kNChunk, count = std::min(kNChunk, p.N - n0);
      const int64_t o0 = job % blocks * kJobRows, rows = std::min(kJobRows, p.O - o0);
      const uint8_t* w[kJobRows];
      for (int64_t r = 0; r < kJobRows; ++r) w[r] = p.w + (o0 + (r < rows ? r : 0)) * p.row_bytes;  // spare rows: dropped
      job_products<B>(p, w, (rows + kRows - 1) / kRows, n0, count, ub.data(), tile.data());
      if (p.sn == 1 || count == 1)
        for (int64_t r = 0; r < rows; ++r) store_row(p, o0 + r, n0, count, tile.data() + r * count);
      else
        store_rows_row_major(p, o0, rows, n0, count, tile.data());
    }
  }
}

}  // namespace

bool int_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
              const int32_t* zero_point, const float* x_scale, const double* w_scale, const float* bias,
              int64_t* acc, float* out, int64_t out_stride_n, int64_t out_stride_o) {
  if (bits < 2 || bits > 8 || K > kIntMaxK || N <= 0 || K <= 0 || O <= 0) return false;
  const int64_t Kp = int_row_fields(K);
  const std::unique_ptr<int8_t[]> xp(new int8_t[size_t(N * Kp)]);  // every byte written by copy_row
  std::vector<int32_t> rowsum(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) rowsum[size_t(n)] = copy_row(x + n * K, K, xp.get() + n * Kp, Kp);
  const Problem p{xp.get(), rowsum.data(), N, Kp, w, int_row_bytes(K, bits), O, zero_point, x_scale,
                  w_scale, bias, acc, out, out_stride_n, out_stride_o};
  switch (bits) {
    case 2: run<2>(p); break;
    case 3: run<3>(p); break;
    case 4: run<4>(p); break;
    case 5: run<5>(p); break;
    case 6: run<6>(p); break;
    case 7: run<7>(p); break;
    default: run<8>(p); break;
  }
  return true;
}

LOWBIT_ISA_END
