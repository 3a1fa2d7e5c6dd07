// QStep (paper 002): the step D minimizing sum_i (Q(w_i, D) - w_i)^2 for the symmetric
// quantizer. One algorithm, also in python/lowbit/reference/qparams.py:
//   1. the error on the dense grid D_j = j/1000 * max|w| / (L - 1/2), j = 1..1000, L levels
//      a side;
//   2. Lloyd iterations D <- sum k_i |w_i| / sum k_i^2 (each never increases E) from the
//      best local minima of the grid, at most three, whose error is within 1% of the
//      grid's best;
//   3. of those results and the no-clipping step D_1000, the one with the smallest error
//      in the quantizer's own arithmetic (codes from |w| / D in the weight dtype, rounded
//      exactly, values k * D in that dtype, squared errors summed in double).
// Lloyd from the grid's best step never increases its error, so the result is never
// worse than every grid step (up to the rounding of the error sums).
//
// Groups of up to kSortMax values are sorted (|w| ascending, with prefix sums of |w| and
// w^2, and a bucket table that finds the rank of any value in O(1)): the error of a step
// then costs L rank look-ups. The grid is swept outward from the Gaussian-optimal step,
// and a step is dropped as soon as the error of the quantization cells seen so far (the
// top level first, where clipping costs, then from level 0 up) exceeds 1.01 times the
// best grid error found so far: cell errors are non-negative, so a dropped step can
// neither be the grid's best nor lie within 1% of it. The result is exactly the
// algorithm above on exact sums.
//
// Larger groups are summarized by a histogram over [0, max|w|] (256 L bins, 4096..65536),
// whose error at any step costs one look-up per level. Bins straddling a level boundary
// go wholly to one side, so the histogram's error is an upper bound; a bin [lo, hi) with
// c values of mean mu can be wrong by at most 2 D c (hi - mu)(m - lo) / (hi - lo) per
// boundary m (convexity). Every grid step whose lower bound beats the best exact error
// found is evaluated exactly on the data; the result is never worse than the grid.
//
// Results depend on neither the thread count nor the instruction set: a sorted group is
// solved by one thread (and the sort's result is unique); a histogram sums counts and
// fixed-point offsets in bins (integers: any order gives the same sums), and w^2 and the
// exact errors per block of values, the blocks added in order; the floating-point
// arithmetic is the same scalar code in both builds (no FMA contraction), vectorized
// only across independent lanes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/group_reduce.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX2__
#include <immintrin.h>
#endif

LOWBIT_ISA_BEGIN

