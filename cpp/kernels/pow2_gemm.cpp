// Power-of-two weights on bit-plane rows (int_rows.h) times int8 activations, exact in
// integers (the arithmetic is shift_gemm's, see kernels.inc). A weight sign(c) 2^e with
// e in [0, E] (E = 6 up to 4 bits, 14 at 5 bits, 30 from 6 bits) is split into bands of 7
// exponents counted from the top, e = base_h + l with base_h = max(0, E - 6 - 7 h), and each
// band is an unsigned byte 64 + sign(c) 2^l (64 when the weight is in another band), so the
// integer kernels' u8 x s8 products apply:
//   acc = sum_h 2^(base_h) (sum_k x_k band_h(k) - 64 sum_k x_k).
// Real weights sit mostly in the top band or two: the buffered path skips a band of a tile
// chunk in which no weight falls (its sum is then 64 sum_k x_k, from the chunk's row sums).
// Up to 4 bits there is one band (the weight itself plus 64), at 5 bits three, from 6 bits
// five. A block of 64 fields is decoded in registers (int_gemm's planes) and mapped to its
// bands with one table look-up per band:
//   - AVX-512 VBMI: vpermb on a 64-entry table (7- and 8-bit fields are first mapped to
//     64 indices, fields outside the exponent window read as 64), products with vpdpbusd;
//   - AVX2: vpshufb on a 16-entry table up to 4 bits; from 5 bits the exponent and sign are
//     computed in bytes, each band a shuffle of the powers 2^0..2^6; vpmaddubsw products
//     (a pair of 128 x 128 fits int16) widened with vpmaddwd;
//   - portable: the fields through an integer table.
// One activation row (AVX-512): each tile of 4 weight rows is decoded in registers and used
// at once. More rows: a job's rows are decoded a chunk at a time into an L1 buffer of band
// rows, reused by a register-blocked micro-kernel over 6 (AVX-512) or 2 (AVX2) x rows.
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

constexpr int64_t kRows = 4;         // real weight rows per tile
[[maybe_unused]] constexpr int64_t kTilesPerJob = 4;  // 16 output channels per job
[[maybe_unused]] constexpr int64_t kNChunk = 256;     // activation rows per job
[[maybe_unused]] constexpr int kOffset = 64;          // a band byte is 64 + sign * 2^l

[[maybe_unused]] constexpr int bands_of(int bits) { return bits <= 4 ? 1 : bits == 5 ? 3 : 5; }
// The largest exponent E and the lowest exponent of band h.
[[maybe_unused]] constexpr int top_exponent(int bits) { return bits <= 4 ? (1 << (bits - 1)) - 2 : bits == 5 ? 14 : 30; }
[[maybe_unused]] constexpr int band_base(int bits, int h) {
  return top_exponent(bits) - 6 - 7 * h > 0 ? top_exponent(bits) - 6 - 7 * h : 0;
}
// Fields decoded per chunk of the buffered path: 16 rows x bands x kc bytes (16 KB for one
// band; with more, only the bands in use are read back). Measured at batch 64: 1024 beat
// 512 and 256 at every band count.
[[maybe_unused]] constexpr int64_t chunk_of(int) { return 1024; }

// The 64-entry index of field u for the band tables: u itself up to 6 bits; from 7 bits
// (u + 32) mod 2^bits, which is below 64 exactly for the fields inside the window.
[[maybe_unused]] inline int index_of(int u, int bits) { return bits <= 6 ? u : (u + 32) & ((1 << bits) - 1); }

