// The quantizers: codes, fake-quantized values and the STE saturation mask in one
// pass, plus their dequantizers. Loops are written for the auto-vectorizer: no calls,
// no early exits; a non-finite weight only raises a flag that the caller checks.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

namespace {

template <class T> inline bool not_finite(T x) {
  return !(std::abs(x) <= std::numeric_limits<T>::max());
}

// Runs body(g, begin, end) over the block and ORs the per-range "bad input" flags.
template <class Body> bool run_ranges(int64_t groups, int64_t gsize, Body&& body) {
  int bad = 0;
  for_each_group_range(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    if (body(g, b, e)) {
#pragma omp atomic write
      bad = 1;
    }
  });
  return bad == 0;
}

// ---- symmetric fixed point -------------------------------------------------------
template <class T>
bool sym_range(const T* w, int64_t b, int64_t e, T D, int L, int8_t* codes, T* fq, bool* mask) {
  const T Lt = T(L), Lsat = T(L) + T(0.5);
  int bad = 0;
  for (int64_t i = b; i < e; ++i) {
    const T x = w[i];
    bad |= not_finite(x);
    const T t = std::abs(x) / D;
    const int32_t mag = round_half_up_int(t < Lt ? t : Lt);  // NaN -> L (flagged anyway)
    const int32_t q = x < T(0) ? -mag : mag;
    if (codes) codes[i] = int8_t(q);
    if (fq) fq[i] = T(q) * D;
    if (mask) mask[i] = t < Lsat;  // round(t) <= L
  }
  return bad != 0;
}

// ---- asymmetric ------------------------------------------------------------------
template <class T>
bool affine_range(const T* w, int64_t b, int64_t e, T s, int32_t zp, int qmax, uint8_t* codes,
                  T* fq, bool* mask) {
  const T lim = T(qmax + 1);  // rounding beyond this only lands further out of range
  int bad = 0;
  for (int64_t i = b; i < e; ++i) {
    const T xw = w[i];
    bad |= not_finite(xw);
    const T x = std::min(std::max(xw / s, -lim), lim);
    const int32_t mag = round_half_up_int(std::abs(x));
    const int32_t r = (x < T(0) ? -mag : mag) + zp;
    const int32_t q = std::min(std::max(r, 0), qmax);
    if (codes) codes[i] = uint8_t(q);
    if (fq) fq[i] = T(q - zp) * s;
    if (mask) mask[i] = r == q;
  }
  return bad != 0;
}

// ---- min/max range (paper 004's formula, a float offset) --------------------------
// (w - o) / s, or w / s - o / s where w - o overflows (their signs then differ, so the
// two quotients have the same sign and the difference is no NaN).
template <class T> inline T range_ratio(T x, T s, T o) {
  const T d = x - o;
  return std::abs(d) <= std::numeric_limits<T>::max() ? d / s : x / s - o / s;
}

// o + q s, or 2 (o / 2 + q (s / 2)) where that overflows.
template <class T> inline T range_value(int32_t q, T s, T o) {
  const T v = o + T(q) * s;
  return std::abs(v) <= std::numeric_limits<T>::max() ? v : T(2) * (o * T(0.5) + T(q) * (s * T(0.5)));
}

template <class T>
bool range_range(const T* w, int64_t b, int64_t e, T s, T o, int qmax, uint8_t* codes, T* fq,
                 bool* mask) {
  const T lim = T(qmax + 1);  // rounding beyond this only lands further out of range
  int bad = 0;
  for (int64_t i = b; i < e; ++i) {
    const T xw = w[i];
    bad |= not_finite(xw);
    const T x = std::min(std::max(range_ratio(xw, s, o), -lim), lim);
    const int32_t mag = round_half_up_int(std::abs(x));
    const int32_t r = x < T(0) ? -mag : mag;
    const int32_t q = std::min(std::max(r, 0), qmax);
    if (codes) codes[i] = uint8_t(q);
    if (fq) fq[i] = range_value(q, s, o);
    if (mask) mask[i] = r == q;
  }
  return bad != 0;
}