namespace {

constexpr int kGrid = 1000;
constexpr int kStarts = 3;          // Lloyd starts from the grid's local minima
constexpr int kLloydIters = 30;     // refinement only: the guarantee comes from the grid
constexpr double kNear = 1.01;      // minima within 1% of the grid's best start Lloyd
constexpr int64_t kSortMax = int64_t(1) << 16;  // groups up to this size are sorted

double grid_step(double maxabs, int L, int j) { return maxabs / (L - 0.5) * j / kGrid; }

// The first Lloyd start: the Gaussian-optimal step for the group's RMS, never above the
// no-clipping step.
double first_start(double maxabs, double sumsq, int64_t n, int L, int bits) {
  return std::min(grid_step(maxabs, L, kGrid), kGaussianStep[bits] * std::sqrt(sumsq / double(n)));
}

// Lloyd iterations from D (error E); Summary::moments(D, L, Sk1, Sk2) gives
// sum k|w| and sum k^2, Summary::S2() sum w^2.
template <class S> double lloyd(const S& s, double D, double E, int L, double a, double b) {
  for (int it = 0; it < kLloydIters && b > 0; ++it) {
    const double Dn = a / b;
    double an, bn;
    s.moments(Dn, L, an, bn);
    const double En = s.S2() - 2 * Dn * an + Dn * Dn * bn;
    if (!(En < E) || Dn == D) break;
    D = Dn;
    E = En;
    a = an;
    b = bn;
  }
  return D;
}
template <class S> double lloyd(const S& s, double D, double E, int L) {
  double a, b;
  s.moments(D, L, a, b);
  return lloyd(s, D, E, L, a, b);
}

// Up to kStarts local minima of the grid (E[0] = E[kGrid + 1] = inf; +inf marks a step
// known to be worse than kNear times the best) within kNear of the best, best first.
std::vector<int> best_minima(const std::vector<double>& E) {
  double best = INFINITY;
  for (int j = 1; j <= kGrid; ++j) best = std::min(best, E[j]);
  const double bound = kNear * best;
  std::vector<int> minima;
  for (int j = 1; j <= kGrid; ++j)
    if (E[j] <= bound && E[j] <= E[j - 1] && E[j] <= E[j + 1]) minima.push_back(j);
  std::stable_sort(minima.begin(), minima.end(), [&](int a, int b) { return E[a] < E[b]; });
  if (minima.size() > size_t(kStarts)) minima.resize(kStarts);
  return minima;
}

// ---- sorted summary (groups up to kSortMax values) -------------------------------------

constexpr int kPad = 16;    // +inf after the sorted values (rank() and the sort read 8 ahead)
constexpr int kSmall = 12;  // buckets up to this size are sorted by odd-even transposition

// Sorts runs of at most `phases` values that are out of order only among themselves (the
// buckets): odd-even transposition, `phases` rounds of compare-exchange over the array.
// a[n .. n + kPad) hold +inf. Any method gives the same array: the order is unique.
inline void sort_runs(float* a, int64_t n, int phases) {
#ifdef __AVX2__
  const int64_t nn = (n + 7) & ~int64_t(7);
  for (int ph = 0; ph < phases; ++ph) {
    float* b = a + (ph & 1);
    for (int64_t i = 0; i < nn; i += 8) {
      const __m256 v = _mm256_loadu_ps(b + i);
      const __m256 sw = _mm256_permute_ps(v, 0xB1);  // swap neighbours
      _mm256_storeu_ps(b + i, _mm256_blend_ps(_mm256_min_ps(v, sw), _mm256_max_ps(v, sw), 0xAA));
    }
  }
#else
  for (int ph = 0; ph < phases; ++ph)
    for (int64_t i = ph & 1; i < n; i += 2) {
      const float x = a[i], y = a[i + 1];
      a[i] = std::min(x, y);
      a[i + 1] = std::max(x, y);
    }
#endif
}
inline void sort_runs(double* a, int64_t n, int phases) {
  for (int ph = 0; ph < phases; ++ph)
    for (int64_t i = ph & 1; i < n; i += 2) {
      const double x = a[i], y = a[i + 1];
      a[i] = std::min(x, y);
      a[i + 1] = std::max(x, y);
    }
}

// How many of p[0..7] are < m.
inline int below8(const double* p, double m) {
  int c = 0;
  for (int i = 0; i < 8; ++i) c += int(p[i] < m);
  return c;
}
inline int below8(const float* p, double m) {
#ifdef __AVX2__
  const __m256d vm = _mm256_set1_pd(m);
  const __m256 v = _mm256_loadu_ps(p);
  const int lo = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm, _CMP_LT_OQ));
  const int hi = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm, _CMP_LT_OQ));
  return __builtin_popcount(unsigned(lo | (hi << 4)));
#else
  int c = 0;
  for (int i = 0; i < 8; ++i) c += int(double(p[i]) < m);
  return c;
#endif
}

