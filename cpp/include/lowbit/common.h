// Torch-free helpers shared by every kernel: rounding, bit tricks, the group loop.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// Templates here are compiled into both the portable and the AVX2 kernel objects; an
// inline namespace per build keeps the two copies apart (one definition rule).
#define LOWBIT_CAT2(a, b) a##b
#define LOWBIT_CAT(a, b) LOWBIT_CAT2(a, b)
#ifdef LOWBIT_ISA
#define LOWBIT_HELPERS LOWBIT_CAT(helpers_, LOWBIT_ISA)
#else
#define LOWBIT_HELPERS helpers_host
#endif

namespace lowbit {

// Thread count for native work (threads.cpp): the CPUs this process may use, unless
// the user set OMP_NUM_THREADS or called lowbit.set_num_threads().
int num_threads();
void set_num_threads(int n);
// The CPU the calling thread runs on (-1 if unknown).
int current_cpu();
// Called by each thread of a parallel region with the CPU its master thread ran on when
// the region began: a worker that finds itself on that CPU moves to another one the
// process may use. Linux can leave an OpenMP worker stacked on the master's CPU for
// seconds (seen after torch's qnnpack threads spin on the other core), which halves
// a memory-bound kernel's speed.
void leave_cpu(int cpu);
inline namespace LOWBIT_HELPERS {

// Threads worth using for `work` elements: one below ~32K, where OpenMP costs more than it saves.
inline int threads_for(int64_t work) { return work < (1 << 15) ? 1 : num_threads(); }

// The lowest power-of-two code magnitude a `bits`-bit layer stores, k_lo = max(1, L - 30)
// with L = 2^(bits-1) - 1: weight sign(c) 2^(|c| - k_lo) (kernels.inc, shift_gemm).
inline int pow2_lowest_code(int bits) { return std::max(1, ((1 << (bits - 1)) - 1) - 30); }

// The integer weight of power-of-two field u, c = u - 2^(bits-1): sign(c) 2^(|c| - k_lo), and
// 0 for u = 0 and for exponents below the window.
inline int64_t pow2_weight(int u, int bits) {
  const int c = u == 0 ? 0 : u - (1 << (bits - 1)), mag = c < 0 ? -c : c, k_lo = pow2_lowest_code(bits);
  if (c == 0 || mag < k_lo) return 0;
  const int64_t p = int64_t(1) << (mag - k_lo);
  return c < 0 ? -p : p;
}

// The papers' rounding, floor(|x| + 0.5) with the sign put back (half away from zero),
// computed exactly: r = floor(|x|), one more when |x| - r >= 1/2. That subtraction is
// exact (|x| < 1: r = 0; else r <= |x| < 2r, Sterbenz; |x| >= 2^p: r = |x|), while
// |x| + 0.5 itself rounds: 0.49999997f + 0.5f is 1.0f. Inf stays Inf, NaN stays NaN.
template <class T> inline T round_half_away(T x) {
  const T a = std::abs(x), r = std::floor(a);
  return std::copysign(r + T(a - r >= T(0.5)), x);
}

// The same for 0 <= t < 2^31 (callers clamp first), as an int: truncation is floor there.
template <class T> inline int32_t round_half_up_int(T t) {
  const int32_t r = int32_t(t);
  return r + int32_t(t - T(r) >= T(0.5));
}

// Smallest value of T that is >= sqrt(1/2): log2(m) >= -1/2 <=> m >= this, for m in [0.5, 1).
template <class T> struct Pow2Consts;
template <> struct Pow2Consts<float> {
  using Bits = uint32_t;
  static constexpr int mant_bits = 23, exp_bias = 126, max_exp = 127;
  static constexpr Bits sqrt_half_up_mant = 0x3504F4u;  // 0x3F3504F4 = 0.70710683f
};
template <> struct Pow2Consts<double> {
  using Bits = uint64_t;
  static constexpr int mant_bits = 52, exp_bias = 1022, max_exp = 1023;
  static constexpr Bits sqrt_half_up_mant = 0x6A09E667F3BCDull;  // 0x3FE6A09E667F3BCD
};

// round(log2(a)) for finite a > 0, half away from zero, computed from the bits:
// a = m * 2^E with m in [0.5, 1) rounds to E when m >= sqrt(1/2), else to E - 1.
template <class T> inline int round_log2(T a) {
  using C = Pow2Consts<T>;
  using B = typename C::Bits;
  int shift = 0;
  if (a < std::numeric_limits<T>::min()) {  // subnormal: scale into the normal range exactly
    a *= T(18446744073709551616.0);         // 2^64
    shift = 64;
  }
  B bits;
  std::memcpy(&bits, &a, sizeof(T));
  const int biased = int(bits >> C::mant_bits);  // sign bit is 0 for a > 0
  const B mant = bits & ((B(1) << C::mant_bits) - 1);
  const int E = biased - C::exp_bias;  // a = m * 2^E, m in [0.5, 1)
  return (mant >= C::sqrt_half_up_mant ? E : E - 1) - shift;
}

// Runs fn(g, begin, end) over element ranges of a [groups x gsize] row-major block,
// each range inside one group, split into chunks that OpenMP spreads over threads.
// fn must be safe to call concurrently for different ranges.
template <class F> void for_each_group_range(int64_t groups, int64_t gsize, F&& fn) {
  const int64_t total = groups * gsize;
  if (total == 0) return;
  const int nt = threads_for(total);
  const int64_t grain = int64_t(1) << 15;
  const int64_t nchunks = nt == 1 ? 1 : std::max<int64_t>(nt, (total + grain - 1) / grain);
  const int64_t step = (total + nchunks - 1) / nchunks;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    int64_t b = c * step;
    const int64_t e = std::min(total, b + step);
    while (b < e) {
      const int64_t g = b / gsize;
      const int64_t ge = std::min(e, (g + 1) * gsize);
      fn(g, b, ge);
      b = ge;
    }
  }
}

}  // namespace LOWBIT_HELPERS
}  // namespace lowbit
