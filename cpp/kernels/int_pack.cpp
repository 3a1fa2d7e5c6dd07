// Codes -> the bit-plane rows of the integer kernels (layout in int_rows.h), and back. Plain
// loops: packing runs once per layer; unpacking once per fused plan, and once per call of
// vlut_conv2d, where a convolution's few taps (at most 256 per output row) cost less than
// one image's products.
#include <algorithm>
#include <cstring>

#include "lowbit/common.h"
#include "lowbit/int_rows.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

bool pack_int_rows(const uint8_t* codes, int64_t O, int64_t K, int bits, uint8_t offset, uint8_t* out) {
  if (bits < 2 || bits > 8) return false;
  const int64_t Kp = int_row_fields(K), rb = int_row_bytes(K, bits);
  const IntPlanes planes = int_planes(bits);
  int over = 0;
  uint8_t f[kIntBlock];
  for (int64_t o = 0; o < O; ++o) {
    const uint8_t* c = codes + o * K;
    uint8_t* row = out + o * rb;
    for (int64_t b = 0; b < Kp; b += kIntBlock) {
      for (int64_t i = 0; i < kIntBlock; ++i) {
        f[i] = b + i < K ? uint8_t(c[b + i] + offset) : uint8_t(0);  // padding fields are 0
        over |= bits < 8 ? f[i] >> bits : 0;
      }
      uint8_t* p = row + b / 8 * bits;
      int shift = 0;
      for (int w : planes.width) {
        if (w == 0) break;
        const int nbytes = 8 * w, per = 8 / w, mask = (1 << w) - 1;
        for (int i = 0; i < nbytes; ++i) {
          int v = 0;
          for (int q = 0; q < per; ++q) v |= ((f[i + nbytes * q] >> shift) & mask) << (w * q);
          p[i] = uint8_t(v);
        }
        p += nbytes;
        shift += w;
      }
    }
  }
  return over == 0;
}

bool unpack_int_rows(const uint8_t* w, int64_t O, int64_t K, int bits, uint8_t* fields) {
  if (bits < 2 || bits > 8) return false;
  const int64_t rb = int_row_bytes(K, bits);
  uint8_t f[kIntBlock];
  for (int64_t o = 0; o < O; ++o)
    for (int64_t b = 0; b < K; b += kIntBlock) {
      decode_fields(w + o * rb + b / 8 * bits, bits, f);
      std::copy(f, f + std::min(kIntBlock, K - b), fields + o * K + b);
    }
  return true;
}

LOWBIT_ISA_END