// tables[h * 64 + j]: band h's byte for the fields of index j; band_id[j]: the band of the
// weight of index j (0 for weights that read as 0).
[[maybe_unused]] void band_tables(int bits, uint8_t* tables, uint8_t* band_id) {
  const int nb = bands_of(bits);
  std::fill(tables, tables + 64 * nb, uint8_t(kOffset));
  std::fill(band_id, band_id + 64, uint8_t(0));
  for (int u = 0; u < (1 << bits); ++u) {
    const int64_t v = pow2_weight(u, bits);
    if (v == 0) continue;
    const int64_t a = v < 0 ? -v : v;
    const int e = __builtin_ctzll(uint64_t(a));
    int h = 0;
    while (e < band_base(bits, h)) ++h;
    const int l = e - band_base(bits, h);
    tables[h * 64 + index_of(u, bits)] = uint8_t(kOffset + (v < 0 ? -(1 << l) : (1 << l)));
    band_id[index_of(u, bits)] = uint8_t(h);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#define LOWBIT_POW2_ZMM 1
constexpr int kTileRows = 6;
inline void dpbusd(__m512i& acc, __m512i u, __m512i x) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x)); }

inline __m512i zplane4(const uint8_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m = _mm256_set1_epi8(15);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}
inline __m512i zplane2(const uint8_t* p) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0)), _mm512_set1_epi8(3));
}
inline __m512i zplane1(const uint8_t* p) {
  long long b;
  std::memcpy(&b, p, 8);
  return _mm512_and_si512(_mm512_srlv_epi64(_mm512_set1_epi64(b), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)),
                          _mm512_set1_epi8(1));
}
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
struct ZTables {
  __m512i t[5];
  __m512i band_id;
};
// The bands of one block of 64 fields.
template <int B> inline void zbands(const uint8_t* p, const ZTables& T, __m512i* out) {
  constexpr int NB = bands_of(B);
  const __m512i u = zdecode<B>(p);
  if constexpr (B <= 6) {
    for (int h = 0; h < NB; ++h) out[h] = _mm512_permutexvar_epi8(u, T.t[h]);
  } else {
    __m512i j = _mm512_add_epi8(u, _mm512_set1_epi8(32));
    if constexpr (B == 7) j = _mm512_and_si512(j, _mm512_set1_epi8(127));
    const __mmask64 in = _mm512_cmplt_epu8_mask(j, _mm512_set1_epi8(64));
    const __m512i off = _mm512_set1_epi8(kOffset);
    for (int h = 0; h < NB; ++h) out[h] = _mm512_mask_permutexvar_epi8(off, in, j, T.t[h]);
  }
}
inline int64_t zsum(__m512i a) {
  const __m512i w = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(a)),
                                     _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(a, 1)));
  return _mm512_reduce_add_epi64(w);
}

// One activation row: out[(h * 4 + r)] = sum_k x[k] band_h(row r, k) over `blocks` blocks.
// xsum[b]: the sum of x over block b; a band skipped for a block adds 64 xsum[b] instead.
template <int B>
void gemv_tile(const int8_t* x, const int32_t* xsum, const uint8_t* const* w, int64_t blocks, const ZTables& T,
               int64_t* out) {
  constexpr int NB = bands_of(B);
  __m512i a[NB][kRows];
#pragma GCC unroll 8
  for (int h = 0; h < NB; ++h)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) a[h][r] = _mm512_setzero_si512();
  int64_t skipped[kRows] = {0, 0, 0, 0};
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512i x0 = _mm512_loadu_si512(x + b * kIntBlock);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      // The top two bands always; the lower ones only when a field of this block is in them
      // (rare in real weights: they are 2^-13 and more below a row's largest level).
      const __m512i u = zdecode<B>(w[r] + b * 8 * B);
      __m512i j = u;
      __mmask64 in = ~__mmask64(0);
      if constexpr (B >= 7) {
        j = _mm512_add_epi8(u, _mm512_set1_epi8(32));
        if constexpr (B == 7) j = _mm512_and_si512(j, _mm512_set1_epi8(127));
        in = _mm512_cmplt_epu8_mask(j, _mm512_set1_epi8(64));
      }
      const __m512i off = _mm512_set1_epi8(kOffset);
      auto band = [&](int h) {
        if constexpr (B <= 6) return _mm512_permutexvar_epi8(j, T.t[h]);
        else return _mm512_mask_permutexvar_epi8(off, in, j, T.t[h]);
      };
      a[0][r] = _mm512_dpbusd_epi32(a[0][r], band(0), x0);
      if constexpr (NB > 1) {
        a[1][r] = _mm512_dpbusd_epi32(a[1][r], band(1), x0);
        const __mmask64 low = _mm512_mask_cmpgt_epu8_mask(in, _mm512_permutexvar_epi8(j, T.band_id), _mm512_set1_epi8(1));
        if (low) {
#pragma GCC unroll 8
          for (int h = 2; h < NB; ++h) a[h][r] = _mm512_dpbusd_epi32(a[h][r], band(h), x0);
        } else {
          skipped[r] += xsum[b];
        }
      }
    }
  }
  for (int h = 0; h < NB; ++h)
    for (int r = 0; r < kRows; ++r) out[h * kRows + r] = zsum(a[h][r]) + (h >= 2 ? int64_t(kOffset) * skipped[r] : 0);
}

