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
// Larger groups are summarized by a histogram over [0, max|w|] (1024 L bins, 4096..32768;
// one pass, one 64-bit scatter per value), whose error at any step costs one look-up per
// level. Bins straddling a level boundary go wholly to one side, so the histogram's error
// is an upper bound; a bin [lo, hi) with c values of mean mu can be wrong by at most
// 2 D c (hi - mu)(m - lo) / (hi - lo) per boundary m (convexity). Every grid step whose
// lower bound beats the best exact error of the finalists is evaluated exactly on the
// data; the result is never worse than the grid. One exact pass serves the finalists and
// every grid step whose lower bound beats an upper bound on the finalists' errors (a
// superset of those steps); the exact errors divide only where a multiplication by 1 / D
// could change a code.
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

constexpr int kPad = 32;    // +inf after the sorted values (rank() reads 8 ahead, the sort 16)
constexpr int kSmall = 12;  // buckets up to this size are sorted by odd-even transposition

// Sorts runs of at most `phases` values that are out of order only among themselves (the
// buckets): odd-even transposition, `phases` rounds of compare-exchange over the array.
// a[n .. n + kPad) hold +inf. Any method gives the same array: the order is unique.
inline void sort_runs(float* a, int64_t n, int phases) {
#if defined(__AVX512F__)
  const int64_t nn = (n + 15) & ~int64_t(15);
  for (int ph = 0; ph < phases; ++ph) {
    float* b = a + (ph & 1);
    for (int64_t i = 0; i < nn; i += 16) {
      const __m512 v = _mm512_loadu_ps(b + i);
      const __m512 sw = _mm512_permute_ps(v, 0xB1);  // swap neighbours
      _mm512_storeu_ps(b + i, _mm512_mask_blend_ps(0xAAAA, _mm512_min_ps(v, sw), _mm512_max_ps(v, sw)));
    }
  }
#elif defined(__AVX2__)
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
void grid_sweep_dir(const SortedAbs<T>& s, const double* Dtab, int L, int jb, const double* half,
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
    const double D = Dtab[j], bound = kNear * best;  // = grid_step(maxabs, L, j)
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
  double Dtab[kGrid + 1];  // grid_step(maxabs, L, j), the divisions done 4 or 8 at a time
  for (int j = 0; j <= kGrid; ++j) Dtab[j] = D_hi * j / kGrid;
  double best = INFINITY;
  grid_sweep_dir<true>(s, Dtab, L, j0, half, best, E, M1, M2);
  if (j0 > 1) grid_sweep_dir<false>(s, Dtab, L, j0 - 1, half, best, E, M1, M2);
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

#ifdef __AVX2__
inline __m256d load4d(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline __m256d load4d(const double* p) { return _mm256_loadu_pd(p); }
#endif

// Histogram bins for L levels a side: the certification gap shrinks like (L / bins)^2.
constexpr int64_t kBinsPerLevel = 1024;
int64_t bins_for(int L) { return std::min<int64_t>(32768, std::max<int64_t>(4096, kBinsPerLevel * L)); }

struct Histogram {
  double h = 0;                    // bin width
  std::vector<double> val;         // bin means (0 if empty)
  std::vector<double> C, S1;       // prefix sums of count and sum |w|, size units + 1
  double sumsq = 0;                // sum w^2 over the group
  int64_t n = 0;
  std::vector<uint64_t> packed;    // scratch: per-thread count << 44 | sum of offsets
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

  // Upper bound on the exact error, in the quantizer's arithmetic with machine epsilon
  // eps, of step D. error() is at least the error of the nearest levels on exact sums
  // (whole bins are assigned to one level; sum k|w| is rounded low), up to the rounding
  // of its own sums (1e-6 covers it). The quantizer's arithmetic adds, per value a, at
  // most (3/2) eps D (a + D) below the top level (k D rounds, a / D may round across a
  // half-integer) and eps L D |a - L D| above it; by Cauchy-Schwarz the sum of the
  // latter is at most eps L D sqrt(n E).
  // Subnormal values (tiny: the smallest positive one) round absolutely, by tiny per step.
  double upper(double D, int L, double eps, double tiny) const {
    const double H = std::max(0.0, error(D, L)) * (1 + 1e-6);
    return H + 2 * eps * D * (S1[units()] + double(n) * D) + eps * L * D * std::sqrt(double(n) * H) +
           double(n) * (eps * L * D) * (eps * L * D) + 1e-12 * (sumsq + D * S1[units()]) +
           4 * double(n) * tiny * (L + 1) * (D + tiny) + 1e-300;
  }

  // Counts and sums per bin. A value's offset in its bin is summed in fixed point (units
  // of h / 2^24, rounded down), so that the per-thread histograms add up to the same
  // integers however many threads share the group; sum w^2 is summed per block of 1024
  // values (4 lanes), the blocks in order. The rounded offsets make S1 low by at most
  // n h / 2^24 and the means low by at most h / 2^24, which gap() allows for.
  // One scatter per value: count and offset share a 64-bit word (count << 44 | offset),
  // folded into the thread's totals before a word can hold 2^19 values.
  template <class T> void build(const T* w, int64_t n_, double maxabs, int L, int nt) {
    n = n_;
    const int64_t B = std::min(bins_for(L), std::max<int64_t>(512, n / 2));
    h = maxabs / double(B);
    const double inv = double(B) / maxabs;
    // interleaved copies per thread, so that neighbouring values falling in the same bin
    // do not wait on each other's store (pays on long runs only)
    const int kWays = n / nt >= (int64_t(1) << 16) && B <= 8192 ? 4 : 1;  // and fit in L2
    constexpr int64_t kBlock = 1024;
    constexpr int kShift = 44;
    constexpr uint64_t kOffMask = (uint64_t(1) << kShift) - 1;
    const int64_t fold_every = (int64_t(1) << 19) / kBlock * kWays;  // blocks per fold
    packed.assign(size_t(nt) * kWays * B, 0);
    cnt.assign(size_t(nt) * B, 0);  // a thread sees < 2^32 values: groups are split
    off.assign(size_t(nt) * B, 0);
    const int64_t nblocks = (n + kBlock - 1) / kBlock;
    block_sq.assign(nblocks, 0);
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
      const int me = omp_get_thread_num();
#else
      const int me = 0;
#endif
      uint64_t* pk = packed.data() + size_t(me) * kWays * B;
      uint32_t* tc = cnt.data() + size_t(me) * B;
      uint64_t* to = off.data() + size_t(me) * B;
      int32_t bins[kBlock];
      uint64_t words[kBlock];
      int64_t since_fold = 0;
      auto fold = [&] {
        for (int way = 0; way < kWays; ++way) {
          uint64_t* q = pk + size_t(way) * B;
          for (int64_t b = 0; b < B; ++b) {
            tc[b] += uint32_t(q[b] >> kShift);
            to[b] += q[b] & kOffMask;
            q[b] = 0;
          }
        }
        since_fold = 0;
      };
      const double top = double(B) - 0x1p-20;
      const int32_t wayB = int32_t(B);
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < nblocks; ++blk) {
        const int64_t s0 = blk * kBlock, len = std::min(kBlock, n - s0);
        const T* x = w + s0;
        double sq[4] = {0, 0, 0, 0};
        int64_t i = 0;
#ifdef __AVX2__
        {  // the scalar loop below, 4 lanes at a time (the same arithmetic)
          const __m256d vinv = _mm256_set1_pd(inv), vtop = _mm256_set1_pd(top),
                        sign = _mm256_set1_pd(-0.0), scale = _mm256_set1_pd(0x1p24);
          const __m128i ways = kWays == 4 ? _mm_setr_epi32(0, wayB, 2 * wayB, 3 * wayB) : _mm_setzero_si128();
          const __m256i one = _mm256_set1_epi64x(int64_t(uint64_t(1) << kShift));
          __m256d vsq = _mm256_setzero_pd();
          for (; i + 4 <= len; i += 4) {
            const __m256d a = _mm256_andnot_pd(sign, load4d(x + i));
            const __m256d t = _mm256_min_pd(_mm256_mul_pd(a, vinv), vtop);
            const __m128i bin = _mm256_cvttpd_epi32(t);
            const __m128i o = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_sub_pd(t, _mm256_cvtepi32_pd(bin)), scale));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(bins + i), _mm_add_epi32(bin, ways));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + i), _mm256_or_si256(one, _mm256_cvtepu32_epi64(o)));
            vsq = _mm256_add_pd(vsq, _mm256_mul_pd(a, a));
          }
          _mm256_storeu_pd(sq, vsq);
        }