template <class T> struct SortedAbs {
  int64_t n = 0, B = 0;
  double c = 0;                        // bucket of x >= 0: trunc(min(x c, B - 1)), monotone
  std::vector<T> buf;                  // 0, |w| ascending, kPad copies of +inf
  T* a = nullptr;                      // buf + 1
  std::vector<int32_t> counts;         // 0, first index of each bucket, n (B + 2)
  const int32_t* start = nullptr;      // counts + 1
  std::vector<int32_t> key, big;       // bucket of each value; buckets over kSmall
  std::vector<double> S1, Q;           // prefix sums of |w| and w^2, size n + 1

  double S2() const { return Q[n]; }
  int64_t bucket(double x) const { return int64_t(std::min(x * c, double(B - 1))); }

  // #{i : a_i < m}. Values in lower buckets are < m and values in higher ones > m (the
  // bucket map is monotone), so only m's own bucket is searched: its first 8 in one step
  // (what follows the bucket is > m, the pads +inf), the rest by a scan.
  int64_t rank(double m) const {
    const int64_t s = start[bucket(m)];
    int64_t r = s + below8(a + s, m);
    if (r == s + 8)
      while (double(a[r]) < m) ++r;
    return r;
  }

  void build(const T* w, int64_t n_, double maxabs) {
    n = n_;
    last_D = -1;
    B = std::max<int64_t>(16, n);
    c = double(B) / maxabs;
    key.resize(n);
    counts.resize(B + 2);
    buf.resize(n + kPad + 1);
    a = buf.data() + 1;
    a[-1] = T(0);
    int32_t* k = key.data();
    for (int64_t i = 0; i < n; ++i)
      k[i] = int32_t(std::min(std::abs(double(w[i])) * c, double(B - 1)));
    // Counting sort by bucket: counts[b + 1] ends as the first index of bucket b
    // (start = counts + 1), filled from the back.
    int32_t* st = counts.data();
    std::memset(st, 0, size_t(B + 2) * sizeof(int32_t));
    for (int64_t i = 0; i < n; ++i) ++st[k[i] + 1];
    int32_t maxc = 0;
    for (int64_t b = 1; b <= B; ++b) maxc = std::max(maxc, st[b]);  // vectorizes
    int32_t small = maxc;  // the largest bucket up to kSmall values
    big.clear();
    if (maxc > kSmall) {  // rare for smooth data
      small = 0;
      for (int64_t b = 1; b <= B; ++b) {
        if (st[b] > kSmall) big.push_back(int32_t(b - 1));
        else small = std::max(small, st[b]);
      }
    }
    int32_t run = 0;
    for (int64_t b = 1; b <= B; ++b) {
      run += st[b];
      st[b] = run;
    }
    st[B + 1] = int32_t(n);
    for (int64_t i = n - 1; i >= 0; --i) a[--st[k[i] + 1]] = std::abs(w[i]);
    start = st + 1;
    for (int p = 0; p < kPad; ++p) a[n + p] = std::numeric_limits<T>::infinity();
    for (int32_t b : big) std::sort(a + start[b], a + start[b + 1]);
    sort_runs(a, n, small);
    S1.resize(n + 1);
    Q.resize(n + 1);
    double* P1 = S1.data();
    double* P2 = Q.data();
    double s1 = 0, s2 = 0;
    P1[0] = P2[0] = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {  // blocks of 4: one carried add per block, not per value
      const double v0 = a[i], v1 = a[i + 1], v2 = a[i + 2], v3 = a[i + 3];
      const double x1 = v0 + v1, x2 = x1 + v2, x3 = x2 + v3;
      const double q0 = v0 * v0, q1 = q0 + v1 * v1, q2 = q1 + v2 * v2, q3 = q2 + v3 * v3;
      P1[i + 1] = s1 + v0;
      P1[i + 2] = s1 + x1;
      P1[i + 3] = s1 + x2;
      P1[i + 4] = s1 + x3;
      P2[i + 1] = s2 + q0;
      P2[i + 2] = s2 + q1;
      P2[i + 3] = s2 + q2;
      P2[i + 4] = s2 + q3;
      s1 = s1 + x3;
      s2 = s2 + q3;
    }
    for (; i < n; ++i) {
      const double v = a[i];
      s1 = s1 + v;
      s2 = s2 + v * v;
      P1[i + 1] = s1;
      P2[i + 1] = s2;
    }
  }

  // Sum k|w| and sum k^2 at step D, from p_k = rank((k - 1/2) D):
  //   sum k|w| = L S1[n] - sum_k S1[p_k],   sum k^2 = L^2 n - sum_k (2k - 1) p_k.
  // Lloyd's steps are small: the ranks of the last call are walked to the new boundaries
  // when D moved by less than 1%, else looked up.
  void moments(double D, int L, double& Sk1, double& Sk2) const {
    const bool walk = last_D > 0 && std::abs(D - last_D) <= 0.01 * last_D;
    last.resize(L + 1);
    double sx = 0;
    int64_t sc = 0;
    for (int k = 1; k <= L; ++k) {
      const double m = (k - 0.5) * D;
      int64_t p;
      if (walk) {
        p = last[k];
        while (double(a[p]) < m) ++p;       // the pads are +inf
        while (double(a[p - 1]) >= m) --p;  // a[-1] = 0 < m
      } else {
        p = rank(m);
      }
      last[k] = int32_t(p);
      sx += S1[p];
      sc += (2 * int64_t(k) - 1) * p;
    }
    last_D = D;
    Sk1 = L * S1[n] - sx;
    Sk2 = double(int64_t(L) * L * n - sc);
  }
  mutable std::vector<int32_t> last;  // ranks of the last moments() call, at step last_D
  mutable double last_D = -1;

  // The error in the quantizer's arithmetic: code k >= j exactly when T(|w| / Dt) >= j - 1/2
  // (monotone in |w|), value T(k) * Dt; the squared errors summed per cell in double.
  double quantizer_error(T Dt, int L) const {
    double e = 0;
    int64_t lo = 0;
    for (int k = 0; k <= L; ++k) {
      int64_t hi = n;
      if (k < L) {
        const T thr = T(k + 1) - T(0.5);
        hi = std::max(lo, rank((k + 0.5) * double(Dt)));
        while (hi > lo && a[hi - 1] / Dt >= thr) --hi;
        while (hi < n && !(a[hi] / Dt >= thr)) ++hi;
      }
      const double v = double(T(k) * Dt);
      e += (Q[hi] - Q[lo]) - 2 * v * (S1[hi] - S1[lo]) + v * v * double(hi - lo);
      lo = hi;
    }
    return std::max(0.0, e);
  }
};

