// The float weights of a codebook convolution's taps for direct_conv2d: taps[k * O + o] is
// the table value of field (o, k) of O bit-plane rows of K fields, as vlut_gemm reads them
// (row o takes table o / (O / n_tables)). vlut_conv2d and the fused plan both build them
// here, so that the two run the same sums.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "lowbit/kernels.h"

namespace lowbit {
// The unsigned fields [O x K] of O bit-plane rows (int_rows.h): the inverse of
// pack_int_rows with offset 0 (int_pack.cpp). Returns false for bits outside 2..8.
LOWBIT_KERNEL(bool, unpack_int_rows, (const uint8_t* w, int64_t O, int64_t K, int bits, uint8_t* fields),
              (w, O, K, bits, fields))
}  // namespace lowbit

namespace lowbit::ops {

// Convolutions with at most this many taps per group run on direct_conv2d (fused, and
// vlut_conv2d): below it, im2col rows padded to 64 fields and per-row set-up cost more
// than the products (measured with benchmarks/bench_models.py, LeNet-5).
constexpr int64_t kDirectMaxTaps = 256;

inline std::vector<float> codebook_taps(const uint8_t* w, int64_t O, int64_t K, int bits, const float* tables,
                                        int64_t n_tables) {
  std::vector<uint8_t> fields(size_t(O * K));
  TORCH_CHECK(lowbit::kernels::unpack_int_rows(w, O, K, bits, fields.data()), "unpack_int_rows failed");
  const int64_t rows_per_table = O / n_tables, entries = int64_t(1) << bits;
  std::vector<float> taps(size_t(K * O));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < K; ++k)
      taps[size_t(k * O + o)] = tables[(o / rows_per_table) * entries + fields[size_t(o * K + k)]];
  return taps;
}

}  // namespace lowbit::ops
