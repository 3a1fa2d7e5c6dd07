// QStep (paper 002): the step D minimizing sum_i (Q(w_i, D) - w_i)^2 for the symmetric
// quantizer. Per group:
//   1. summarize |w| as ordered units with prefix counts and sums: the sorted values when
//      the group has no more values than histogram bins (the summary is then exact), else
//      a histogram over [0, max|w|] with 256 L bins (4096..65536);
//   2. evaluate E(D) on the summary (one index look-up per level) on the grid
//      D_j = j/1000 * max|w| / (L - 1/2), j = 1..1000, the dense grid the result must
//      never lose to;
//   3. from the best three local minima of that grid, run Lloyd iterations
//      D <- sum k_i |w_i| / sum k_i^2 (each never increases E);
//   4. evaluate the finalists' error exactly on the data (sums in double, or in float
//      over runs of 64 values on the AVX2 path: about 1e-7 relative);
//   5. certify against the grid: the summary's E is an upper bound (a histogram bin that
//      straddles a level boundary goes wholly to one level), and moving one value across
//      a boundary m changes its error by 2 D |a - m| <= 2 D h, so E - gap is a lower
//      bound. Every grid step whose lower bound beats the best exact error found is
//      evaluated exactly too. The result is never worse than the grid, by construction
//      (up to the rounding of those error sums).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
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
constexpr int64_t kExactMax = 1024;  // groups up to this size are sorted, not binned
constexpr int kStarts = 3;
constexpr int kLloydIters = 30;  // refinement only: the guarantee comes from the grid

// Histogram bins for L levels a side: the certification gap shrinks like (L / bins)^2.
int64_t bins_for(int L) { return std::min<int64_t>(65536, std::max<int64_t>(4096, 128 * L)); }

// |w| of one group as ordered "units" (sorted values, or histogram bins) with prefix
// sums, so that the error of any step follows from L + 1 index look-ups.
struct Summary {
  bool hist = false;
  double h = 0;                    // histogram bin width
  std::vector<double> val;         // exact: sorted |w|; histogram: bin means (0 if empty)
  std::vector<double> C, S1;       // prefix sums of count and sum |w|, size units + 1
  double S2 = 0;                   // sum w^2 over the group

  size_t units() const { return val.size(); }
  double count(size_t i) const { return C[i + 1] - C[i]; }

  // Units that go below the level boundary m (a bin goes wholly to the side of its mean).
  size_t below(double m) const {
    if (!hist) return std::lower_bound(val.begin(), val.end(), m) - val.begin();
    const double b = m / h;
    if (!(b < double(units()))) return units();
    const size_t i = size_t(b);
    return i + (count(i) > 0 && val[i] < m ? 1 : 0);
  }

  // Sum k|w| and sum k^2 given below_k = below((k - 1/2) D) for k = 1..L (index 0 unused).
  void moments(const std::vector<size_t>& below_k, int L, double& Sk1, double& Sk2) const {
    Sk1 = Sk2 = 0;
    for (int k = 1; k <= L && below_k[k] < units(); ++k) {
      const size_t lo = below_k[k], hi = k == L ? units() : below_k[k + 1];
      Sk1 += k * (S1[hi] - S1[lo]);
      Sk2 += double(k) * k * (C[hi] - C[lo]);
    }
  }
  void moments(double D, int L, double& Sk1, double& Sk2) const {
    std::vector<size_t> b(L + 1, 0);
    for (int k = 1; k <= L; ++k) b[k] = below((k - 0.5) * D);
    moments(b, L, Sk1, Sk2);
  }
  double error(double D, int L) const {
    double a, b;
    moments(D, L, a, b);
    return S2 - 2 * D * a + D * D * b;
  }
  // Upper bound on how much error() can exceed the exact error at step D. Only the bin
  // [lo, hi) holding a boundary m is split wrongly: it goes wholly up when its mean mu
  // >= m, and each value a < m left behind costs 2 D (m - a). That sum is convex in
  // every value, so with c values of mean mu it peaks with the values at lo and hi:
  // 2 D c (hi - mu)(m - lo) / (hi - lo), and symmetrically when the bin goes down.
  double gap(double D, int L) const {
    if (!hist) return 0;
    double g = 0;
    for (int k = 1; k <= L; ++k) {
      const double m = (k - 0.5) * D, b = m / h;
      if (!(b < double(units()))) break;
      const size_t i = size_t(b);
      const double c = count(i);
      if (c == 0) continue;
      // bin edges widened for the rounding of the bin index
      const double lo = i * h * (1 - 1e-12), hi = (i + 1) * h * (1 + 1e-12), mu = val[i];
      g += val[i] >= m ? c * (hi - mu) * std::max(0.0, m - lo) / (hi - lo)
                       : c * (mu - lo) * std::max(0.0, hi - m) / (hi - lo);
    }
    return 2 * D * g * (1 + 1e-9);
  }
};