// Error on the grid, sweeping from j0 up to kGrid and from j0 - 1 down to 1. At each step
// the top cell (level L, where clipping costs) is taken first, then the cells from level 0
// up; the step is dropped (E = +inf) once they exceed kNear times the best error so far.
// The error of the values beyond the top level, sum (|w| - L D)^2 over |w| >= L D, only
// grows as D falls, and the bottom cell's (|w| < D/2) as D rises, so either one alone
// exceeding the bound ends its sweep. With x_k = S1[p_k] and
// p_k = rank((k - 1/2) D), cells 0..K-1 cost
//   Q[p_K] - 2 D (K x_K - sum_1^K x) + D^2 (K^2 p_K - sum_1^K (2k - 1) p),
// and the full error is Q[n] - 2 D (L S1[n] - sum_1^L x) + D^2 (L^2 n - sum_1^L (2k - 1) p).
template <bool Up, class T>
void grid_sweep_dir(const SortedAbs<T>& s, double D_hi, int L, int jb, const double* half,
                    double& best, std::vector<double>& E, std::vector<double>& M1,
                    std::vector<double>& M2) {
  const int64_t n = s.n;
  const double S1N = s.S1[n], QN = s.Q[n];
  const double* S1 = s.S1.data();
  const double* Q = s.Q.data();
  constexpr int dj = Up ? 1 : -1;
  int depth = 1;                // levels the previous step took
  auto rank_at = [&](int, double m, int) { return s.rank(m); };
  for (int j = jb; Up ? j <= kGrid : j >= 1; j += dj) {
    const double D = D_hi * j / kGrid, bound = kNear * best;  // = grid_step(maxabs, L, j)
    const int64_t pL = rank_at(L, half[L] * D, j);
    const double xL = S1[pL];
    const double top = QN - Q[pL] - 2 * D * L * (S1N - xL) + D * D * double(int64_t(L) * L * (n - pL));
    if (top > bound) {
      if (!Up) {  // values beyond the top level cost (|w| - L D)^2, which only grows as D falls
        const int64_t pc = rank_at(L + 1, L * D, j);
        const double LD = L * D;
        if (QN - Q[pc] - 2 * LD * (S1N - S1[pc]) + LD * LD * double(n - pc) > bound) break;
      }
      continue;
    }
    const double D2 = D * D;
    double bx = 0, xk = 0;
    int64_t bc = 0, pk = 0;
    auto take = [&](int k) {
      pk = rank_at(k, half[k] * D, j);
      xk = S1[pk];
      bx += xk;
      bc += (2 * int64_t(k) - 1) * pk;
    };
    // error of cells 0..K-1, once boundaries 1..K are taken
    auto bottom = [&](int K) { return Q[pk] - 2 * D * (K * xk - bx) + D2 * double(int64_t(K) * K * pk - bc); };
    // Cells from level 0 up: first as many as the previous step needed (less 3), without
    // looking, then checked every 4 levels.
    bool dropped = false;
    int k = 1;
    const int first = std::min(L - 1, std::max(1, depth - 3));
    while (k <= first) take(k++);
    if (k > 1) dropped = top + bottom(k - 1) > bound;
    while (!dropped && k + 3 < L) {
      take(k);
      take(k + 1);
      take(k + 2);
      take(k + 3);
      k += 4;
      dropped = top + bottom(k - 1) > bound;
    }
    while (!dropped && k < L) take(k++);
    depth = k;
    if (dropped) {
      if (Up && Q[s.rank(0.5 * D)] > bound) break;  // the bottom cell alone: every larger step too
      continue;
    }
    M1[j] = L * S1N - (bx + xL);  // sum k|w| and sum k^2: Lloyd's first step from here
    M2[j] = double(int64_t(L) * L * n - (bc + (2 * int64_t(L) - 1) * pL));
    E[j] = std::max(0.0, QN - 2 * D * M1[j] + D * D * M2[j]);  // >= 0 but for the rounding
    best = std::min(best, E[j]);
  }
}