// ---- power of two ----------------------------------------------------------------
template <class T> struct Pow2Group {
  int emax, emin, nexp;
  std::vector<T> level;  // level[k] = 2^(emin + k - 1), k = 1..nexp; level[0] = 0
  Pow2Group(T max_level, int bits) {
    int E;
    std::frexp(max_level, &E);  // max_level = 0.5 * 2^E exactly (checked by the caller)
    emax = E - 1;
    nexp = (1 << (bits - 1)) - 1;
    emin = emax - nexp + 1;
    level.assign(nexp + 1, T(0));
    for (int k = 1; k <= nexp; ++k) level[k] = std::ldexp(T(1), emin + k - 1);
  }
};

template <class T>
bool pow2_range(const T* w, int64_t b, int64_t e, const Pow2Group<T>& pg, int8_t* codes, T* fq,
                bool* mask) {
  int bad = 0;
  for (int64_t i = b; i < e; ++i) {
    const T x = w[i];
    const T a = std::abs(x);
    bad |= not_finite(x);
    int k = 0;
    bool inside = true;
    if (a > T(0) && a <= std::numeric_limits<T>::max()) {
      const int ex = round_log2(a);
      inside = ex <= pg.emax;
      k = ex < pg.emin ? 0 : std::min(ex, pg.emax) - pg.emin + 1;
    }
    const int q = x < T(0) ? -k : k;
    if (codes) codes[i] = int8_t(q);
    if (fq) fq[i] = x < T(0) ? -pg.level[k] : pg.level[k];
    if (mask) mask[i] = inside;
  }
  return bad != 0;
}

// ---- codebook ----------------------------------------------------------------------
template <class T> struct CodebookGroup {
  const T* c;
  int K;
  std::vector<T> mid;  // mid[j] between c[j] and c[j+1]
  T lo, hi;            // beyond these the quantizer saturates (half a bin past the ends)
  CodebookGroup(const T* cb, int K_) : c(cb), K(K_), mid(K_ - 1) {
    for (int j = 0; j + 1 < K; ++j) mid[j] = c[j] * T(0.5) + c[j + 1] * T(0.5);
    lo = c[0] - (c[1] - c[0]) * T(0.5);
    hi = c[K - 1] + (c[K - 1] - c[K - 2]) * T(0.5);
  }
  // x goes above midpoint m when x > m, or x == m and the upper entry is farther from zero.
  static bool above(T x, T m) { return x > m || (x == m && m >= T(0)); }
  int code(T x) const {  // branch-light binary search: first midpoint x is not above
    int lo_i = 0, n = K - 1;
    while (n > 0) {
      const int half = n / 2;
      if (above(x, mid[lo_i + half])) {
        lo_i += half + 1;
        n -= half + 1;
      } else {
        n = half;
      }
    }
    return lo_i;
  }
};

template <class T>
bool codebook_range(const T* w, int64_t b, int64_t e, const CodebookGroup<T>& cg,
                    uint8_t* codes, T* fq, bool* mask) {
  int bad = 0;
  constexpr int64_t kBlock = 256;
  int32_t idx[kBlock];
  for (int64_t s = b; s < e; s += kBlock) {
    const int64_t n = std::min(kBlock, e - s);
    const T* x = w + s;
    if (cg.K <= 16) {  // counting midpoints vectorizes across elements
      for (int64_t i = 0; i < n; ++i) idx[i] = 0;
      for (int j = 0; j + 1 < cg.K; ++j) {
        const T m = cg.mid[j];
        for (int64_t i = 0; i < n; ++i) idx[i] += CodebookGroup<T>::above(x[i], m);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) idx[i] = cg.code(x[i]);
    }
    for (int64_t i = 0; i < n; ++i) {
      bad |= not_finite(x[i]);
      if (codes) codes[s + i] = uint8_t(idx[i]);
      if (fq) fq[s + i] = cg.c[idx[i]];
      if (mask) mask[s + i] = x[i] >= cg.lo && x[i] <= cg.hi;
    }
  }
  return bad != 0;
}

}  // namespace