// |w| sorted ascending, as doubles. Non-negative floats order like their bit patterns,
// so float groups take a three-pass LSD radix sort on 11-bit digits.
inline void sorted_abs(const double* w, int64_t n, std::vector<double>& out) {
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) out[i] = std::abs(w[i]);
  std::sort(out.begin(), out.end());
}

inline void sorted_abs(const float* w, int64_t n, std::vector<double>& out) {
  std::vector<uint32_t> a(n), b(n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, w + i, 4);
    a[i] = bits & 0x7fffffffu;
  }
  for (int shift = 0; shift < 32; shift += 11) {
    uint32_t count[2049] = {0};
    for (int64_t i = 0; i < n; ++i) ++count[((a[i] >> shift) & 2047) + 1];
    for (int d = 0; d < 2048; ++d) count[d + 1] += count[d];
    for (int64_t i = 0; i < n; ++i) b[count[(a[i] >> shift) & 2047]++] = a[i];
    a.swap(b);
  }
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, &a[i], 4);
    out[i] = f;
  }
}

template <class T>
void build_summary(const T* w, int64_t n, double maxabs, double sumsq, int L, int nt,
                   Summary& s) {
  s.S2 = sumsq;
  // Up to kExactMax values: sort (exact summary). Above: a histogram of at most n / 2
  // bins, so that filling it costs less than sorting; the certification keeps the
  // answer exact either way.
  const int64_t B = std::min(bins_for(L), std::max(kExactMax / 2, n / 2));
  s.hist = n > kExactMax;
  if (!s.hist) {  // exact: every value its own unit
    sorted_abs(w, n, s.val);
    s.C.resize(n + 1);
    s.S1.resize(n + 1);
    s.C[0] = s.S1[0] = 0;
    for (int64_t i = 0; i < n; ++i) {
      s.C[i + 1] = double(i + 1);
      s.S1[i + 1] = s.S1[i] + s.val[i];
    }
    return;
  }
  s.h = maxabs / double(B);
  const double inv = double(B) / maxabs;
  // Per-thread histograms, each split in kWays interleaved copies so that neighbouring
  // values falling in the same bin do not wait on each other's store; merged below.
  const int kWays = n >= (int64_t(1) << 16) ? 4 : 1;  // interleaving pays on long runs only
  constexpr int64_t kBlock = 1024;
  const size_t parts = size_t(nt) * kWays;
  std::vector<uint32_t> cnt(parts * B, 0);  // a part sees < 2^32 values: groups are split
  std::vector<double> sum(parts * B, 0);
  const int64_t step = (n + nt - 1) / nt;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) {
    uint32_t* c = cnt.data() + size_t(t) * kWays * B;
    double* s1 = sum.data() + size_t(t) * kWays * B;
    const int64_t b = std::min(n, t * step), e = std::min(n, b + step);
    int32_t bins[kBlock];
    double vals[kBlock];
    for (int64_t s0 = b; s0 < e; s0 += kBlock) {
      const int64_t len = std::min(kBlock, e - s0);
      for (int64_t i = 0; i < len; ++i) {  // vectorizes: bin of every value in the block
        const double a = std::abs(double(w[s0 + i]));
        vals[i] = a;
        bins[i] = int32_t(std::min(a * inv, double(B - 1))) + int32_t(i % kWays) * int32_t(B);
      }
      for (int64_t i = 0; i < len; ++i) {
        c[bins[i]] += 1;
        s1[bins[i]] += vals[i];
      }
    }
  }
  s.val.assign(B, 0);
  s.C.assign(B + 1, 0);
  s.S1.assign(B + 1, 0);
  for (int64_t bin = 0; bin < B; ++bin) {
    double c = 0, s1 = 0;
    for (size_t p = 0; p < parts; ++p) {
      c += double(cnt[p * B + bin]);
      s1 += sum[p * B + bin];
    }
    s.val[bin] = c > 0 ? s1 / c : 0;
    s.C[bin + 1] = s.C[bin] + c;
    s.S1[bin + 1] = s.S1[bin] + s1;
  }
}

double grid_step(double maxabs, int L, int j) { return maxabs / (L - 0.5) * j / kGrid; }