// Band rows of 4 weight rows, blocks [b0, b0 + blocks): ub[(h * 4 + r) * kc + k].
template <int B>
void decode_tile(const uint8_t* const* w, int64_t b0, int64_t blocks, const ZTables& T, uint8_t* ub, bool* used) {
  constexpr int NB = bands_of(B);
  const int64_t kc = blocks * kIntBlock;
  const __m512i off = _mm512_set1_epi8(kOffset);
  __mmask64 any[NB] = {};
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      __m512i v[NB];
      zbands<B>(w[r] + (b0 + b) * 8 * B, T, v);
      for (int h = 0; h < NB; ++h) {
        _mm512_storeu_si512(ub + (h * kRows + r) * kc + b * kIntBlock, v[h]);
        if constexpr (NB > 1) any[h] |= _mm512_cmpneq_epi8_mask(v[h], off);
      }
    }
  for (int h = 0; h < NB; ++h) used[h] = NB == 1 || any[h] != 0;
}

// out[r * ld + m] += the int32 lane sum of a[m][r] for m < rows <= 4 (int_gemm's tree).
inline void zreduce(const __m512i (&a)[4][kRows], int rows, int64_t* out, int64_t ld) {
  __m512i b[8], c[4];
  for (int j = 0; j < 8; ++j) {
    const __m512i a0 = a[j / 2][2 * (j % 2)], a1 = a[j / 2][2 * (j % 2) + 1];
    b[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  }
  for (int k = 0; k < 4; ++k)
    c[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * k], b[2 * k + 1]), _mm512_unpackhi_epi64(b[2 * k], b[2 * k + 1]));
  const __m512i e0 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88), _mm512_shuffle_i32x4(c[0], c[1], 0xDD));
  const __m512i e1 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2], c[3], 0x88), _mm512_shuffle_i32x4(c[2], c[3], 0xDD));
  const __m512i f = _mm512_add_epi32(_mm512_shuffle_i32x4(e0, e1, 0x88), _mm512_shuffle_i32x4(e0, e1, 0xDD));
  alignas(64) int32_t t[16];
  _mm512_store_si512(t, f);
  for (int m = 0; m < rows; ++m)
    for (int r = 0; r < kRows; ++r) out[r * ld + m] += t[m * kRows + r];
}