#ifdef __AVX2__
// min(round(t), L) for t >= 0 as int32, exactly as sym_range: r = trunc(min(t, L)), plus 1
// when the exact remainder is >= 1/2. _mm256_min_ps(t, L) gives L for a NaN t, as the
// scalar code does.
inline __m256i round_half_up_avx2(__m256 t, __m256 vL) {
  const __m256 tc = _mm256_min_ps(t, vL);
  const __m256i r = _mm256_cvttps_epi32(tc);
  const __m256 up = _mm256_cmp_ps(_mm256_sub_ps(tc, _mm256_cvtepi32_ps(r)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_sub_epi32(r, _mm256_castps_si256(up));  // true lanes are -1
}

// Fake quant only, float: the STE's forward on every training step. Outputs larger than
// the caches are written with non-temporal stores, which skip reading the destination
// lines first (a third of the memory traffic), as large memcpy does.
bool sym_fq_range_avx2(const float* w, int64_t b, int64_t e, float D, int L, float* fq,
                       bool stream) {
  const __m256 vD = _mm256_set1_ps(D), vL = _mm256_set1_ps(float(L));
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 fmax = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 bad = _mm256_setzero_ps();
  int64_t i = b;
  if (stream)  // scalar head up to a 32-byte aligned output address
    for (; i < e && (reinterpret_cast<uintptr_t>(fq + i) & 31) != 0; ++i)
      if (sym_range<float>(w, i, i + 1, D, L, nullptr, fq, nullptr)) bad = _mm256_set1_ps(1);
  for (; i + 8 <= e; i += 8) {
    const __m256 x = _mm256_loadu_ps(w + i);
    const __m256 a = _mm256_and_ps(x, absmask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, fmax, _CMP_NLE_UQ));  // NaN or Inf
    const __m256 mag = _mm256_mul_ps(_mm256_cvtepi32_ps(round_half_up_avx2(_mm256_div_ps(a, vD), vL)), vD);
    const __m256 out = _mm256_or_ps(mag, _mm256_andnot_ps(absmask, x));  // sign of w
    if (stream)
      _mm256_stream_ps(fq + i, out);
    else
      _mm256_storeu_ps(fq + i, out);
  }
  if (stream) _mm_sfence();
  const bool tail_bad = sym_range<float>(w, i, e, D, L, nullptr, fq, nullptr);
  return tail_bad || _mm256_movemask_ps(bad) != 0;
}
#endif

#ifdef __AVX2__
// Codes only (activations of the shift kernels): the arithmetic of sym_range, 32 at a time.
bool sym_codes_range_avx2(const float* w, int64_t b, int64_t e, float D, int L, int8_t* codes) {
  const __m256 vD = _mm256_set1_ps(D), vL = _mm256_set1_ps(float(L));
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 fmax = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the per-lane packs
  __m256 bad = _mm256_setzero_ps();
  int64_t i = b;
  auto eight = [&](int64_t at) {
    const __m256 x = _mm256_loadu_ps(w + at);
    const __m256 a = _mm256_and_ps(x, absmask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, fmax, _CMP_NLE_UQ));  // NaN or Inf
    const __m256i mag = round_half_up_avx2(_mm256_div_ps(a, vD), vL);
    return _mm256_sign_epi32(mag, _mm256_castps_si256(_mm256_or_ps(x, _mm256_castsi256_ps(
                                                                         _mm256_set1_epi32(1)))));
  };
  for (; i + 32 <= e; i += 32) {
    const __m256i q01 = _mm256_packs_epi32(eight(i), eight(i + 8));
    const __m256i q23 = _mm256_packs_epi32(eight(i + 16), eight(i + 24));
    const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q01, q23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), q);
  }
  const bool tail_bad = sym_range<float>(w, i, e, D, L, codes, nullptr, nullptr);
  return tail_bad || _mm256_movemask_ps(bad) != 0;
}
#endif

template <class T>
bool sym_quantize(const T* w, int64_t groups, int64_t gsize, const T* step, int bits,
                  int8_t* codes, T* fq, bool* mask) {
  const int L = (1 << (bits - 1)) - 1;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    if (codes && !fq && !mask)
      return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
        return sym_codes_range_avx2(w, b, e, step[g], L, codes);
      });
    if (fq && !codes && !mask) {
      const bool stream = groups * gsize * int64_t(sizeof(float)) >= (int64_t(8) << 20);
      return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
        return sym_fq_range_avx2(w, b, e, step[g], L, fq, stream);
      });
    }
  }
#endif
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    return sym_range(w, b, e, step[g], L, codes, fq, mask);
  });
}

template <class T>
bool sym_dequantize(const int8_t* codes, int64_t groups, int64_t gsize, const T* step, int bits,
                    T* out) {
  const int L = (1 << (bits - 1)) - 1;
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const T D = step[g];
    int bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const int q = codes[i];
      bad |= (q > L) | (q < -L);
      out[i] = T(q) * D;
    }
    return bad != 0;
  });
}

