// Activations for the integer kernels: each row of x quantized to act_bits symmetric codes
// with its own step, exactly as qstep_maxabs + sym_quantize with one group per row (the
// step max|row| / L, 1 for an all-zero row; codes rounded half away from zero, with IEEE
// division). Rows are often short (a convolution's im2col rows: 25 taps in LeNet-5), where
// the group kernels' per-group set-up costs more than the arithmetic: the AVX-512 and AVX2
// builds handle a row with masked 16- or 8-lane steps; the portable build calls the group
// kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

#if defined(__AVX512F__) && defined(__AVX512BW__)
namespace {

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

// One row: returns false if it holds NaN or Inf.
bool quantize_row(const float* x, int64_t K, int L, int8_t* codes, float* step) {
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(std::numeric_limits<float>::max());
  __m512 mx = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = tail_mask(K - k);
    const __m512 a = _mm512_and_ps(_mm512_maskz_loadu_ps(m, x + k), absmask);
    bad |= _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ);  // NaN or Inf
    mx = _mm512_max_ps(mx, a);
  }
  if (bad) return false;
  const float maxabs = _mm512_reduce_max_ps(mx);
  // positive_step (params.cpp): 1 for an all-zero row, max|x| itself if max|x| / L underflows.
  float D = maxabs / float(L);
  D = !(maxabs > 0) ? 1.0f : D > 0 ? D : maxabs;
  *step = D;
  const __m512 vD = _mm512_set1_ps(D), vL = _mm512_set1_ps(float(L)), half = _mm512_set1_ps(0.5f);
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = tail_mask(K - k);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
    const __m512 t = _mm512_min_ps(_mm512_div_ps(_mm512_and_ps(v, absmask), vD), vL);
    const __m512i r = _mm512_cvttps_epi32(t);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(t, _mm512_cvtepi32_ps(r)), half, _CMP_GE_OQ);
    const __m512i mag = _mm512_mask_add_epi32(r, up, r, _mm512_set1_epi32(1));
    const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512i q = _mm512_mask_sub_epi32(mag, neg, _mm512_setzero_si512(), mag);
    _mm_mask_storeu_epi8(codes + k, m, _mm512_cvtepi32_epi8(q));
  }
  return true;
}

}  // namespace

bool quantize_rows(const float* x, int64_t N, int64_t K, int act_bits, int8_t* codes, float* steps) {
  const int L = (1 << (act_bits - 1)) - 1;
  const int nt = int(std::min<int64_t>(threads_for(N * K), N));  // a thread without a row would only wake
  int bad = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(| : bad)
  for (int64_t n = 0; n < N; ++n) bad |= !quantize_row(x + n * K, K, L, codes + n * K, steps + n);
  return bad == 0;
}
#elif defined(__AVX2__)
namespace {

// Lanes [0, left) of 8 (maskload reads 0 elsewhere and never faults past the row).
inline __m256i tail_mask(int64_t left) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left < 8 ? left : 8)), lane);
}

// As the AVX-512 version, 8 lanes at a time.
bool quantize_row(const float* x, int64_t K, int L, int8_t* codes, float* step) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 fmax = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k += 8) {
    const __m256 a = _mm256_and_ps(_mm256_maskload_ps(x + k, tail_mask(K - k)), absmask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, fmax, _CMP_NLE_UQ));  // NaN or Inf
    mx = _mm256_max_ps(mx, a);
  }
  if (_mm256_movemask_ps(bad)) return false;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float maxabs = 0.0f;
  for (float v : lanes) maxabs = std::max(maxabs, v);
  float D = maxabs / float(L);
  D = !(maxabs > 0) ? 1.0f : D > 0 ? D : maxabs;  // positive_step (params.cpp)
  *step = D;
  const __m256 vD = _mm256_set1_ps(D), vL = _mm256_set1_ps(float(L)), half = _mm256_set1_ps(0.5f);
  for (int64_t k = 0; k < K; k += 8) {
    const __m256 v = _mm256_maskload_ps(x + k, tail_mask(K - k));
    const __m256 t = _mm256_min_ps(_mm256_div_ps(_mm256_and_ps(v, absmask), vD), vL);
    const __m256i r = _mm256_cvttps_epi32(t);
    const __m256 up = _mm256_cmp_ps(_mm256_sub_ps(t, _mm256_cvtepi32_ps(r)), half, _CMP_GE_OQ);
    const __m256i mag = _mm256_sub_epi32(r, _mm256_castps_si256(up));  // true lanes are -1
    const __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
    const __m256i q = _mm256_sign_epi32(mag, _mm256_or_si256(neg, _mm256_set1_epi32(1)));  // -1 or +1
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i q8 = _mm_packs_epi16(q16, q16);  // |q| <= 127: no saturation
    if (K - k >= 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + k), q8);
    } else {
      alignas(16) int8_t t8[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(t8), q8);
      std::memcpy(codes + k, t8, size_t(K - k));
    }
  }
  return true;
}

}  // namespace
#endif

#if defined(__AVX2__) && !(defined(__AVX512F__) && defined(__AVX512BW__))
bool quantize_rows(const float* x, int64_t N, int64_t K, int act_bits, int8_t* codes, float* steps) {
  const int L = (1 << (act_bits - 1)) - 1;
  const int nt = int(std::min<int64_t>(threads_for(N * K), N));  // a thread without a row would only wake
  int bad = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(| : bad)
  for (int64_t n = 0; n < N; ++n) bad |= !quantize_row(x + n * K, K, L, codes + n * K, steps + n);
  return bad == 0;
}
#elif !defined(__AVX2__)
bool quantize_rows(const float* x, int64_t N, int64_t K, int act_bits, int8_t* codes, float* steps) {
  return qstep_maxabs<float>(x, N, K, act_bits, steps) &&
         sym_quantize<float>(x, N, K, steps, act_bits, codes, nullptr, nullptr);
}
#endif

LOWBIT_ISA_END