// out[r * ld + m] += sum_k x[m][k] ub[r][k] for 4 band rows and MR activation rows.
template <int MR>
void buffer_tile(const int8_t* x, int64_t xs, const uint8_t* ub, int64_t kc, int64_t* out, int64_t ld) {
  const __m512i z = _mm512_setzero_si512();
  __m512i a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
  __m512i a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
  __m512i a40 = z, a41 = z, a42 = z, a43 = z, a50 = z, a51 = z, a52 = z, a53 = z;
  for (int64_t k = 0; k < kc; k += kIntBlock) {
    const int8_t* xb = x + k;
    const __m512i x0 = _mm512_loadu_si512(xb);
    const __m512i x1 = MR > 1 ? _mm512_loadu_si512(xb + xs) : z;
    const __m512i x2 = MR > 2 ? _mm512_loadu_si512(xb + 2 * xs) : z;
    const __m512i x3 = MR > 3 ? _mm512_loadu_si512(xb + 3 * xs) : z;
    const __m512i x4 = MR > 4 ? _mm512_loadu_si512(xb + 4 * xs) : z;
    const __m512i x5 = MR > 5 ? _mm512_loadu_si512(xb + 5 * xs) : z;
#define LOWBIT_ROW(r)                                        \
  {                                                          \
    const __m512i u = _mm512_loadu_si512(ub + (r) * kc + k); \
    dpbusd(a0##r, u, x0);                                    \
    if constexpr (MR > 1) dpbusd(a1##r, u, x1);              \
    if constexpr (MR > 2) dpbusd(a2##r, u, x2);              \
    if constexpr (MR > 3) dpbusd(a3##r, u, x3);              \
    if constexpr (MR > 4) dpbusd(a4##r, u, x4);              \
    if constexpr (MR > 5) dpbusd(a5##r, u, x5);              \
  }
    LOWBIT_ROW(0) LOWBIT_ROW(1) LOWBIT_ROW(2) LOWBIT_ROW(3)
#undef LOWBIT_ROW
  }
  // A chunk's totals are below 1024 * 128 * 128 = 2^24: the 16 accumulators of 4 rows
  // reduce together in int32 (one shuffle tree).
  const __m512i lo[4][kRows] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
  zreduce(lo, MR < 4 ? MR : 4, out, ld);
  if constexpr (MR > 4) {
    const __m512i hi[4][kRows] = {{a40, a41, a42, a43}, {a50, a51, a52, a53}, {z, z, z, z}, {z, z, z, z}};
    zreduce(hi, MR - 4, out + 4, ld);
  }
}
#elif defined(__AVX2__)
#define LOWBIT_POW2_YMM 1
constexpr int kTileRows = 2;
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
struct YTables {
  __m256i t16;  // up to 4 bits: 64 + the weight of each field
};
// 32 fields -> their band bytes. From 5 bits: e (0xFF outside the window) and the sign.
template <int B> inline void ybands32(__m256i u, const YTables& T, __m256i* out) {
  constexpr int NB = bands_of(B);
  if constexpr (B <= 4) {
    out[0] = _mm256_shuffle_epi8(T.t16, u);
  } else {
    const __m256i c = _mm256_sub_epi8(u, _mm256_set1_epi8(char(1 << (B - 1))));  // B = 8 wraps to the signed code
    const __m256i a = _mm256_abs_epi8(c), klo = _mm256_set1_epi8(char(pow2_lowest_code(B)));
    const __m256i inside = _mm256_andnot_si256(_mm256_cmpeq_epi8(u, _mm256_setzero_si256()),
                                               _mm256_cmpeq_epi8(_mm256_max_epu8(a, klo), a));
    const __m256i e = _mm256_or_si256(_mm256_sub_epi8(a, klo), _mm256_andnot_si256(inside, _mm256_set1_epi8(-1)));
    const __m256i fifteen = _mm256_set1_epi8(15), off = _mm256_set1_epi8(kOffset);
    for (int h = 0; h < NB; ++h) {
      // 2^l for the l of this band: 0..6, fewer in the lowest band (its base is clamped to 0).
      const int lim = top_exponent(B) - 7 * h - band_base(B, h);
      alignas(32) int8_t pw[32] = {};
      for (int l = 0; l <= lim && l < 7; ++l) pw[l] = pw[16 + l] = int8_t(1 << l);
      const __m256i pow = _mm256_load_si256(reinterpret_cast<const __m256i*>(pw));
      const __m256i l = _mm256_min_epu8(_mm256_sub_epi8(e, _mm256_set1_epi8(char(band_base(B, h)))), fifteen);
      out[h] = _mm256_add_epi8(off, _mm256_sign_epi8(_mm256_shuffle_epi8(pow, l), c));
    }
  }
}
template <int B>
void decode_tile(const uint8_t* const* w, int64_t b0, int64_t blocks, const YTables& T, uint8_t* ub, bool* used) {
  constexpr int NB = bands_of(B);
  const int64_t kc = blocks * kIntBlock;
  const __m256i off = _mm256_set1_epi8(kOffset);
  __m256i same[NB];
  for (int h = 0; h < NB; ++h) same[h] = _mm256_set1_epi8(-1);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const Half2 u = ydecode<B>(w[r] + (b0 + b) * 8 * B);
      __m256i lo[NB], hi[NB];
      ybands32<B>(u.lo, T, lo);
      ybands32<B>(u.hi, T, hi);
      for (int h = 0; h < NB; ++h) {
        uint8_t* dst = ub + (h * kRows + r) * kc + b * kIntBlock;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), lo[h]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), hi[h]);
        if constexpr (NB > 1)
          same[h] = _mm256_and_si256(same[h], _mm256_and_si256(_mm256_cmpeq_epi8(lo[h], off), _mm256_cmpeq_epi8(hi[h], off)));
      }
    }
  for (int h = 0; h < NB; ++h) used[h] = NB == 1 || _mm256_movemask_epi8(same[h]) != -1;
}
inline int64_t ysum(__m256i a) {
  const __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a)),
                                     _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a, 1)));
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}
// Band bytes <= 128 times int8: one vpmaddubsw pair is at most 32768 in size, so each is
// widened on its own.
inline __m256i ydot(__m256i acc, __m256i u0, __m256i u1, __m256i x0, __m256i x1) {
  const __m256i ones = _mm256_set1_epi16(1);
  return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u0, x0), ones),
                                                _mm256_madd_epi16(_mm256_maddubs_epi16(u1, x1), ones)));
}
template <int MR>
void buffer_tile(const int8_t* x, int64_t xs, const uint8_t* ub, int64_t kc, int64_t* out, int64_t ld) {
  __m256i acc[MR][kRows];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) acc[m][r] = _mm256_setzero_si256();
  for (int64_t k = 0; k < kc; k += kIntBlock) {
    __m256i x0[MR], x1[MR];
    for (int m = 0; m < MR; ++m) {
      x0[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + k));
      x1[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + k + 32));
    }
    for (int r = 0; r < kRows; ++r) {
      const __m256i u0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ub + r * kc + k));
      const __m256i u1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ub + r * kc + k + 32));
      for (int m = 0; m < MR; ++m) acc[m][r] = ydot(acc[m][r], u0, u1, x0[m], x1[m]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) out[r * ld + m] += ysum(acc[m][r]);
}
#endif

