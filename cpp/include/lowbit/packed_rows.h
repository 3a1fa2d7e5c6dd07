// Row-packed weights for the inference kernels: O rows of K codes, each row packed on its
// own (fields little-endian as in pack_bits) and padded to whole blocks of 8 fields, so a
// row starts on a byte and a block of 8 fields starting at a multiple of 8 is `bits` bytes.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "lowbit/common.h"

namespace lowbit {
inline namespace LOWBIT_HELPERS {

inline int64_t packed_row_bytes(int64_t K, int bits) { return (K + 7) / 8 * bits; }

// Fields [start, start + count) of one packed row, one byte each, into out, which must
// have room for count rounded up to a multiple of 8. start must be a multiple of 8.
inline void read_fields(const uint8_t* row, int64_t start, int64_t count, int bits, uint8_t* out) {
  const uint8_t* p = row + start / 8 * bits;
  const int64_t blocks = (count + 7) / 8;
  if (bits == 8) {
    std::memcpy(out, p, size_t(count));
    return;
  }
  if (bits == 4) {
    int64_t i = 0;
#ifdef __AVX2__
    const __m128i low4 = _mm_set1_epi8(15);
    for (; i + 16 <= blocks * 4; i += 16) {  // 16 bytes -> 32 fields, in order
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      const __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), _mm_unpacklo_epi8(lo, hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i + 16), _mm_unpackhi_epi8(lo, hi));
    }
#endif
    for (; i < blocks * 4; ++i) {
      out[2 * i] = uint8_t(p[i] & 15);
      out[2 * i + 1] = uint8_t(p[i] >> 4);
    }
    return;
  }
  if (bits == 2) {
    for (int64_t i = 0; i < blocks * 2; ++i)
      for (int j = 0; j < 4; ++j) out[4 * i + j] = uint8_t((p[i] >> (2 * j)) & 3);
    return;
  }
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  for (int64_t b = 0; b < blocks; ++b) {
    uint64_t v = 0;
    for (int k = 0; k < bits; ++k) v |= uint64_t(p[b * bits + k]) << (8 * k);
    for (int j = 0; j < 8; ++j) out[8 * b + j] = uint8_t((v >> (j * bits)) & mask);
  }
}

}  // namespace LOWBIT_HELPERS
}  // namespace lowbit
