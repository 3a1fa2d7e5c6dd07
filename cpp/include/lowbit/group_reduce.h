// Per-group reductions that parallelize either across groups (many small groups) or
// across chunks of one group (few large groups), and the statistics pass built on it.
#pragma once
#include <limits>
#include <vector>

#include "lowbit/common.h"

namespace lowbit {
inline namespace LOWBIT_HELPERS {

// fn(g, begin, end, acc) accumulates a range of group g into acc; merge(dst, src).
// Returns one accumulator per group.
template <class Acc, class Fn, class Merge>
std::vector<Acc> reduce_groups(int64_t groups, int64_t gsize, const Acc& init, Fn&& fn,
                               Merge&& merge) {
  std::vector<Acc> out(groups, init);
  const int nt = threads_for(groups * gsize);
  if (groups >= 4 * nt || nt == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t g = 0; g < groups; ++g) fn(g, g * gsize, (g + 1) * gsize, out[g]);
    return out;
  }
  const int64_t grain = int64_t(1) << 15;
  const int64_t nchunks = std::max<int64_t>(nt, (gsize + grain - 1) / grain);
  const int64_t step = (gsize + nchunks - 1) / nchunks;
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<Acc> part(nchunks, init);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t b = std::min(gsize, c * step), e = std::min(gsize, b + step);
      fn(g, g * gsize + b, g * gsize + e, part[c]);
    }
    for (const Acc& p : part) merge(out[g], p);
  }
  return out;
}

// L2-optimal step / sigma of a unit Gaussian for the symmetric quantizer with
// L = 2^(b-1) - 1 levels a side, b = 2..8 (numerical integration; the ternary value
// 1.224 is the known 0.612-sigma threshold): the mean/std step rule, and QStep's first
// Lloyd start. Tested against qstep_l2 on Gaussian samples.
constexpr double kGaussianStep[9] = {0, 0, 1.22401, 0.65077, 0.35341,
                                     0.19325, 0.10549, 0.05726, 0.03087};

struct Stats {
  double maxabs = 0, minv = std::numeric_limits<double>::infinity(),
         maxv = -std::numeric_limits<double>::infinity(), sumsq = 0;
  bool bad = false;
};

template <class T> std::vector<Stats> group_stats(const T* w, int64_t groups, int64_t gsize) {
  return reduce_groups<Stats>(
      groups, gsize, Stats{},
      [w](int64_t, int64_t b, int64_t e, Stats& acc) {
        T mn = std::numeric_limits<T>::infinity(), mx = -mn;
        double ss = 0;
        int bad = 0;
#pragma omp simd reduction(min : mn) reduction(max : mx) reduction(+ : ss) reduction(| : bad)
        for (int64_t i = b; i < e; ++i) {
          const T x = w[i];
          bad |= !(std::abs(x) <= std::numeric_limits<T>::max());
          mn = std::min(mn, x);
          mx = std::max(mx, x);
          ss += double(x) * double(x);
        }
        acc.minv = std::min<double>(acc.minv, mn);
        acc.maxv = std::max<double>(acc.maxv, mx);
        acc.maxabs = std::max(acc.maxabs, std::max(std::abs(double(mn)), std::abs(double(mx))));
        acc.sumsq += ss;
        acc.bad = acc.bad || bad;
      },
      [](Stats& d, const Stats& s) {
        d.minv = std::min(d.minv, s.minv);
        d.maxv = std::max(d.maxv, s.maxv);
        d.maxabs = std::max(d.maxabs, s.maxabs);
        d.sumsq += s.sumsq;
        d.bad = d.bad || s.bad;
      });
}

}  // namespace LOWBIT_HELPERS
}  // namespace lowbit
