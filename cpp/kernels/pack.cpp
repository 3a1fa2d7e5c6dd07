// Bit packing: value i occupies bits [i*bits, (i+1)*bits) of a little-endian bit stream,
// so 8 values of b bits fill exactly b bytes. Codes are stored as (code + offset) mod
// 256, which turns signed codes into unsigned fields.
#include <algorithm>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "lowbit/common.h"
#include "lowbit/isa.h"
#include "lowbit/kernels.h"

LOWBIT_ISA_BEGIN

namespace {

// 8 values -> bits bytes. Returns nonzero if some value did not fit.
inline int pack8(const uint8_t* c, int bits, uint8_t offset, uint8_t* out) {
  uint64_t v = 0;
  int over = 0;
  for (int j = 0; j < 8; ++j) {
    const uint8_t f = uint8_t(c[j] + offset);
    over |= f >> bits;
    v |= uint64_t(f) << (j * bits);
  }
  for (int k = 0; k < bits; ++k) out[k] = uint8_t(v >> (8 * k));
  return over;
}

inline void unpack8(const uint8_t* p, int bits, uint8_t offset, uint8_t* out) {
  uint64_t v = 0;
  for (int k = 0; k < bits; ++k) v |= uint64_t(p[k]) << (8 * k);
  const uint64_t m = (uint64_t(1) << bits) - 1;
  for (int j = 0; j < 8; ++j) out[j] = uint8_t(uint8_t((v >> (j * bits)) & m) - offset);
}

// The common widths get loops the compiler vectorizes.
int pack_range_4(const uint8_t* c, int64_t blocks, uint8_t offset, uint8_t* out) {
  int over = 0;
  for (int64_t i = 0; i < blocks * 4; ++i) {
    const uint8_t lo = uint8_t(c[2 * i] + offset), hi = uint8_t(c[2 * i + 1] + offset);
    over |= (lo | hi) >> 4;
    out[i] = uint8_t(lo | (hi << 4));
  }
  return over;
}
int pack_range_2(const uint8_t* c, int64_t blocks, uint8_t offset, uint8_t* out) {
  int over = 0;
  for (int64_t i = 0; i < blocks * 2; ++i) {
    const uint8_t a = uint8_t(c[4 * i] + offset), b = uint8_t(c[4 * i + 1] + offset),
                  d = uint8_t(c[4 * i + 2] + offset), e = uint8_t(c[4 * i + 3] + offset);
    over |= (a | b | d | e) >> 2;
    out[i] = uint8_t(a | (b << 2) | (d << 4) | (e << 6));
  }
  return over;
}

void unpack_range_4(const uint8_t* p, int64_t nbytes, uint8_t offset, uint8_t* o) {
  int64_t i = 0;
#ifdef __AVX2__
  // 16 packed bytes -> 32 codes: split the nibbles, interleave low/high, subtract offset.
  const __m128i low4 = _mm_set1_epi8(15), off = _mm_set1_epi8(char(offset));
  for (; i + 16 <= nbytes; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i lo = _mm_and_si128(v, low4);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * i), _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), off));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * i + 16), _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), off));
  }
#endif
  for (; i < nbytes; ++i) {
    o[2 * i] = uint8_t((p[i] & 15) - offset);
    o[2 * i + 1] = uint8_t((p[i] >> 4) - offset);
  }
}

}  // namespace

bool pack_bits(const uint8_t* codes, int64_t n, int bits, uint8_t offset, uint8_t* out) {
  const int64_t full = n / 8;  // whole 8-value blocks
  int over = 0;
  for_each_group_range(1, full, [&](int64_t, int64_t b, int64_t e) {
    const uint8_t* c = codes + b * 8;
    uint8_t* o = out + b * bits;
    int bad = 0;
    if (bits == 8) {
      for (int64_t i = 0; i < (e - b) * 8; ++i) o[i] = uint8_t(c[i] + offset);
    } else if (bits == 4) {
      bad = pack_range_4(c, e - b, offset, o);
    } else if (bits == 2) {
      bad = pack_range_2(c, e - b, offset, o);
    } else {
      for (int64_t k = 0; k < e - b; ++k) bad |= pack8(c + 8 * k, bits, offset, o + k * bits);
    }
    if (bad) {
#pragma omp atomic write
      over = 1;
    }
  });
  const int64_t rest = n - full * 8;
  if (rest > 0) {  // the tail: pad with fields of value 0 and keep only the bytes used
    uint8_t tmp[8], packed[8];
    for (int j = 0; j < 8; ++j) tmp[j] = j < rest ? codes[full * 8 + j] : uint8_t(-offset);
    over |= pack8(tmp, bits, offset, packed);
    std::copy(packed, packed + (rest * bits + 7) / 8, out + full * bits);
  }
  return over == 0;
}

void unpack_bits(const uint8_t* packed, int64_t n, int bits, uint8_t offset, uint8_t* out) {
  const int64_t full = n / 8;
  for_each_group_range(1, full, [&](int64_t, int64_t b, int64_t e) {
    const uint8_t* p = packed + b * bits;
    uint8_t* o = out + b * 8;
    if (bits == 8) {
      for (int64_t i = 0; i < (e - b) * 8; ++i) o[i] = uint8_t(p[i] - offset);
    } else if (bits == 4) {
      unpack_range_4(p, (e - b) * 4, offset, o);
    } else if (bits == 2) {
      for (int64_t i = 0; i < (e - b) * 2; ++i) {
        o[4 * i] = uint8_t((p[i] & 3) - offset);
        o[4 * i + 1] = uint8_t(((p[i] >> 2) & 3) - offset);
        o[4 * i + 2] = uint8_t(((p[i] >> 4) & 3) - offset);
        o[4 * i + 3] = uint8_t((p[i] >> 6) - offset);
      }
    } else {
      for (int64_t k = 0; k < e - b; ++k) unpack8(p + k * bits, bits, offset, o + 8 * k);
    }
  });
  const int64_t rest = n - full * 8;
  if (rest > 0) {
    uint8_t tmp[8] = {0}, vals[8];
    const int64_t used = (rest * bits + 7) / 8;
    std::copy(packed + full * bits, packed + full * bits + used, tmp);
    unpack8(tmp, bits, offset, vals);
    std::copy(vals, vals + rest, out + full * 8);
  }
}

LOWBIT_ISA_END