#endif
        for (; i + 4 <= len; i += 4)
          for (int l = 0; l < 4; ++l) {
            const double a = std::abs(double(x[i + l]));
            const double t = std::min(a * inv, top);
            const int32_t bin = int32_t(t);
            bins[i + l] = bin + (kWays == 4 ? l : 0) * wayB;
            words[i + l] = (uint64_t(1) << kShift) | uint64_t(uint32_t((t - bin) * 0x1p24));
            sq[l] += a * a;
          }
        for (; i < len; ++i) {
          const double a = std::abs(double(x[i]));
          const double t = std::min(a * inv, top);
          const int32_t bin = int32_t(t);
          bins[i] = bin + (kWays == 4 ? int32_t(i & 3) : 0) * wayB;
          words[i] = (uint64_t(1) << kShift) | uint64_t(uint32_t((t - bin) * 0x1p24));
          sq[i & 3] += a * a;
        }
        block_sq[blk] = (sq[0] + sq[1]) + (sq[2] + sq[3]);
        for (int64_t j = 0; j < len; ++j) pk[bins[j]] += words[j];
        if (++since_fold == fold_every) fold();
      }
      if (since_fold > 0) fold();
    }
    sumsq = 0;
    for (int64_t blk = 0; blk < nblocks; ++blk) sumsq += block_sq[blk];
    val.assign(B, 0);
    C.assign(B + 1, 0);
    S1.assign(B + 1, 0);
    for (int64_t bin = 0; bin < B; ++bin) {
      uint64_t cb = 0, ob = 0;
      for (int p = 0; p < nt; ++p) {
        cb += cnt[size_t(p) * B + bin];
        ob += off[size_t(p) * B + bin];
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
#if defined(__AVX512F__) && defined(__AVX512DQ__)
// The same sums for float, 16 values a step (values i and i + 8 go to lane i mod 8, in
// that order), with a / D taken as a * (1 / D) wherever that cannot change the code: the
// two differ by less than 3 * 2^-24 t (t = a / D, D and 1 / D normal), so the code is the
// same unless t lies within 2^-21 t of a half-integer; then the 16 values are divided.
// Codes, values and sums are those of error_one.
inline void error_lanes(const float* x, int64_t len, float D, float Lt, double* acc) {
  const bool fast = D >= 0x1p-100f && D <= 0x1p100f;
  const __m512 vD = _mm512_set1_ps(D), vL = _mm512_set1_ps(Lt), vr = _mm512_set1_ps(1.0f / D),
               half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), tol = _mm512_set1_ps(0x1p-21f);
  __m512d s = _mm512_loadu_pd(acc);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i));
    __m512 t = _mm512_min_ps(_mm512_mul_ps(a, vr), vL);  // t < L ? t : L
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, r);
    const __mmask16 near = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(f, half)), _mm512_mul_ps(t, tol), _CMP_LE_OQ);
    if (!fast || near) {
      t = _mm512_min_ps(_mm512_div_ps(a, vD), vL);
      r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      f = _mm512_sub_ps(t, r);
    }
    const __m512 k = _mm512_mask_add_ps(r, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), r, one);
    const __m512 v = _mm512_mul_ps(k, vD);
    const __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    const __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
    s = _mm512_add_pd(s, _mm512_mul_pd(d0, d0));
    s = _mm512_add_pd(s, _mm512_mul_pd(d1, d1));
  }
  _mm512_storeu_pd(acc, s);
  for (; i < len; ++i) acc[i & 7] += error_one(x[i], D, Lt);
}
#elif defined(__AVX2__)
// The same sums for float, 8 lanes, with a / D taken as a * (1 / D) wherever that cannot
// change the code: the two differ by less than 3 * 2^-24 t (t = a / D, D and 1 / D
// normal), so the code is the same unless t lies within 2^-21 t of a half-integer; then
// the 8 values are divided. Codes, values and sums are those of error_one.
inline void error_lanes(const float* x, int64_t len, float D, float Lt, double* acc) {
  const bool fast = D >= 0x1p-100f && D <= 0x1p100f;
  const __m256 vD = _mm256_set1_ps(D), vL = _mm256_set1_ps(Lt), vr = _mm256_set1_ps(1.0f / D),
               half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), tol = _mm256_set1_ps(0x1p-21f),
               sign = _mm256_set1_ps(-0.0f);
  __m256d lo = _mm256_loadu_pd(acc), hi = _mm256_loadu_pd(acc + 4);
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
    __m256 t = _mm256_min_ps(_mm256_mul_ps(a, vr), vL);  // t < L ? t : L
    __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(t, r);
    const __m256 near = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(f, half)), _mm256_mul_ps(t, tol), _CMP_LE_OQ);
    if (!fast || _mm256_movemask_ps(near)) {
      t = _mm256_min_ps(_mm256_div_ps(a, vD), vL);
      r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      f = _mm256_sub_ps(t, r);
    }
    const __m256 k = _mm256_add_ps(r, _mm256_and_ps(_mm256_cmp_ps(f, half, _CMP_GE_OQ), one));
    const __m256 v = _mm256_mul_ps(k, vD);
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    lo = _mm256_add_pd(lo, _mm256_mul_pd(d0, d0));
    hi = _mm256_add_pd(hi, _mm256_mul_pd(d1, d1));
  }
  _mm256_storeu_pd(acc, lo);
  _mm256_storeu_pd(acc + 4, hi);
  for (; i < len; ++i) acc[i & 7] += error_one(x[i], D, Lt);
}
#endif

