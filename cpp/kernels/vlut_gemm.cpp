// Codebook weights on bit-plane rows (int_rows.h) times float activations: each block of
// 64 fields is decoded in registers (int_gemm's planes) and turned into floats with
// in-register table look-ups, never through a float weight matrix in memory.
//   - AVX-512: a dword lane of the 64 decoded bytes holds the fields 4i .. 4i + 3; shifting
//     by 8 s and vpermps (16 entries, the lane's low 4 bits; vpermi2ps for 32 entries at 5
//     bits, two of them at 6, a gather from 7 bits) gives the values of the fields 4i + s,
//     which meet activations permuted the same way once per call.
//   - AVX2: bytes zero-extended 8 at a time, vpermps on 8 entries (two and a blend for 16;
//     a gather from 5 bits), activations in their own order.
//   - One activation row (AVX-512): each tile of 4 weight rows is decoded and used at once.
//     More rows: a job's 8 rows are decoded 512 fields at a time into an L1 buffer and met
//     by a register-blocked micro-kernel over 6 (AVX-512) or 2 (AVX2) activation rows.
// The sums are float, in a different order from x @ W^T (equal up to rounding).
#include <algorithm>
#include <cstring>
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
constexpr int64_t kTilesPerJob = 2;  // 8 output channels per job
constexpr int64_t kNChunk = 256;     // activation rows per job
constexpr int64_t kKc = 512;         // fields per decoded chunk: 8 rows x 2 KB of floats

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define LOWBIT_VLUT_ZMM 1
constexpr int kTileRows = 6;
// Position of field k (within its block of 64) in the permuted order: lane i of part s.
inline int64_t permuted(int64_t k) { return (k % 4) * 16 + k / 4; }

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
struct Table {
  __m512 t[4];
  const float* values;  // 2^bits floats, for the gather
};
inline Table load_table(const float* values, int bits) {
  Table T;
  T.values = values;
  alignas(64) float pad[64] = {};
  const int n = std::min(1 << bits, 64);
  std::copy(values, values + n, pad);
  for (int i = 0; i < 4; ++i) T.t[i] = _mm512_load_ps(pad + 16 * i);
  return T;
}
// The values of the 16 fields in the low bits of each dword lane of idx.
template <int B> inline __m512 zlookup(__m512i idx, const Table& T) {
  if constexpr (B <= 4) return _mm512_permutexvar_ps(idx, T.t[0]);
  else if constexpr (B == 5) return _mm512_permutex2var_ps(T.t[0], idx, T.t[1]);
  else if constexpr (B == 6) {
    const __mmask16 hi = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    return _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(T.t[0], idx, T.t[1]),
                                _mm512_permutex2var_ps(T.t[2], idx, T.t[3]));
  } else {
    return _mm512_i32gather_ps(_mm512_and_si512(idx, _mm512_set1_epi32(255)), T.values, 4);
  }
}
// The four parts (fields 4i + s) of one block as floats.
template <int B> inline void zvalues(const uint8_t* p, const Table& T, __m512* v) {
  const __m512i u = zdecode<B>(p);
  v[0] = zlookup<B>(u, T);
  v[1] = zlookup<B>(_mm512_srli_epi32(u, 8), T);
  v[2] = zlookup<B>(_mm512_srli_epi32(u, 16), T);
  v[3] = zlookup<B>(_mm512_srli_epi32(u, 24), T);
}

// One activation row: out[r] = sum_k x'[k] w[r][k] for 4 rows (x' permuted).
template <int B>
void gemv_tile(const float* x, const uint8_t* const* w, const Table* const* T, int64_t blocks, float* out) {
  __m512 a[kRows][2];
  for (int r = 0; r < kRows; ++r) a[r][0] = a[r][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kIntBlock;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16), x2 = _mm512_loadu_ps(xb + 32),
                 x3 = _mm512_loadu_ps(xb + 48);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      __m512 v[4];
      zvalues<B>(w[r] + b * 8 * B, *T[r], v);
      a[r][0] = _mm512_fmadd_ps(v[0], x0, a[r][0]);
      a[r][1] = _mm512_fmadd_ps(v[1], x1, a[r][1]);
      a[r][0] = _mm512_fmadd_ps(v[2], x2, a[r][0]);
      a[r][1] = _mm512_fmadd_ps(v[3], x3, a[r][1]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
}

template <int B>
void decode_tile(const uint8_t* const* w, const Table* const* T, int64_t b0, int64_t blocks, float* wf) {
  const int64_t kc = blocks * kIntBlock;
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      __m512 v[4];
      zvalues<B>(w[r] + (b0 + b) * 8 * B, *T[r], v);
      float* dst = wf + r * kc + b * kIntBlock;
      for (int s = 0; s < 4; ++s) _mm512_storeu_ps(dst + 16 * s, v[s]);
    }
}

