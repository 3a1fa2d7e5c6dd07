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
  int64_t b = 0;
#ifdef __AVX2__
  // One block of 8 fields per step: field j spans at most 2 bytes from byte j*bits/8; each
  // lands in a 32-bit lane, is shifted by (j*bits) mod 8 and masked. Loads 16 bytes, so the
  // last blocks of the row (fewer than 16 bytes left) take the scalar loop below.
  {
    alignas(32) int8_t gather[32];
    alignas(32) int32_t shift[8];
    for (int j = 0; j < 8; ++j) {
      const int byte = j * bits / 8;
      gather[4 * j] = int8_t(byte), gather[4 * j + 1] = int8_t(byte + 1);
      gather[4 * j + 2] = gather[4 * j + 3] = int8_t(0x80);
      shift[j] = (j * bits) % 8;
    }
    const __m256i g = _mm256_load_si256(reinterpret_cast<const __m256i*>(gather));
    const __m256i sh = _mm256_load_si256(reinterpret_cast<const __m256i*>(shift));
    const __m256i m = _mm256_set1_epi32(int(mask));
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -128, -128, -128, -128, -128, -128, -128, -128,
                                               -128, -128, -128, -128, 0, 4, 8, 12, -128, -128, -128, -128,
                                               -128, -128, -128, -128, -128, -128, -128, -128);
    for (; b * bits + 16 <= blocks * bits; ++b) {
      const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b * bits)));
      const __m256i f = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(v, g), sh), m);
      const __m256i t = _mm256_shuffle_epi8(f, low_bytes);  // 4 field bytes at the start of each half
      const uint64_t lo = uint32_t(_mm256_extract_epi32(t, 0)), hi = uint32_t(_mm256_extract_epi32(t, 4));
      const uint64_t eight = lo | (hi << 32);
      std::memcpy(out + 8 * b, &eight, 8);
    }
  }
#endif
  for (; b < blocks; ++b) {
    uint64_t v = 0;
    for (int k = 0; k < bits; ++k) v |= uint64_t(p[b * bits + k]) << (8 * k);
    for (int j = 0; j < 8; ++j) out[8 * b + j] = uint8_t((v >> (j * bits)) & mask);
  }
}

}  // namespace LOWBIT_HELPERS
}  // namespace lowbit