#if defined(LOWBIT_POW2_ZMM) || defined(LOWBIT_POW2_YMM)
#ifdef LOWBIT_POW2_ZMM
using Tables = ZTables;
#else
using Tables = YTables;
#endif

struct Problem {
  const int8_t* x;        // [N x Kp], zero padded
  const int32_t* rowsum;  // [N]
  const int32_t* chunk_sum;  // [N x chunks]: sums of x over each chunk of the buffered path
  const int32_t* block_sum;  // [N x Kp / 64]: sums of x over each block of 64
  int64_t chunks;
  int64_t N, Kp;
  const uint8_t* w;
  int64_t row_bytes, O;
  float x_scale;
  const double* w_scale;
  const float* bias;
  int64_t* acc;
  float* out;
  int64_t sn, so;
  Tables T;
};

template <int MR>
void tiles_from_buffer(const Problem& p, int64_t n0, int64_t count, int64_t k0, int64_t kc, const uint8_t* ub,
                       int64_t* tile, int64_t ld) {
  int64_t n = 0;
  for (; n + MR <= count; n += MR) buffer_tile<MR>(p.x + (n0 + n) * p.Kp + k0, p.Kp, ub, kc, tile + n, ld);
  if constexpr (MR > 1) {
    if (count - n > 0) tiles_from_buffer<MR - 1>(p, n0 + n, count - n, k0, kc, ub, tile + n, ld);
  }
}