// The 16 lane sums of a[0..15] as one vector (lane i: the sum of a[i]).
inline __m512 reduce16(const __m512* a) {
  __m512 b[8], c[4];
  for (int j = 0; j < 8; ++j)
    b[j] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * j], a[2 * j + 1]), _mm512_unpackhi_ps(a[2 * j], a[2 * j + 1]));
  for (int k = 0; k < 4; ++k) {
    const __m512d p = _mm512_castps_pd(b[2 * k]), q = _mm512_castps_pd(b[2 * k + 1]);
    c[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
  }
  const __m512 e0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
  const __m512 e1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88), _mm512_shuffle_f32x4(c[2], c[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(e0, e1, 0x88), _mm512_shuffle_f32x4(e0, e1, 0xDD));
}
// The lane order reduce16 leaves: lane L holds accumulator idx16[L].
inline void reduce_order(int* order) {
  // Computed once by running reduce16 on accumulators that hold their own index.
  alignas(64) float t[16];
  __m512 a[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm512_mask_mov_ps(_mm512_setzero_ps(), __mmask16(1), _mm512_set1_ps(float(i + 1)));
  _mm512_store_ps(t, reduce16(a));
  for (int i = 0; i < 16; ++i) order[i] = int(t[i]) - 1;
}

// out[r * ld + m] += sum_k x[m][k] wf[r][k], 4 weight rows and MR activation rows.
template <int MR>
void buffer_tile(const float* x, int64_t xs, const float* wf, int64_t kc, float* out, int64_t ld, const int* order) {
  const __m512 z = _mm512_setzero_ps();
  __m512 a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
  __m512 a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
  __m512 a40 = z, a41 = z, a42 = z, a43 = z, a50 = z, a51 = z, a52 = z, a53 = z;
  for (int64_t k = 0; k < kc; k += 16) {
    const float* xb = x + k;
    const __m512 x0 = _mm512_loadu_ps(xb);
    const __m512 x1 = MR > 1 ? _mm512_loadu_ps(xb + xs) : z;
    const __m512 x2 = MR > 2 ? _mm512_loadu_ps(xb + 2 * xs) : z;
    const __m512 x3 = MR > 3 ? _mm512_loadu_ps(xb + 3 * xs) : z;
    const __m512 x4 = MR > 4 ? _mm512_loadu_ps(xb + 4 * xs) : z;
    const __m512 x5 = MR > 5 ? _mm512_loadu_ps(xb + 5 * xs) : z;
#define LOWBIT_ROW(r)                                                 \
  {                                                                   \
    const __m512 u = _mm512_loadu_ps(wf + (r) * kc + k);              \
    a0##r = _mm512_fmadd_ps(u, x0, a0##r);                            \
    if constexpr (MR > 1) a1##r = _mm512_fmadd_ps(u, x1, a1##r);      \
    if constexpr (MR > 2) a2##r = _mm512_fmadd_ps(u, x2, a2##r);      \
    if constexpr (MR > 3) a3##r = _mm512_fmadd_ps(u, x3, a3##r);      \
    if constexpr (MR > 4) a4##r = _mm512_fmadd_ps(u, x4, a4##r);      \
    if constexpr (MR > 5) a5##r = _mm512_fmadd_ps(u, x5, a5##r);      \
  }
    LOWBIT_ROW(0) LOWBIT_ROW(1) LOWBIT_ROW(2) LOWBIT_ROW(3)
#undef LOWBIT_ROW
  }
  alignas(64) float t[16];
  const __m512 lo[16] = {a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33};
  _mm512_store_ps(t, reduce16(lo));
  for (int L = 0; L < 16; ++L) {
    const int i = order[L], m = i / 4, r = i % 4;
    if (m < MR) out[r * ld + m] += t[L];
  }
  if constexpr (MR > 4) {
    const __m512 hi[16] = {a40, a41, a42, a43, a50, a51, a52, a53, z, z, z, z, z, z, z, z};
    _mm512_store_ps(t, reduce16(hi));
    for (int L = 0; L < 16; ++L) {
      const int i = order[L], m = 4 + i / 4, r = i % 4;
      if (m < MR) out[r * ld + m] += t[L];
    }
  }
}
#elif defined(__AVX2__)
#define LOWBIT_VLUT_YMM 1
constexpr int kTileRows = 2;
inline int64_t permuted(int64_t k) { return k; }
struct Table {
  __m256 t[2];
  const float* values;
};
inline Table load_table(const float* values, int bits) {
  Table T;
  T.values = values;
  alignas(32) float pad[16] = {};
  std::copy(values, values + std::min(1 << bits, 16), pad);
  T.t[0] = _mm256_load_ps(pad);
  T.t[1] = _mm256_load_ps(pad + 8);
  return T;
}
// 64 fields (one block, decoded to bytes) -> floats in their own order.
template <int B> inline void yvalues(const uint8_t* f, const Table& T, float* dst) {
  for (int k = 0; k < kIntBlock; k += 8) {
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f + k)));
    __m256 v;
    if constexpr (B <= 3) v = _mm256_permutevar8x32_ps(T.t[0], idx);
    else if constexpr (B == 4)
      v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(T.t[0], idx), _mm256_permutevar8x32_ps(T.t[1], idx),
                           _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
    else v = _mm256_i32gather_ps(T.values, idx, 4);
    _mm256_storeu_ps(dst + k, v);
  }
}
template <int B>
void decode_tile(const uint8_t* const* w, const Table* const* T, int64_t b0, int64_t blocks, float* wf) {
  const int64_t kc = blocks * kIntBlock;
  alignas(32) uint8_t f[kIntBlock];
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* p = w[r] + (b0 + b) * 8 * B;
      // The int kernels' planes, decoded in plain code (the compiler vectorizes it).
      decode_fields(p, B, f);
      yvalues<B>(f, *T[r], wf + r * kc + b * kIntBlock);
    }
}
inline float yhsum(__m256 a) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
template <int MR>
void buffer_tile(const float* x, int64_t xs, const float* wf, int64_t kc, float* out, int64_t ld, const int*) {
  __m256 acc[MR][kRows];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) acc[m][r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k += 8) {
    __m256 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = _mm256_loadu_ps(x + m * xs + k);
    for (int r = 0; r < kRows; ++r) {
      const __m256 u = _mm256_loadu_ps(wf + r * kc + k);
      for (int m = 0; m < MR; ++m) acc[m][r] = _mm256_fmadd_ps(u, xv[m], acc[m][r]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < kRows; ++r) out[r * ld + m] += yhsum(acc[m][r]);
}
#endif

#if defined(LOWBIT_VLUT_ZMM) || defined(LOWBIT_VLUT_YMM)
struct Problem {
  const float* x;  // [N x Kp], permuted per block, zero padded
  int64_t N, Kp;
  const uint8_t* w;
  int64_t row_bytes, O;
  const Table* tables;  // one per table group
  int64_t rows_per_table;
  const float* bias;
  float* out;
  int64_t sn, so;
  int order[16];
};

template <int MR>
void tiles_from_buffer(const Problem& p, int64_t n0, int64_t count, int64_t k0, int64_t kc, const float* wf,
                       float* tile, int64_t ld) {
  int64_t n = 0;
  for (; n + MR <= count; n += MR) buffer_tile<MR>(p.x + (n0 + n) * p.Kp + k0, p.Kp, wf, kc, tile + n, ld, p.order);
  if constexpr (MR > 1) {
    if (count - n > 0) tiles_from_buffer<MR - 1>(p, n0 + n, count - n, k0, kc, wf, tile + n, ld);
  }
}

template <int B> void run(const Problem& p) {
  constexpr int64_t kJobRows = kRows * kTilesPerJob;
  const int64_t blocks = (p.O + kJobRows - 1) / kJobRows, chunks = (p.N + kNChunk - 1) / kNChunk;
  const int nt = threads_for(p.N * p.Kp * p.O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / (kJobRows * std::min(p.N, kNChunk) * p.Kp));
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<float> wf(size_t(kJobRows * std::min(kKc, p.Kp)));
    std::vector<float> tile(size_t(std::min(p.N, kNChunk) * kJobRows));
#pragma omp for schedule(dynamic, grain)
    for (int64_t job = 0; job < chunks * blocks; ++job) {
      const int64_t n0 = job / blocks * kNChunk, count = std::min(kNChunk, p.N - n0);
      const int64_t o0 = job % blocks * kJobRows, rows = std::min(kJobRows, p.O - o0);
      const uint8_t* w[kJobRows];
      const Table* T[kJobRows];
      for (int64_t r = 0; r < kJobRows; ++r) {
        const int64_t o = o0 + (r < rows ? r : 0);  // spare rows: dropped
        w[r] = p.w + o * p.row_bytes;
        T[r] = p.tables + o / p.rows_per_table;
      }
      const int64_t tiles = (rows + kRows - 1) / kRows;
      std::fill(tile.begin(), tile.begin() + kJobRows * count, 0.0f);
#ifdef LOWBIT_VLUT_ZMM
      if (count == 1) {
        for (int64_t t = 0; t < tiles; ++t)
          gemv_tile<B>(p.x + n0 * p.Kp, w + t * kRows, T + t * kRows, p.Kp / kIntBlock, tile.data() + t * kRows);
      } else
#endif
      {
        for (int64_t k0 = 0; k0 < p.Kp; k0 += kKc) {
          const int64_t kc = std::min(kKc, p.Kp - k0);
          for (int64_t t = 0; t < tiles; ++t)
            decode_tile<B>(w + t * kRows, T + t * kRows, k0 / kIntBlock, kc / kIntBlock, wf.data() + t * kRows * kc);
          for (int64_t n = 0; n < count; n += kTileRows) {
            const int64_t c = std::min<int64_t>(kTileRows, count - n);
            for (int64_t t = 0; t < tiles; ++t)
              tiles_from_buffer<kTileRows>(p, n0 + n, c, k0, kc, wf.data() + t * kRows * kc,
                                           tile.data() + t * kRows * count + n, count);
          }
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t o = o0 + r;
        const float b = p.bias ? p.bias[o] : 0.0f;
        for (int64_t i = 0; i < count; ++i) {
          const float y = tile[size_t(r * count + i)];
          p.out[(n0 + i) * p.sn + o * p.so] = p.bias ? y + b : y;
        }
      }
    }
  }
}
#endif

}  // namespace