template <class T>
void grid_sweep(const SortedAbs<T>& s, double maxabs, int L, int j0, std::vector<double>& E,
                std::vector<double>& M1, std::vector<double>& M2) {
  const double D_hi = maxabs / (L - 0.5);
  double half[128];  // k - 1/2
  for (int k = 0; k <= L; ++k) half[k] = k - 0.5;
  double best = INFINITY;
  grid_sweep_dir<true>(s, D_hi, L, j0, half, best, E, M1, M2);
  if (j0 > 1) grid_sweep_dir<false>(s, D_hi, L, j0 - 1, half, best, E, M1, M2);
}

template <class T>
T solve_sorted(const T* w, int64_t n, const Stats& st, int L, int bits, SortedAbs<T>& s,
               std::vector<double>& E, std::vector<double>& M1, std::vector<double>& M2) {
  s.build(w, n, st.maxabs);
  const double D_hi = grid_step(st.maxabs, L, kGrid);
  // The sweep starts at the grid step nearest the Gaussian-optimal one (only the amount of
  // work depends on it, not the result).
  const double D0 = first_start(st.maxabs, s.S2(), n, L, bits);
  const int j0 = int(std::min<double>(kGrid, std::max(1.0, std::round(D0 / D_hi * kGrid))));
  E.assign(kGrid + 2, INFINITY);
  M1.resize(kGrid + 2);
  M2.resize(kGrid + 2);
  grid_sweep(s, st.maxabs, L, j0, E, M1, M2);
  // Lloyd from the best minima; the candidates compared in the quantizer's arithmetic.
  T fallback = T(D_hi);
  if (!(fallback > T(0))) fallback = T(st.maxabs);  // subnormal group: D_hi underflows
  std::vector<T> cand{fallback};
  for (int j : best_minima(E))
    cand.push_back(T(lloyd(s, grid_step(st.maxabs, L, j), E[j], L, M1[j], M2[j])));
  T best_D = fallback;
  double best_E = INFINITY;
  for (size_t i = 0; i < cand.size(); ++i) {
    if (!(cand[i] > T(0)) || std::find(cand.begin(), cand.begin() + i, cand[i]) != cand.begin() + i)
      continue;
    const double e = s.quantizer_error(cand[i], L);
    if (e < best_E) {
      best_E = e;
      best_D = cand[i];
    }
  }
  return best_D;
}

// ---- histogram summary (larger groups) --------------------------------------------------

// Histogram bins for L levels a side: the certification gap shrinks like (L / bins)^2.
int64_t bins_for(int L) { return std::min<int64_t>(65536, std::max<int64_t>(4096, 256 * L)); }

struct Histogram {
  double h = 0;                    // bin width
  std::vector<double> val;         // bin means (0 if empty)
  std::vector<double> C, S1;       // prefix sums of count and sum |w|, size units + 1
  double sumsq = 0;                // sum w^2 over the group
  int64_t n = 0;
  std::vector<uint32_t> cnt;       // scratch: per-thread counts
  std::vector<uint64_t> off;       // scratch: per-thread sums of offsets in bins
  std::vector<double> block_sq;    // scratch: sum w^2 per block

  double S2() const { return sumsq; }
  size_t units() const { return val.size(); }
  double count(size_t i) const { return C[i + 1] - C[i]; }

  // Bins that go below the level boundary m (a bin goes wholly to the side of its mean).
  size_t below(double m) const {
    const double b = m / h;
    if (!(b < double(units()))) return units();
    const size_t i = size_t(b);
    return i + (count(i) > 0 && val[i] < m ? 1 : 0);
  }