// vt[((t * NB + h) * 4 + r) * count + n]: band h of row 4 t + r with activation row n0 + n.
template <int B>
void job_products(const Problem& p, const uint8_t* const* w, int64_t tiles, int64_t n0, int64_t count, uint8_t* ub,
                  int64_t* vt) {
  constexpr int NB = bands_of(B);
  constexpr int64_t kKc = chunk_of(NB);
  std::fill(vt, vt + NB * kRows * tiles * count, int64_t(0));
#ifdef LOWBIT_POW2_ZMM
  if (count == 1) {
    for (int64_t t = 0; t < tiles; ++t)
      gemv_tile<B>(p.x + n0 * p.Kp, p.block_sum + n0 * (p.Kp / kIntBlock), w + t * kRows, p.Kp / kIntBlock, p.T,
                   vt + t * NB * kRows);
    return;
  }
#endif
  bool used[kTilesPerJob * 5];
  for (int64_t k0 = 0; k0 < p.Kp; k0 += kKc) {
    const int64_t kc = std::min(kKc, p.Kp - k0);
    for (int64_t t = 0; t < tiles; ++t)
      decode_tile<B>(w + t * kRows, k0 / kIntBlock, kc / kIntBlock, p.T, ub + t * NB * kRows * kc, used + t * NB);
    for (int64_t v = 0; v < tiles * NB; ++v) {
      if (used[v]) continue;
      // Every band byte of this chunk is 64: its sums are 64 times the chunk's row sums.
      const int32_t* cs = p.chunk_sum + k0 / kKc;
      for (int64_t r = 0; r < kRows; ++r)
        for (int64_t i = 0; i < count; ++i) vt[(v * kRows + r) * count + i] += int64_t(kOffset) * cs[(n0 + i) * p.chunks];
    }
    for (int64_t n = 0; n < count; n += kTileRows) {
      const int64_t c = std::min<int64_t>(kTileRows, count - n);
      for (int64_t v = 0; v < tiles * NB; ++v)
        if (used[v])
          tiles_from_buffer<kTileRows>(p, n0 + n, c, k0, kc, ub + v * kRows * kc, vt + v * kRows * count + n, count);
    }
  }
}

template <int B> void run(const Problem& p) {
  constexpr int NB = bands_of(B);
  constexpr int64_t kJobRows = kRows * kTilesPerJob;
  const int64_t blocks = (p.O + kJobRows - 1) / kJobRows, chunks = (p.N + kNChunk - 1) / kNChunk;
  const int nt = threads_for(p.N * p.Kp * p.O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / (kJobRows * NB * std::min(p.N, kNChunk) * p.Kp));
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<uint8_t> ub(size_t(kJobRows * NB * std::min(chunk_of(NB), p.Kp)));
    const int64_t cmax = std::min(p.N, kNChunk);
    std::vector<int64_t> vt(size_t(cmax * kJobRows * NB));
#pragma omp for schedule(dynamic, grain)
    for (int64_t job = 0; job < chunks * blocks; ++job) {
      const int64_t n0 = job / blocks * kNChunk, count = std::min(kNChunk, p.N - n0);
      const int64_t o0 = job % blocks * kJobRows, rows = std::min(kJobRows, p.O - o0);
      const uint8_t* w[kJobRows];
      for (int64_t r = 0; r < kJobRows; ++r) w[r] = p.w + (o0 + (r < rows ? r : 0)) * p.row_bytes;
      job_products<B>(p, w, (rows + kRows - 1) / kRows, n0, count, ub.data(), vt.data());
      for (int64_t i = 0; i < count; ++i) {
        const int64_t n = n0 + i, rs = int64_t(kOffset) * p.rowsum[n];
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t t = r / kRows, rr = r % kRows;
          int64_t a = 0;
          for (int h = 0; h < NB; ++h) a += (vt[((t * NB + h) * kRows + rr) * count + i] - rs) * (int64_t(1) << band_base(B, h));
          const int64_t o = o0 + r;
          if (p.acc) p.acc[n * p.O + o] = a;
          if (p.out) {
            const float y = float(double(a) * (double(p.x_scale) * p.w_scale[o]));
            p.out[n * p.sn + o * p.so] = p.bias ? y + p.bias[o] : y;
          }
        }
      }
    }
  }
}