bool vlut_gemm(const float* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits, const float* tables,
               int64_t n_tables, const float* bias, float* out, int64_t out_stride_n, int64_t out_stride_o) {
  if (bits < 2 || bits > 8 || K > kIntMaxK || N <= 0 || K <= 0 || O <= 0 || n_tables <= 0 || O % n_tables) return false;
  const int64_t Kp = int_row_fields(K), row_bytes = int_row_bytes(K, bits), T = int64_t(1) << bits;
#if defined(LOWBIT_VLUT_ZMM) || defined(LOWBIT_VLUT_YMM)
  std::vector<float> xp(size_t(N * Kp), 0.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) xp[size_t(n * Kp + k / kIntBlock * kIntBlock + permuted(k % kIntBlock))] = x[n * K + k];
  std::vector<Table> tabs;
  tabs.reserve(size_t(n_tables));
  for (int64_t g = 0; g < n_tables; ++g) tabs.push_back(load_table(tables + g * T, bits));
  Problem p{xp.data(), N, Kp, w, row_bytes, O, tabs.data(), O / n_tables, bias, out, out_stride_n, out_stride_o, {}};
#ifdef LOWBIT_VLUT_ZMM
  reduce_order(p.order);
#endif
  switch (bits) {
    case 2: run<2>(p); break;
    case 3: run<3>(p); break;
    case 4: run<4>(p); break;
    case 5: run<5>(p); break;
    case 6: run<6>(p); break;
    case 7: run<7>(p); break;
    default: run<8>(p); break;
  }
#else
  const int64_t rows_per_table = O / n_tables;
  const int nt = threads_for(N * Kp * O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<float> wv(static_cast<size_t>(Kp));
    uint8_t f[kIntBlock];
#pragma omp for schedule(static)
    for (int64_t o = 0; o < O; ++o) {
      const float* table = tables + (o / rows_per_table) * T;
      for (int64_t b = 0; b < Kp / kIntBlock; ++b) {
        decode_fields(w + o * row_bytes + b * 8 * bits, bits, f);
        for (int i = 0; i < kIntBlock; ++i) wv[size_t(b * kIntBlock + i)] = table[f[i]];
      }
      for (int64_t n = 0; n < N; ++n) {
        float a = 0.0f;
        for (int64_t k = 0; k < K; ++k) a += x[n * K + k] * wv[size_t(k)];
        out[n * out_stride_n + o * out_stride_o] = bias ? a + bias[o] : a;
      }
    }
  }
#endif
  return true;
}

LOWBIT_ISA_END