// E[j] on the grid (j = 1..kGrid), with b_k = below((k - 1/2) D) and N units:
//   sum k|w| = L S1[N] - sum_k S1[b_k],   sum k^2 = L^2 C[N] - sum_k (2k - 1) C[b_k].
// Boundaries only move up as D grows, so exact summaries advance one pointer per level.
void grid_errors(const Summary& s, double maxabs, int L, std::vector<double>& E) {
  E.assign(kGrid + 2, INFINITY);
  const size_t N = s.units();
  const double S1N = s.S1[N], CN = s.C[N];
  std::vector<size_t> b(L + 1, 0);
  for (int j = 1; j <= kGrid; ++j) {
    const double D = grid_step(maxabs, L, j);
    double sum_s1 = 0, sum_c = 0;
    size_t prev = 0;
    int k = 1;
    for (; k <= L; ++k) {
      const double m = (k - 0.5) * D;
      size_t p;
      if (s.hist) {
        p = s.below(m);
      } else {
        p = std::max(b[k], prev);
        while (p < N && s.val[p] < m) ++p;
      }
      b[k] = prev = p;
      if (p == N) break;  // this level and every one above hold nothing
      sum_s1 += s.S1[p];
      sum_c += (2.0 * k - 1) * s.C[p];
    }
    if (k <= L) {  // levels k..L: b = N
      sum_s1 += (L - k + 1) * S1N;
      sum_c += (double(L) * L - double(k - 1) * (k - 1)) * CN;
      for (int r = k + 1; r <= L; ++r) b[r] = N;
    }
    const double Sk1 = L * S1N - sum_s1, Sk2 = double(L) * L * CN - sum_c;
    E[j] = s.S2 - 2 * D * Sk1 + D * D * Sk2;
  }
}

// Lloyd from the best local minima of the grid.
std::vector<double> finalists(const Summary& s, double maxabs, int L,
                              const std::vector<double>& E) {
  std::vector<int> minima;
  for (int j = 1; j <= kGrid; ++j)
    if (E[j] <= E[j - 1] && E[j] <= E[j + 1]) minima.push_back(j);
  std::sort(minima.begin(), minima.end(), [&](int a, int b) { return E[a] < E[b]; });
  if (minima.size() > size_t(kStarts)) minima.resize(kStarts);
  std::vector<double> out;
  for (int j : minima) {
    double D = grid_step(maxabs, L, j), best = E[j], a, b;
    s.moments(D, L, a, b);
    for (int it = 0; it < kLloydIters && b > 0; ++it) {
      const double Dn = a / b;
      double an, bn;
      s.moments(Dn, L, an, bn);
      const double En = s.S2 - 2 * Dn * an + Dn * Dn * bn;
      if (!(En < best) || Dn == D) break;
      D = Dn;
      best = En;
      a = an;
      b = bn;
    }
    out.push_back(D);
  }
  return out;
}

// Exact L2 error of candidate steps on the data: k from a * (1/D) in the weight dtype
// (the quantizer divides; the two differ only for values within an ulp of a level
// boundary, where both levels give the same error). One pass serves every candidate:
// blocks small enough for L1 are re-read per candidate.
template <class T> inline double error_block(const T* x, int64_t len, T ic, T D, T Lt) {
  double e = 0;
  for (int64_t i = 0; i < len; ++i) {
    const T a = std::abs(x[i]);
    const T k = T(int32_t(std::min(a * ic + T(0.5), Lt)));
    const double d = double(k) * double(D) - double(a);
    e += d * d;
  }
  return e;
}

#ifdef __AVX2__
// The float case by hand: GCC vectorizes the loop above but runs its scalar fallback.
// Squares are summed in float over runs of 64 values (8 per lane), then in double: the
// error keeps about 1e-7 relative accuracy.
inline double error_block(const float* x, int64_t len, float ic, float D, float Lt) {
  const __m256 vic = _mm256_set1_ps(ic), half = _mm256_set1_ps(0.5f), vL = _mm256_set1_ps(Lt);
  const __m256 vD = _mm256_set1_ps(D);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256d acc_lo = _mm256_setzero_pd(), acc_hi = acc_lo;
  int64_t i = 0;
  for (; i + 64 <= len; i += 64) {
    __m256 e = _mm256_setzero_ps();
    for (int j = 0; j < 64; j += 8) {
      const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i + j), absmask);
      const __m256 t = _mm256_min_ps(_mm256_add_ps(_mm256_mul_ps(a, vic), half), vL);
      const __m256 k = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(t));
      const __m256 d = _mm256_sub_ps(_mm256_mul_ps(k, vD), a);
      e = _mm256_add_ps(e, _mm256_mul_ps(d, d));
    }
    acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double t[4];
  _mm256_store_pd(t, _mm256_add_pd(acc_lo, acc_hi));
  return (t[0] + t[1]) + (t[2] + t[3]) + error_block<float>(x + i, len - i, ic, D, Lt);
}
#endif