template <int B> void run_bits(Problem& p) {
  alignas(64) uint8_t tables[5 * 64], band_id[64];
  band_tables(B, tables, band_id);
#ifdef LOWBIT_POW2_ZMM
  for (int h = 0; h < bands_of(B); ++h) p.T.t[h] = _mm512_loadu_si512(tables + 64 * h);
  p.T.band_id = _mm512_loadu_si512(band_id);
#else
  if constexpr (B <= 4) p.T.t16 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tables)));
#endif
  run<B>(p);
}
#endif  // SIMD

}  // namespace

bool pow2_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits, float x_scale,
               const double* w_scale, const float* bias, int64_t* acc, float* out, int64_t out_stride_n,
               int64_t out_stride_o) {
  if (bits < 2 || bits > 8 || K > kIntMaxK || N <= 0 || K <= 0 || O <= 0) return false;
  const int64_t Kp = int_row_fields(K), row_bytes = int_row_bytes(K, bits);
#if defined(LOWBIT_POW2_ZMM) || defined(LOWBIT_POW2_YMM)
  const std::unique_ptr<int8_t[]> xp(new int8_t[size_t(N * Kp)]);
  std::vector<int32_t> rowsum(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    std::memcpy(xp.get() + n * Kp, x + n * K, size_t(K));
    std::memset(xp.get() + n * Kp + K, 0, size_t(Kp - K));
    int32_t s = 0;
    for (int64_t k = 0; k < K; ++k) s += x[n * K + k];
    rowsum[size_t(n)] = s;
  }
  // Row sums of x over each chunk of the buffered path (the chunk length of this width).
  const int64_t kc = chunk_of(bands_of(bits)), chunks = (Kp + kc - 1) / kc;
  std::vector<int32_t> chunk_sum(static_cast<size_t>(N * chunks), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) chunk_sum[size_t(n * chunks + k / kc)] += x[n * K + k];
  std::vector<int32_t> block_sum(static_cast<size_t>(N * (Kp / kIntBlock)), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) block_sum[size_t(n * (Kp / kIntBlock) + k / kIntBlock)] += x[n * K + k];
  Problem p{xp.get(), rowsum.data(), chunk_sum.data(), block_sum.data(), chunks, N, Kp, w, row_bytes, O, x_scale, w_scale, bias,
            acc, out, out_stride_n, out_stride_o, {}};
  switch (bits) {
    case 2: run_bits<2>(p); break;
    case 3: run_bits<3>(p); break;
    case 4: run_bits<4>(p); break;
    case 5: run_bits<5>(p); break;
    case 6: run_bits<6>(p); break;
    case 7: run_bits<7>(p); break;
    default: run_bits<8>(p); break;
  }
#else
  // Portable: each row's fields through an integer table, summed in int64.
  int64_t table[256];
  for (int u = 0; u < (1 << bits); ++u) table[u] = pow2_weight(u, bits);
  const int nt = threads_for(N * Kp * O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<int64_t> wv(static_cast<size_t>(Kp));
    uint8_t f[kIntBlock];
#pragma omp for schedule(static)
    for (int64_t o = 0; o < O; ++o) {
      for (int64_t b = 0; b < Kp / kIntBlock; ++b) {
        decode_fields(w + o * row_bytes + b * 8 * bits, bits, f);
        for (int i = 0; i < kIntBlock; ++i) wv[size_t(b * kIntBlock + i)] = table[f[i]];
      }
      for (int64_t n = 0; n < N; ++n) {
        int64_t a = 0;
        for (int64_t k = 0; k < K; ++k) a += int64_t(x[n * K + k]) * wv[size_t(k)];
        if (acc) acc[n * O + o] = a;
        if (out) {
          const float y = float(double(a) * (double(x_scale) * w_scale[o]));
          out[n * out_stride_n + o * out_stride_o] = bias ? y + bias[o] : y;
        }
      }
    }
  }
#endif
  return true;
}

LOWBIT_ISA_END
