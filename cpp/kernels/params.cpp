// Quantization parameters that follow from per-group statistics in one pass.
#include <cmath>

#include "lowbit/group_reduce.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

namespace {
// A step must be positive: 1 for an all-zero group (any step keeps zeros exact), and
// max|w| itself when the rule underflows for a group of subnormal values.
template <class T> T positive_step(T step, double maxabs) {
  if (!(maxabs > 0)) return T(1);
  return step > T(0) ? step : T(maxabs);
}

bool any_bad(const std::vector<Stats>& st) {
  for (const Stats& s : st)
    if (s.bad) return true;
  return false;
}
}  // namespace

template <class T>
bool qstep_maxabs(const T* w, int64_t groups, int64_t gsize, int bits, T* step) {
  const auto st = group_stats(w, groups, gsize);
  const T L = T((1 << (bits - 1)) - 1);
  for (int64_t g = 0; g < groups; ++g)
    step[g] = positive_step(T(st[g].maxabs) / L, st[g].maxabs);
  return !any_bad(st);
}

template <class T>
bool qstep_meanstd(const T* w, int64_t groups, int64_t gsize, int bits, T* step) {
  const auto st = group_stats(w, groups, gsize);
  for (int64_t g = 0; g < groups; ++g) {
    const double rms = std::sqrt(st[g].sumsq / double(gsize));
    step[g] = positive_step(T(kGaussianStep[bits] * rms), st[g].maxabs);
  }
  return !any_bad(st);
}

template <class T>
bool affine_params(const T* w, int64_t groups, int64_t gsize, int bits, T* scale,
                   int32_t* zero_point) {
  const auto st = group_stats(w, groups, gsize);
  const int qmax = (1 << bits) - 1;
  for (int64_t g = 0; g < groups; ++g) {
    const T lo = std::min(T(st[g].minv), T(0)), hi = std::max(T(st[g].maxv), T(0));
    T s = hi / T(qmax) - lo / T(qmax);  // (hi - lo) / qmax without overflowing hi - lo
    if (!(s > T(0))) s = T(1);
    const T z = round_half_away(-lo / s);
    scale[g] = s;
    zero_point[g] = int32_t(std::min(std::max(z, T(0)), T(qmax)));
  }
  return !any_bad(st);
}

template <class T>
bool range_params(const T* w, int64_t groups, int64_t gsize, int bits, T* scale, T* offset) {
  const auto st = group_stats(w, groups, gsize);
  const int qmax = (1 << bits) - 1;
  for (int64_t g = 0; g < groups; ++g) {
    const T lo = T(st[g].minv), hi = T(st[g].maxv);
    T s = hi / T(qmax) - lo / T(qmax);  // (hi - lo) / qmax without overflowing hi - lo
    if (!(s > T(0))) s = hi - lo > T(0) ? hi - lo : T(1);  // subnormal span; constant group
    scale[g] = s;
    offset[g] = lo;
  }
  return !any_bad(st);
}

template <class T>
bool pow2_params(const T* w, int64_t groups, int64_t gsize, T* max_level) {
  const auto st = group_stats(w, groups, gsize);
  for (int64_t g = 0; g < groups; ++g) {
    const T a = T(st[g].maxabs);
    const int e = a > T(0) && std::isfinite(a) ? round_log2(a) : 0;
    max_level[g] = std::ldexp(T(1), std::min(e, Pow2Consts<T>::max_exp));
  }
  return !any_bad(st);
}

#define LOWBIT_INSTANTIATE(T)                                                          \
  template bool qstep_maxabs<T>(const T*, int64_t, int64_t, int, T*);                  \
  template bool qstep_meanstd<T>(const T*, int64_t, int64_t, int, T*);                 \
  template bool affine_params<T>(const T*, int64_t, int64_t, int, T*, int32_t*);       \
  template bool pow2_params<T>(const T*, int64_t, int64_t, T*);                        \
  template bool range_params<T>(const T*, int64_t, int64_t, int, T*, T*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

LOWBIT_ISA_END
