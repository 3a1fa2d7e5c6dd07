// The geometry of one 2-D convolution or pooling window over a single [C, H, W] image.
#pragma once
#include <cstdint>

namespace lowbit {

struct Conv2dShape {
  int64_t C, H, W;     // input channels, height, width
  int64_t kh, kw;      // window
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // zero (or -inf, for max pooling) padding
  int64_t dh, dw;      // dilation
  int64_t Ho, Wo;      // output height and width

  // Output size as torch computes it (floor mode); 0 when the window does not fit (the
  // span is checked first: C++ division truncates -1 / 2 to 0, which would give 1).
  static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    const int64_t span = in + 2 * p - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
  }
  // Sets Ho and Wo from the rest; false when the window does not fit the input.
  bool fit() {
    Ho = out_size(H, kh, sh, ph, dh);
    Wo = out_size(W, kw, sw, pw, dw);
    return Ho > 0 && Wo > 0;
  }
};

}  // namespace lowbit