// Exact errors of candidate steps on the data: per block of 2048 values (one pass serves
// every candidate: the block stays in L1), the blocks' sums then added in order.
#if defined(__AVX512F__) && defined(__AVX512DQ__)
// error_lanes for every candidate at once, each 16 values loaded and widened once: the
// same codes, values and per-candidate lane sums, in the same order.
inline void error_lanes_multi(const float* x, int64_t len, const float* D, size_t m, float Lt, double* accs) {
  constexpr size_t kMax = 16;
  if (m > kMax) {
    for (size_t c = 0; c < m; ++c) error_lanes(x, len, D[c], Lt, accs + 8 * c);
    return;
  }
  __m512d s[kMax];
  __m512 vD[kMax], vr[kMax];
  bool fast = true;
  for (size_t c = 0; c < m; ++c) {
    s[c] = _mm512_loadu_pd(accs + 8 * c);
    vD[c] = _mm512_set1_ps(D[c]);
    vr[c] = _mm512_set1_ps(1.0f / D[c]);
    fast = fast && D[c] >= 0x1p-100f && D[c] <= 0x1p100f;
  }
  const __m512 vL = _mm512_set1_ps(Lt), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
               tol = _mm512_set1_ps(0x1p-21f);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i));
    const __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(a)), a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
    for (size_t c = 0; c < m; ++c) {
      __m512 t = _mm512_min_ps(_mm512_mul_ps(a, vr[c]), vL);
      __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      __m512 f = _mm512_sub_ps(t, r);
      const __mmask16 near = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(f, half)), _mm512_mul_ps(t, tol), _CMP_LE_OQ);
      if (!fast || near) {
        t = _mm512_min_ps(_mm512_div_ps(a, vD[c]), vL);
        r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        f = _mm512_sub_ps(t, r);
      }
      const __m512 k = _mm512_mask_add_ps(r, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), r, one);
      const __m512 v = _mm512_mul_ps(k, vD[c]);
      const __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), a0);
      const __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), a1);
      s[c] = _mm512_add_pd(s[c], _mm512_mul_pd(d0, d0));
      s[c] = _mm512_add_pd(s[c], _mm512_mul_pd(d1, d1));
    }
  }
  for (size_t c = 0; c < m; ++c) {
    _mm512_storeu_pd(accs + 8 * c, s[c]);
    for (int64_t j = i; j < len; ++j) accs[8 * c + (j & 7)] += error_one(x[j], D[c], Lt);
  }
}
#endif
template <class T> inline void error_lanes_multi(const T* x, int64_t len, const T* D, size_t m, T Lt, double* accs) {
  for (size_t c = 0; c < m; ++c) error_lanes(x, len, D[c], Lt, accs + 8 * c);
}

