// Weight layout of the integer kernels (int_gemm.cpp): "bit-plane rows". Each of the O
// rows holds K unsigned fields padded with zeros to a multiple of 64; each block of 64
// fields takes 8 * bits bytes, split into planes of 4, 2 and 1 bits (low bits first) so
// that SIMD code decodes a block with one load, a shift and a mask per plane:
//
//   bits   2    3      4    5      6      7         8
//   planes 2    2+1    4    4+1    4+2    4+2+1     8
//
// A plane of width p is 8 * p bytes; byte i holds the fields i + 8p * q (q < 8 / p) at
// bits [p q, p q + p) (p = 8: byte i is field i). A field's plane bits go to bit s of
// the field, s the sum of the widths of the planes before it. The Python reference
// (lowbit.reference.int_inference) reads and writes the same layout.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lowbit/common.h"

namespace lowbit {

constexpr int64_t kIntBlock = 64;  // fields per block

inline int64_t int_row_fields(int64_t K) { return (K + kIntBlock - 1) / kIntBlock * kIntBlock; }
inline int64_t int_row_bytes(int64_t K, int bits) { return int_row_fields(K) / 8 * bits; }

// The plane widths of a `bits`-bit field, low bits first; 0 ends the list.
struct IntPlanes {
  int width[3];
};
constexpr IntPlanes int_planes(int bits) {
  switch (bits) {
    case 2: return {{2, 0, 0}};
    case 3: return {{2, 1, 0}};
    case 4: return {{4, 0, 0}};
    case 5: return {{4, 1, 0}};
    case 6: return {{4, 2, 0}};
    case 7: return {{4, 2, 1}};
    default: return {{8, 0, 0}};
  }
}

inline namespace LOWBIT_HELPERS {

// One block of kIntBlock fields at p, decoded in plain code (the portable kernels, plan
// building, and a reference for the vector decoders).
inline void decode_fields(const uint8_t* p, int bits, uint8_t* f) {
  if (bits == 8) {
    std::memcpy(f, p, size_t(kIntBlock));
    return;
  }
  std::fill(f, f + kIntBlock, uint8_t(0));
  int shift = 0;
  for (int w : int_planes(bits).width) {
    if (w == 0) break;
    const int nbytes = 8 * w, per = 8 / w, mask = (1 << w) - 1;
    for (int q = 0; q < per; ++q)
      for (int i = 0; i < nbytes; ++i) f[i + nbytes * q] = uint8_t(f[i + nbytes * q] | (((p[i] >> (w * q)) & mask) << shift));
    p += nbytes;
    shift += w;
  }
}

}  // namespace LOWBIT_HELPERS

}  // namespace lowbit
