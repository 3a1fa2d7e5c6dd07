// Layout helpers for convolution-shaped layers of a fused inference chain: im2col on
// activation codes or floats, and max pooling. Plain loops; the products are elsewhere.
#include <cmath>
#include <limits>

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

template <class T>
void im2col(const T* x, const Conv2dShape& s, int64_t c0, int64_t channels, T* cols) {
  const int64_t Kc = channels * s.kh * s.kw;
  for (int64_t oh = 0; oh < s.Ho; ++oh)
    for (int64_t ow = 0; ow < s.Wo; ++ow) {
      T* col = cols + (oh * s.Wo + ow) * Kc;
      for (int64_t c = 0; c < channels; ++c) {
        const T* img = x + (c0 + c) * s.H * s.W;
        for (int64_t i = 0; i < s.kh; ++i) {
          const int64_t h = oh * s.sh - s.ph + i * s.dh;
          const bool row_in = h >= 0 && h < s.H;
          for (int64_t j = 0; j < s.kw; ++j) {
            const int64_t w = ow * s.sw - s.pw + j * s.dw;
            *col++ = row_in && w >= 0 && w < s.W ? img[h * s.W + w] : T(0);
          }
        }
      }
    }
}
template void im2col<int8_t>(const int8_t*, const Conv2dShape&, int64_t, int64_t, int8_t*);
template void im2col<float>(const float*, const Conv2dShape&, int64_t, int64_t, float*);

namespace {
// m or v, whichever is larger; NaN wins (as in torch).
inline float max_nan(float m, float v) { return v > m || v != v ? v : m; }
}  // namespace

void max_pool2d(const float* x, const Conv2dShape& s, float* out) {
  if (s.ph == 0 && s.pw == 0) {  // every window inside the image: no bounds to check
    for (int64_t c = 0; c < s.C; ++c) {
      const float* img = x + c * s.H * s.W;
      for (int64_t oh = 0; oh < s.Ho; ++oh, out += s.Wo) {
        const float* top = img + oh * s.sh * s.W;
        for (int64_t ow = 0; ow < s.Wo; ++ow) out[ow] = top[ow * s.sw];
        for (int64_t i = 0; i < s.kh; ++i) {
          const float* row = top + i * s.dh * s.W;
          for (int64_t j = (i == 0); j < s.kw; ++j)
            for (int64_t ow = 0; ow < s.Wo; ++ow) out[ow] = max_nan(out[ow], row[ow * s.sw + j * s.dw]);
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < s.C; ++c) {
    const float* img = x + c * s.H * s.W;
    for (int64_t oh = 0; oh < s.Ho; ++oh)
      for (int64_t ow = 0; ow < s.Wo; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < s.kh; ++i) {
          const int64_t h = oh * s.sh - s.ph + i * s.dh;
          if (h < 0 || h >= s.H) continue;
          for (int64_t j = 0; j < s.kw; ++j) {
            const int64_t w = ow * s.sw - s.pw + j * s.dw;
            if (w < 0 || w >= s.W) continue;
            const float v = img[h * s.W + w];
            m = max_nan(m, v);
          }
        }
        *out++ = m;
      }
  }
}

void relu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] < 0.0f ? 0.0f : x[i];  // an unconditional store: a blend
}

LOWBIT_ISA_END
