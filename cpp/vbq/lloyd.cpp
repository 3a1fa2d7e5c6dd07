// Lloyd-Max (1-D k-means): the MSE-optimal codebook every VBQ result is compared with.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/vbq.h"

namespace lowbit {
namespace vbq {

namespace {

// Index of the first sorted value that goes above midpoint m, with the codebook
// quantizer's tie rule: a value exactly on m goes to the entry farther from zero.
int64_t boundary(const std::vector<double>& s, double m) {
  auto it = m >= 0 ? std::lower_bound(s.begin(), s.end(), m) : std::upper_bound(s.begin(), s.end(), m);
  return int64_t(it - s.begin());
}

}  // namespace

int lloyd_max(const double* w, int64_t n, int K, int max_iter, double tol, const double* init,
              double* out) {
  if (K < 2 || K > 256) throw std::invalid_argument("bins must be in [2, 256], got " + std::to_string(K));
  if (n < K) throw std::invalid_argument("need at least `bins` weights, got " + std::to_string(n));
  if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
  if (!(tol >= 0)) throw std::invalid_argument("tol must be >= 0");
  std::vector<double> s(w, w + n);
  for (double x : s)
    if (!std::isfinite(x)) throw std::invalid_argument("w must be finite (found NaN or Inf)");
  std::sort(s.begin(), s.end());
  const double lo = s.front(), hi = s.back();
  if (!(hi > lo)) throw std::invalid_argument("w must hold at least 2 distinct values");
  // Prefix sums make every cell mean O(1); long double keeps the differences exact enough.
  std::vector<long double> sum(n + 1, 0.0L);
  for (int64_t i = 0; i < n; ++i) sum[i + 1] = sum[i] + s[i];

  std::vector<double> c(K), prev(K);
  for (int j = 0; j < K; ++j)
    c[j] = init ? init[j] : s[std::min<int64_t>(n - 1, int64_t((j + 0.5) * double(n) / K))];
  ga_repair(c.data(), K, std::min(lo, c.front()), std::max(hi, c.back()), false);

  int it = 0;
  for (; it < max_iter; ++it) {
    prev = c;
    int64_t begin = 0;
    for (int j = 0; j < K; ++j) {
      const int64_t end = j + 1 < K ? boundary(s, prev[j] * 0.5 + prev[j + 1] * 0.5) : n;
      if (end > begin) c[j] = double((sum[end] - sum[begin]) / (long double)(end - begin));
      begin = std::max(begin, end);
    }
    // An empty cell keeps its value, which can leave it out of order: put it back.
    if (!std::is_sorted(c.begin(), c.end()) || std::adjacent_find(c.begin(), c.end()) != c.end())
      ga_repair(c.data(), K, std::min(lo, c.front()), std::max(hi, c.back()), false);
    double delta = 0;
    for (int j = 0; j < K; ++j) delta = std::max(delta, std::abs(c[j] - prev[j]));
    if (delta <= tol * (hi - lo)) {
      ++it;
      break;
    }
  }
  std::copy(c.begin(), c.end(), out);
  return it;
}

}  // namespace vbq
}  // namespace lowbit