  void moments(double D, int L, double& Sk1, double& Sk2) const {
    const size_t N = units();
    double sx = 0, sc = 0;
    for (int k = 1; k <= L; ++k) {
      const size_t p = below((k - 0.5) * D);
      sx += S1[p];
      sc += (2.0 * k - 1) * C[p];
    }
    Sk1 = L * S1[N] - sx;
    Sk2 = double(L) * L * C[N] - sc;
  }
  double error(double D, int L) const {
    double a, b;
    moments(D, L, a, b);
    return sumsq - 2 * D * a + D * D * b;
  }
  // Upper bound on how much error() can exceed the exact error at step D. Only the bin
  // [lo, hi) holding a boundary m is split wrongly: it goes wholly up when its mean mu
  // >= m, and each value a < m left behind costs 2 D (m - a). That sum is convex in
  // every value, so with c values of mean mu it peaks with the values at lo and hi:
  // 2 D c (hi - mu)(m - lo) / (hi - lo), and symmetrically when the bin goes down.
  double gap(double D, int L) const {
    double g = 0;
    for (int k = 1; k <= L; ++k) {
      const double m = (k - 0.5) * D, b = m / h;
      if (!(b < double(units()))) break;
      const size_t i = size_t(b);
      const double c = count(i);
      if (c == 0) continue;
      // bin edges widened for the rounding of the bin index; the mean is low by < h / 2^24
      const double lo = i * h * (1 - 1e-12), hi = (i + 1) * h * (1 + 1e-12), mu = val[i];
      g += val[i] >= m ? c * (hi - mu) * std::max(0.0, m - lo) / (hi - lo)
                       : c * (mu + h * 0x1p-24 - lo) * std::max(0.0, hi - m) / (hi - lo);
    }
    // and sum k|w| is low by at most L n h / 2^24, which raises error() by up to 2 D that
    return 2 * D * (g + L * double(n) * h * 0x1p-24) * (1 + 1e-9);
  }

  // Counts and sums per bin. A value's offset in its bin is summed in fixed point (units
  // of h / 2^24, rounded down), so that the per-thread histograms add up to the same
  // integers however many threads share the group; sum w^2 is summed per block of 1024
  // values, the blocks in order. The rounded offsets make S1 low by at most n h / 2^24 and
  // the means low by at most h / 2^24, which gap() allows for.
  template <class T> void build(const T* w, int64_t n_, double maxabs, int L, int nt) {
    n = n_;
    const int64_t B = std::min(bins_for(L), std::max<int64_t>(512, n / 2));
    h = maxabs / double(B);
    const double inv = double(B) / maxabs;
    // interleaved copies per thread, so that neighbouring values falling in the same bin
    // do not wait on each other's store (pays on long runs only)
    const int kWays = n / nt >= (int64_t(1) << 16) && B <= 8192 ? 4 : 1;  // and fit in L2
    constexpr int64_t kBlock = 1024;
    const size_t copies = size_t(nt) * kWays;
    cnt.assign(copies * B, 0);  // a thread sees < 2^32 values: groups are split
    off.assign(copies * B, 0);
    const int64_t nblocks = (n + kBlock - 1) / kBlock;
    block_sq.assign(nblocks, 0);
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
      const size_t me = size_t(omp_get_thread_num());
#else
      const size_t me = 0;
#endif
      uint32_t* c = cnt.data() + me * kWays * B;
      uint64_t* o = off.data() + me * kWays * B;
      int32_t bins[kBlock];
      uint32_t offs[kBlock];
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < nblocks; ++blk) {
        const int64_t s0 = blk * kBlock, len = std::min(kBlock, n - s0);
        double sq[4] = {0, 0, 0, 0};
        for (int64_t i = 0; i < len; ++i) {  // vectorizes: bin and offset of every value
          const double a = std::abs(double(w[s0 + i]));
          const double t = std::min(a * inv, double(B) - 0x1p-20);
          const int32_t bin = int32_t(t);
          bins[i] = bin + int32_t(i % kWays) * int32_t(B);
          offs[i] = uint32_t((t - bin) * 0x1p24);
          sq[i & 3] += a * a;
        }
        block_sq[blk] = (sq[0] + sq[1]) + (sq[2] + sq[3]);
        for (int64_t i = 0; i < len; ++i) {
          c[bins[i]] += 1;
          o[bins[i]] += offs[i];
        }
      }
    }
    sumsq = 0;
    for (int64_t blk = 0; blk < nblocks; ++blk) sumsq += block_sq[blk];
    val.assign(B, 0);
    C.assign(B + 1, 0);
    S1.assign(B + 1, 0);
    for (int64_t bin = 0; bin < B; ++bin) {
      uint64_t cb = 0, ob = 0;
      for (size_t p = 0; p < copies; ++p) {
        cb += cnt[p * B + bin];
        ob += off[p * B + bin];
      }
      const double c = double(cb), s1 = h * (c * double(bin) + double(ob) * 0x1p-24);
      val[bin] = cb > 0 ? s1 / c : 0;
      C[bin + 1] = C[bin] + c;
      S1[bin + 1] = S1[bin] + s1;
    }
  }
};

