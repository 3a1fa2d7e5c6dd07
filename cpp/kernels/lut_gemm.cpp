// Codebook weights with float activations: each tile of packed codes is decoded through
// the row's look-up table into a small float buffer (L1-sized) and multiplied there; the
// full float weight matrix never exists in memory.
#include <algorithm>
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
constexpr int64_t kChunk = 1024;  // fields per decoded chunk: 4 rows x 4 KB of floats

// fields -> float values through table (2^bits entries), n values.
void decode_float(const uint8_t* fields, int64_t n, int bits, const float* table, float* out) {
  int64_t k = 0;
#ifdef __AVX2__
  if (bits <= 3) {
    alignas(32) float t8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::copy(table, table + (1 << bits), t8);
    const __m256 lo = _mm256_load_ps(t8);
    for (; k + 8 <= n; k += 8) {
      const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(fields + k)));
      _mm256_storeu_ps(out + k, _mm256_permutevar8x32_ps(lo, idx));
    }
  } else if (bits == 4) {
    const __m256 lo = _mm256_loadu_ps(table), hi = _mm256_loadu_ps(table + 8);
    for (; k + 8 <= n; k += 8) {
      const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(fields + k)));
      // permutevar uses the low 3 bits; bit 3 (moved to the sign bit) picks the half.
      const __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
      _mm256_storeu_ps(out + k, _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx),
                                                 _mm256_permutevar8x32_ps(hi, idx), sel));
    }
  } else {
    for (; k + 8 <= n; k += 8) {
      const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(fields + k)));
      _mm256_storeu_ps(out + k, _mm256_i32gather_ps(table, idx, 4));
    }
  }
#endif
  for (; k < n; ++k) out[k] = table[fields[k]];
}

// s[r] += sum_k x[k] * w[r * kChunk + k] for 4 rows over n values.
void dot_f32_x4(const float* x, const float* w, int64_t n, float s[4]) {
  int64_t k = 0;
#ifdef __AVX2__
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; k + 8 <= n; k += 8) {
    const __m256 xv = _mm256_loadu_ps(x + k);
    a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + k), a0);
    a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + kChunk + k), a1);
    a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + 2 * kChunk + k), a2);
    a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + 3 * kChunk + k), a3);
  }
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  alignas(16) float t[4];
  _mm_store_ps(t, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  for (int r = 0; r < 4; ++r) s[r] += t[r];
#endif
  for (int r = 0; r < 4; ++r) {
    float tail = 0.0f;
    for (int64_t j = k; j < n; ++j) tail += x[j] * w[r * kChunk + j];
    s[r] += tail;
  }
}

}  // namespace

void lut_gemm(const float* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
              const float* tables, int64_t n_tables, const float* bias, float* out,
              int64_t out_stride_n, int64_t out_stride_o) {
  const int64_t row_bytes = packed_row_bytes(K, bits), T = int64_t(1) << bits;
  const int64_t rows_per_table = O / n_tables;
  const int64_t blocks = (O + kRows - 1) / kRows;
  // Below about a million products, waking a second thread costs more than it saves.
  const int nt = threads_for(N * K * O / 32), master_cpu = nt > 1 ? current_cpu() : -1;
#pragma omp parallel num_threads(nt)
  {
    leave_cpu(master_cpu);
    std::vector<uint8_t> fields(static_cast<size_t>(kChunk));
    std::vector<float> wf(size_t(kRows * kChunk), 0.0f);
    std::vector<float> blk(size_t(kRows * N));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t o0 = b * kRows, rows = std::min(kRows, O - o0);
      std::fill(blk.begin(), blk.end(), 0.0f);
      for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
        const int64_t cnt = std::min(kChunk, K - k0);
        for (int64_t r = 0; r < kRows; ++r) {  // missing rows of a short block stay zero
          if (r >= rows) continue;
          read_fields(w + (o0 + r) * row_bytes, k0, cnt, bits, fields.data());
          decode_float(fields.data(), cnt, bits, tables + ((o0 + r) / rows_per_table) * T,
                       wf.data() + r * kChunk);
        }
        for (int64_t n = 0; n < N; ++n) {
          float s[4] = {0, 0, 0, 0};
          dot_f32_x4(x + n * K + k0, wf.data(), cnt, s);
          for (int64_t r = 0; r < rows; ++r) blk[r * N + n] += s[r];
        }
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t n = 0; n < N; ++n)
          out[n * out_stride_n + (o0 + r) * out_stride_o] = bias ? blk[r * N + n] + bias[o0 + r] : blk[r * N + n];
    }
  }
}

LOWBIT_ISA_END