template <class T>
std::vector<double> exact_errors(const T* w, int64_t n, const std::vector<T>& D, int L,
                                 int nt) {
  const size_t m = D.size();
  constexpr int64_t kBlock = 2048;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::vector<double> acc(size_t(nt) * m, 0);
  std::vector<T> inv(m);
  for (size_t c = 0; c < m; ++c) inv[c] = T(1) / D[c];
  const T Lt = T(L);
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    double* mine = acc.data() + size_t(omp_get_thread_num()) * m;
#else
    double* mine = acc.data();
#endif
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const T* x = w + blk * kBlock;
      const int64_t len = std::min(kBlock, n - blk * kBlock);
      for (size_t c = 0; c < m; ++c) mine[c] += error_block(x, len, inv[c], D[c], Lt);
    }
  }
  std::vector<double> E(m, 0);
  for (int t = 0; t < nt; ++t)
    for (size_t c = 0; c < m; ++c) E[c] += acc[size_t(t) * m + c];
  return E;
}

template <class T>
T solve_group(const T* w, int64_t n, const Stats& st, int L, int nt, Summary& s) {
  if (!(st.maxabs > 0)) return T(1);
  // LOWBIT_DEBUG_QSTEP=1 prints each group's phase timings and contender count.
  static const bool debug = std::getenv("LOWBIT_DEBUG_QSTEP") != nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  build_summary(w, n, st.maxabs, st.sumsq, L, nt, s);
  const double t_summary = debug ? ms() : 0;
  std::vector<double> gridE;
  grid_errors(s, st.maxabs, L, gridE);
  const double t_grid = debug ? ms() : 0;
  // The no-clipping step is always a candidate; for subnormal groups it may underflow,
  // then max|w| itself (positive in T) stands in.
  T fallback = T(grid_step(st.maxabs, L, kGrid));
  if (!(fallback > T(0))) fallback = T(st.maxabs);
  std::vector<T> cand{fallback};
  for (double D : finalists(s, st.maxabs, L, gridE))
    if (T(D) > T(0)) cand.push_back(T(D));
  const double t_lloyd = debug ? ms() : 0;
  T best_D = fallback;
  double best_E = INFINITY;
  // Exact errors of the candidates; keeps the best.
  auto evaluate = [&](const std::vector<T>& cs) {
    const std::vector<double> E = exact_errors(w, n, cs, L, nt);
    for (size_t c = 0; c < cs.size(); ++c)
      if (E[c] < best_E) {
        best_E = E[c];
        best_D = cs[c];
      }
  };
  evaluate(cand);
  std::vector<T> contenders;  // grid steps the summary cannot rule out
  for (int j = 1; j <= kGrid; ++j) {
    const double D = grid_step(st.maxabs, L, j);
    if (gridE[j] - s.gap(D, L) < best_E && T(D) > T(0)) contenders.push_back(T(D));
  }
  if (!contenders.empty()) evaluate(contenders);
  if (debug)
    std::fprintf(stderr,
                 "qstep n=%lld L=%d hist=%d: summary %.2f, grid %.2f, lloyd %.2f, total %.2f ms, "
                 "%zu contenders\n",
                 (long long)n, L, int(s.hist), t_summary, t_grid, t_lloyd, ms(), contenders.size());
  return best_D;
}

}  // namespace

template <class T>
bool qstep_l2(const T* w, int64_t groups, int64_t gsize, int bits, T* step) {
  const auto st = group_stats(w, groups, gsize);
  for (const Stats& s : st)
    if (s.bad) return false;
  const int L = (1 << (bits - 1)) - 1;
  const int nt = threads_for(groups * gsize);
  if (groups >= 2 * nt || nt == 1) {
#pragma omp parallel num_threads(nt)
    {
      Summary scratch;  // buffers reused across this thread's groups
#pragma omp for schedule(dynamic, 4)
      for (int64_t g = 0; g < groups; ++g)
        step[g] = solve_group(w + g * gsize, gsize, st[g], L, 1, scratch);
    }
  } else {
    Summary scratch;
    for (int64_t g = 0; g < groups; ++g)
      step[g] = solve_group(w + g * gsize, gsize, st[g], L, nt, scratch);
  }
  return true;
}

template bool qstep_l2<float>(const float*, int64_t, int64_t, int, float*);
template bool qstep_l2<double>(const double*, int64_t, int64_t, int, double*);

LOWBIT_ISA_END