// E[j] on the histogram for j = 1..kGrid, with b_k = below((k - 1/2) D) and N bins:
//   sum k|w| = L S1[N] - sum_k S1[b_k],   sum k^2 = L^2 C[N] - sum_k (2k - 1) C[b_k].
void grid_errors(const Histogram& s, double maxabs, int L, std::vector<double>& E) {
  E.assign(kGrid + 2, INFINITY);
  for (int j = 1; j <= kGrid; ++j) E[j] = std::max(0.0, s.error(grid_step(maxabs, L, j), L));
}

// Squared error of the quantizer on x[0, len) at step D (its arithmetic: |x| / D in T,
// rounded exactly, value T(k) * D), summed in double over 8 interleaved lanes.
template <class T> inline double error_one(T x, T D, T Lt) {
  const T a = std::abs(x);
  const T t = a / D;
  const T k = T(round_half_up_int(t < Lt ? t : Lt));
  const double d = double(k * D) - double(a);
  return d * d;
}
template <class T> inline void error_lanes(const T* x, int64_t len, T D, T Lt, double* acc) {
  int64_t i = 0;
  for (; i + 8 <= len; i += 8)  // lane l takes the values i = l mod 8: vectorizes, same sums
    for (int l = 0; l < 8; ++l) acc[l] += error_one(x[i + l], D, Lt);
  for (; i < len; ++i) acc[i & 7] += error_one(x[i], D, Lt);
}

// Exact errors of candidate steps on the data: per block of 2048 values (one pass serves
// every candidate: the block stays in L1), the blocks' sums then added in order.
template <class T>
std::vector<double> exact_errors(const T* w, int64_t n, const std::vector<T>& D, int L, int nt) {
  const size_t m = D.size();
  constexpr int64_t kBlock = 2048;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(nblocks) * m, 0);
  const T Lt = T(L);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const T* x = w + blk * kBlock;
    const int64_t len = std::min(kBlock, n - blk * kBlock);
    for (size_t c = 0; c < m; ++c) {
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      error_lanes(x, len, D[c], Lt, acc);
      part[size_t(blk) * m + c] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                                  ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
  }
  std::vector<double> E(m, 0);
  for (int64_t blk = 0; blk < nblocks; ++blk)
    for (size_t c = 0; c < m; ++c) E[c] += part[size_t(blk) * m + c];
  return E;
}