template <class T>
bool affine_quantize(const T* w, int64_t groups, int64_t gsize, const T* scale,
                     const int32_t* zero_point, int bits, uint8_t* codes, T* fq, bool* mask) {
  const int qmax = (1 << bits) - 1;
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    return affine_range(w, b, e, scale[g], zero_point[g], qmax, codes, fq, mask);
  });
}

template <class T>
bool affine_dequantize(const uint8_t* codes, int64_t groups, int64_t gsize, const T* scale,
                       const int32_t* zero_point, int bits, T* out) {
  const int qmax = (1 << bits) - 1;
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const T s = scale[g];
    const int32_t zp = zero_point[g];
    int bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const int32_t q = codes[i];
      bad |= q > qmax;
      out[i] = T(q - zp) * s;
    }
    return bad != 0;
  });
}

template <class T>
bool range_quantize(const T* w, int64_t groups, int64_t gsize, const T* scale, const T* offset,
                    int bits, uint8_t* codes, T* fq, bool* mask) {
  const int qmax = (1 << bits) - 1;
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    return range_range(w, b, e, scale[g], offset[g], qmax, codes, fq, mask);
  });
}

template <class T>
bool range_dequantize(const uint8_t* codes, int64_t groups, int64_t gsize, const T* scale,
                      const T* offset, int bits, T* out) {
  const int qmax = (1 << bits) - 1;
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const T s = scale[g], o = offset[g];
    int bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const int32_t q = codes[i];
      bad |= q > qmax;
      out[i] = range_value(q, s, o);
    }
    return bad != 0;
  });
}

template <class T>
bool pow2_quantize(const T* w, int64_t groups, int64_t gsize, const T* max_level, int bits,
                   int8_t* codes, T* fq, bool* mask) {
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const Pow2Group<T> pg(max_level[g], bits);
    return pow2_range(w, b, e, pg, codes, fq, mask);
  });
}

template <class T>
bool pow2_dequantize(const int8_t* codes, int64_t groups, int64_t gsize, const T* max_level,
                     int bits, T* out) {
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const Pow2Group<T> pg(max_level[g], bits);
    int bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const int q = codes[i];
      const int k = q < 0 ? -q : q;
      if (k > pg.nexp) {
        bad = 1;
        continue;
      }
      out[i] = q < 0 ? -pg.level[k] : pg.level[k];
    }
    return bad != 0;
  });
}

template <class T>
bool codebook_quantize(const T* w, int64_t groups, int64_t gsize, const T* codebook, int K,
                       uint8_t* codes, T* fq, bool* mask) {
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const CodebookGroup<T> cg(codebook + g * K, K);
    return codebook_range(w, b, e, cg, codes, fq, mask);
  });
}

template <class T>
bool codebook_dequantize(const uint8_t* codes, int64_t groups, int64_t gsize, const T* codebook,
                         int K, T* out) {
  return run_ranges(groups, gsize, [&](int64_t g, int64_t b, int64_t e) {
    const T* c = codebook + g * K;
    int bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const int q = codes[i];
      if (q >= K) {
        bad = 1;
        continue;
      }
      out[i] = c[q];
    }
    return bad != 0;
  });
}

#define LOWBIT_INSTANTIATE(T)                                                                  \
  template bool sym_quantize<T>(const T*, int64_t, int64_t, const T*, int, int8_t*, T*, bool*); \
  template bool sym_dequantize<T>(const int8_t*, int64_t, int64_t, const T*, int, T*);         \
  template bool affine_quantize<T>(const T*, int64_t, int64_t, const T*, const int32_t*, int,  \
                                   uint8_t*, T*, bool*);                                       \
  template bool affine_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*,              \
                                     const int32_t*, int, T*);                                 \
  template bool pow2_quantize<T>(const T*, int64_t, int64_t, const T*, int, int8_t*, T*,       \
                                 bool*);                                                       \
  template bool pow2_dequantize<T>(const int8_t*, int64_t, int64_t, const T*, int, T*);        \
  template bool codebook_quantize<T>(const T*, int64_t, int64_t, const T*, int, uint8_t*, T*,  \
                                     bool*);                                                   \
  template bool codebook_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*, int, T*);   \
  template bool range_quantize<T>(const T*, int64_t, int64_t, const T*, const T*, int, uint8_t*, \
                                  T*, bool*);                                                  \
  template bool range_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*, const T*, int,  \
                                    T*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

LOWBIT_ISA_END