template <class T>
std::vector<double> exact_errors(const T* w, int64_t n, const std::vector<T>& D, int L, int nt) {
  const size_t m = D.size();
  constexpr int64_t kBlock = 2048;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(nblocks) * m, 0);
  const T Lt = T(L);
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> accs(8 * m);  // 8 lane sums per candidate
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const T* x = w + blk * kBlock;
      const int64_t len = std::min(kBlock, n - blk * kBlock);
      std::fill(accs.begin(), accs.end(), 0.0);
      error_lanes_multi(x, len, D.data(), m, Lt, accs.data());
      for (size_t c = 0; c < m; ++c) {
        const double* acc = accs.data() + 8 * c;
        part[size_t(blk) * m + c] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                                    ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      }
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
  // One pass over the data for the finalists and every grid step that might beat them:
  // the grid steps whose lower bound is under U, an upper bound on the finalists' exact
  // errors. Which of them count is then decided exactly as if the finalists' exact errors
  // had been known first (a grid step counts when its lower bound beats the best of them).
  double U = INFINITY;
  for (T D : finalists) U = std::min(U, s.upper(double(D), L, std::numeric_limits<T>::epsilon(),
                                                    std::numeric_limits<T>::denorm_min()));
  std::vector<int> maybe;
  std::vector<double> lower;
  for (int j = 1; j <= kGrid; ++j) {
    const double D = grid_step(st.maxabs, L, j);
    const double lb = gridE[j] - s.gap(D, L);
    if (lb < U && T(D) > T(0)) {
      maybe.push_back(j);
      lower.push_back(lb);
    }
  }
  std::vector<T> all = finalists;
  std::vector<size_t> at;  // where each maybe step's error is (a step equal to a finalist is not redone)
  for (int j : maybe) {
    const T D = T(grid_step(st.maxabs, L, j));
    const size_t f = size_t(std::find(finalists.begin(), finalists.end(), D) - finalists.begin());
    at.push_back(f < finalists.size() ? f : all.size());
    if (f == finalists.size()) all.push_back(D);
  }
  const double t_lloyd = debug ? ms() : 0;
  const std::vector<double> E = exact_errors(w, n, all, L, nt);
  double best_E = INFINITY;
  for (size_t c = 0; c < finalists.size(); ++c)
    if (E[c] < best_E) {
      best_E = E[c];
      best_D = all[c];
    }
  const double after_finalists = best_E;
  size_t contenders = 0;
  for (size_t i = 0; i < maybe.size(); ++i) {
    if (!(lower[i] < after_finalists)) continue;  // ruled out by the finalists
    ++contenders;
    const size_t c = at[i];
    if (E[c] < best_E) {
      best_E = E[c];
      best_D = all[c];
    }
  }
  if (debug)
    std::fprintf(stderr, "qstep histogram n=%lld L=%d: build %.2f, grid %.2f, lloyd %.2f, %zu finalists + "
                 "%zu maybe (%zu contenders), %zu evaluated %.2f ms\n", (long long)n, L, t_build, t_grid - t_build,
                 t_lloyd - t_grid, finalists.size(), maybe.size(), contenders, all.size(), ms() - t_lloyd);
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
  // max |w| and the non-finite flag of each group, chunks of it spread over the threads
  // (the group's other statistics are not needed: the histogram sums w^2 itself)
  std::vector<Stats> st(groups);
  const int64_t nchunks = std::max<int64_t>(nt, gsize >> 16);
  const int64_t step_len = (gsize + nchunks - 1) / nchunks;
  std::vector<Stats> part(size_t(groups * nchunks));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < groups * nchunks; ++c) {
    const int64_t g = c / nchunks, b = std::min(gsize, (c % nchunks) * step_len);
    part[c] = local_stats(w + g * gsize + b, std::min(gsize, b + step_len) - b);
  }
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < nchunks; ++c) {
      const Stats& p = part[g * nchunks + c];
      st[g].maxabs = std::max(st[g].maxabs, p.maxabs);
      st[g].bad = st[g].bad || p.bad;
    }
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