template <class T>
T solve_histogram(const T* w, int64_t n, const Stats& st, int L, int nt, Histogram& s,
                  std::vector<double>& gridE) {
  static const bool debug = std::getenv("LOWBIT_DEBUG_QSTEP") != nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  s.build(w, n, st.maxabs, L, nt);
  const double t_build = debug ? ms() : 0;
  grid_errors(s, st.maxabs, L, gridE);
  const double t_grid = debug ? ms() : 0;
  // The no-clipping step is always a candidate; for subnormal groups it may underflow,
  // then max|w| itself (positive in T) stands in.
  T fallback = T(grid_step(st.maxabs, L, kGrid));
  if (!(fallback > T(0))) fallback = T(st.maxabs);
  std::vector<T> cand{fallback};
  for (int j : best_minima(gridE))
    cand.push_back(T(lloyd(s, grid_step(st.maxabs, L, j), gridE[j], L)));
  std::vector<T> finalists;
  for (T D : cand)
    if (D > T(0) && std::find(finalists.begin(), finalists.end(), D) == finalists.end())
      finalists.push_back(D);
  T best_D = fallback;
  double best_E = INFINITY;
  auto evaluate = [&](const std::vector<T>& cs) {  // exact errors; keeps the best
    const std::vector<double> E = exact_errors(w, n, cs, L, nt);
    for (size_t c = 0; c < cs.size(); ++c)
      if (E[c] < best_E) {
        best_E = E[c];
        best_D = cs[c];
      }
  };
  const double t_lloyd = debug ? ms() : 0;
  evaluate(finalists);
  const double t_final = debug ? ms() : 0;
  std::vector<T> contenders;  // grid steps the histogram cannot rule out
  for (int j = 1; j <= kGrid; ++j) {
    const double D = grid_step(st.maxabs, L, j);
    if (gridE[j] - s.gap(D, L) < best_E && T(D) > T(0)) contenders.push_back(T(D));
  }
  if (!contenders.empty()) evaluate(contenders);
  if (debug)
    std::fprintf(stderr, "qstep histogram n=%lld L=%d: build %.2f, grid %.2f, lloyd %.2f, %zu finalists %.2f, "
                 "%zu contenders %.2f ms\n", (long long)n, L, t_build, t_grid - t_build, t_lloyd - t_grid,
                 finalists.size(), t_final - t_lloyd, contenders.size(), ms() - t_final);
  return best_D;
}

// Per-thread buffers, reused across the groups a thread solves.
template <class T> struct Scratch {
  SortedAbs<T> sorted;
  Histogram hist;
  std::vector<double> E, M1, M2;
};

template <class T>
T solve_group(const T* w, int64_t n, const Stats& st, int L, int bits, int nt, Scratch<T>& s) {
  if (!(st.maxabs > 0)) return T(1);
  // LOWBIT_DEBUG_QSTEP=1 prints each group's time.
  static const bool debug = std::getenv("LOWBIT_DEBUG_QSTEP") != nullptr;
  const auto t0 = debug ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  const T D = n <= kSortMax ? solve_sorted(w, n, st, L, bits, s.sorted, s.E, s.M1, s.M2)
                            : solve_histogram(w, n, st, L, nt, s.hist, s.E);
  if (debug)
    std::fprintf(stderr, "qstep n=%lld L=%d %s: %.3f ms\n", (long long)n, L,
                 n <= kSortMax ? "sorted" : "histogram",
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return D;
}


// max |w| and the non-finite flag of one group (what the sorted path needs).
template <class T> Stats local_stats(const T* w, int64_t n) {
  T mx = 0;
  int bad = 0;
#pragma omp simd reduction(max : mx) reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const T a = std::abs(w[i]);
    bad |= !(a <= std::numeric_limits<T>::max());
    mx = std::max(mx, a);
  }
  Stats st;
  st.maxabs = double(mx);
  st.bad = bad != 0;
  return st;
}

}  // namespace

template <class T>
bool qstep_l2(const T* w, int64_t groups, int64_t gsize, int bits, T* step) {
  const int L = (1 << (bits - 1)) - 1;
  const int nt = threads_for(groups * gsize);
  if (groups >= 2 * nt || nt == 1) {  // a thread per group: each reads its group once
    int bad = 0;
#pragma omp parallel num_threads(nt)
    {
      Scratch<T> scratch;
#pragma omp for schedule(dynamic, 4)
      for (int64_t g = 0; g < groups; ++g) {
        const T* x = w + g * gsize;
        const Stats st = gsize <= kSortMax ? local_stats(x, gsize) : group_stats(x, 1, gsize)[0];
        if (st.bad) {
#pragma omp atomic write
          bad = 1;
          continue;
        }
        step[g] = solve_group(x, gsize, st, L, bits, 1, scratch);
      }
    }
    return bad == 0;
  }
  const auto st = group_stats(w, groups, gsize);
  for (const Stats& s : st)
    if (s.bad) return false;
  Scratch<T> scratch;
  for (int64_t g = 0; g < groups; ++g)
    step[g] = solve_group(w + g * gsize, gsize, st[g], L, bits, nt, scratch);
  return true;
}

template bool qstep_l2<float>(const float*, int64_t, int64_t, int, float*);
template bool qstep_l2<double>(const double*, int64_t, int64_t, int, double*);

LOWBIT_ISA_END
