// Chooses the AVX-512, AVX2 or portable build of every kernel at run time. A build is
// only ever called when the CPU (and the OS, which must save the wider registers) has
// every feature it was compiled with.
#include <atomic>
#include <stdexcept>

#include "lowbit/kernels.h"

namespace lowbit {

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

bool cpu_has_avx512() {
  // __builtin_cpu_supports also checks that the OS enabled the AVX-512 state (XCR0).
  static const bool has = cpu_has_avx2() && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2") &&
                          __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  return has;
}

namespace {
std::atomic<int> g_isa{-1};

Isa best_isa() { return cpu_has_avx512() ? Isa::avx512 : cpu_has_avx2() ? Isa::avx2 : Isa::generic; }
}  // namespace

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    v = int(best_isa());
    g_isa.store(v);
  }
  return Isa(v);
}

void set_isa(const std::string& name) {
  if (name == "auto") {
    g_isa.store(int(best_isa()));
  } else if (name == "generic") {
    g_isa.store(int(Isa::generic));
  } else if (name == "avx2") {
    if (!cpu_has_avx2()) throw std::invalid_argument("isa='avx2' but this CPU lacks AVX2/FMA");
    g_isa.store(int(Isa::avx2));
  } else if (name == "avx512") {
    if (!cpu_has_avx512())
      throw std::invalid_argument("isa='avx512' but this CPU lacks AVX-512 F/BW/VL/DQ with VNNI and VBMI "
                                  "(or the OS does not enable it); use 'auto', 'avx2' or 'generic'");
    g_isa.store(int(Isa::avx512));
  } else {
    throw std::invalid_argument("isa must be 'auto', 'generic', 'avx2' or 'avx512', got '" + name + "'");
  }
}

std::string isa_name() {
  switch (active_isa()) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

// The same call in the active build (returning a void expression is fine in C++).
#define LOWBIT_DISPATCH(...)                             \
  switch (active_isa()) {                                \
    case Isa::avx512: return avx512::__VA_ARGS__;        \
    case Isa::avx2: return avx2::__VA_ARGS__;            \
    default: return generic::__VA_ARGS__;                \
  }

namespace kernels {


template <class T>
bool sym_quantize(const T* w, int64_t g, int64_t n, const T* s, int b, int8_t* c, T* f, bool* m) {
  LOWBIT_DISPATCH(sym_quantize(w, g, n, s, b, c, f, m));
}
template <class T>
bool sym_dequantize(const int8_t* c, int64_t g, int64_t n, const T* s, int b, T* o) {
  LOWBIT_DISPATCH(sym_dequantize(c, g, n, s, b, o));
}
template <class T>
bool affine_quantize(const T* w, int64_t g, int64_t n, const T* s, const int32_t* z, int b,
                     uint8_t* c, T* f, bool* m) {
  LOWBIT_DISPATCH(affine_quantize(w, g, n, s, z, b, c, f, m));
}
template <class T>
bool affine_dequantize(const uint8_t* c, int64_t g, int64_t n, const T* s, const int32_t* z,
                       int b, T* o) {
  LOWBIT_DISPATCH(affine_dequantize(c, g, n, s, z, b, o));
}
template <class T>
bool pow2_quantize(const T* w, int64_t g, int64_t n, const T* l, int b, int8_t* c, T* f,
                   bool* m) {
  LOWBIT_DISPATCH(pow2_quantize(w, g, n, l, b, c, f, m));
}
template <class T>
bool pow2_dequantize(const int8_t* c, int64_t g, int64_t n, const T* l, int b, T* o) {
  LOWBIT_DISPATCH(pow2_dequantize(c, g, n, l, b, o));
}
template <class T>
bool codebook_quantize(const T* w, int64_t g, int64_t n, const T* cb, int K, uint8_t* c, T* f,
                       bool* m) {
  LOWBIT_DISPATCH(codebook_quantize(w, g, n, cb, K, c, f, m));
}
template <class T>
bool codebook_dequantize(const uint8_t* c, int64_t g, int64_t n, const T* cb, int K, T* o) {
  LOWBIT_DISPATCH(codebook_dequantize(c, g, n, cb, K, o));
}
template <class T>
bool range_quantize(const T* w, int64_t g, int64_t n, const T* s, const T* o, int b, uint8_t* c,
                    T* f, bool* m) {
  LOWBIT_DISPATCH(range_quantize(w, g, n, s, o, b, c, f, m));
}
template <class T>
bool range_dequantize(const uint8_t* c, int64_t g, int64_t n, const T* s, const T* o, int b, T* out) {
  LOWBIT_DISPATCH(range_dequantize(c, g, n, s, o, b, out));
}
template <class T> bool range_params(const T* w, int64_t g, int64_t n, int b, T* s, T* o) {
  LOWBIT_DISPATCH(range_params(w, g, n, b, s, o));
}
template <class T> bool qstep_maxabs(const T* w, int64_t g, int64_t n, int b, T* s) {
  LOWBIT_DISPATCH(qstep_maxabs(w, g, n, b, s));
}
template <class T> bool qstep_meanstd(const T* w, int64_t g, int64_t n, int b, T* s) {
  LOWBIT_DISPATCH(qstep_meanstd(w, g, n, b, s));
}
template <class T> bool qstep_l2(const T* w, int64_t g, int64_t n, int b, T* s) {
  LOWBIT_DISPATCH(qstep_l2(w, g, n, b, s));
}
template <class T>
bool affine_params(const T* w, int64_t g, int64_t n, int b, T* s, int32_t* z) {
  LOWBIT_DISPATCH(affine_params(w, g, n, b, s, z));
}
template <class T> bool pow2_params(const T* w, int64_t g, int64_t n, T* l) {
  LOWBIT_DISPATCH(pow2_params(w, g, n, l));
}
bool pack_bits(const uint8_t* c, int64_t n, int b, uint8_t off, uint8_t* o) {
  LOWBIT_DISPATCH(pack_bits(c, n, b, off, o));
}
void unpack_bits(const uint8_t* p, int64_t n, int b, uint8_t off, uint8_t* o) {
  LOWBIT_DISPATCH(unpack_bits(p, n, b, off, o));
}
bool shift_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
                float xs, const double* ws, const float* bias, int method, int64_t* acc, float* out,
                int64_t sn, int64_t so) {
  LOWBIT_DISPATCH(shift_gemm(x, N, K, w, O, bits, xs, ws, bias, method, acc, out, sn, so));
}
void lut_gemm(const float* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
              const float* t, int64_t nt, const float* bias, float* out, int64_t sn, int64_t so) {
  LOWBIT_DISPATCH(lut_gemm(x, N, K, w, O, bits, t, nt, bias, out, sn, so));
}
bool shift_conv2d(const int8_t* x, const Conv2dShape& s, int64_t c0, int64_t c, const uint8_t* w, int64_t O,
                  int bits, float xs, const double* ws, const float* bias, float* out) {
  LOWBIT_DISPATCH(shift_conv2d(x, s, c0, c, w, O, bits, xs, ws, bias, out));
}
bool int_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits, const int32_t* z,
              const float* xs, const double* ws, const float* bias, int64_t* acc, float* out, int64_t sn,
              int64_t so) {
  LOWBIT_DISPATCH(int_gemm(x, N, K, w, O, bits, z, xs, ws, bias, acc, out, sn, so));
}
bool quantize_rows(const float* x, int64_t N, int64_t K, int act_bits, int8_t* codes, float* steps) {
  LOWBIT_DISPATCH(quantize_rows(x, N, K, act_bits, codes, steps));
}
bool pack_int_rows(const uint8_t* c, int64_t O, int64_t K, int bits, uint8_t off, uint8_t* out) {
  LOWBIT_DISPATCH(pack_int_rows(c, O, K, bits, off, out));
}
bool pow2_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits, float xs,
               const double* ws, const float* bias, int64_t* acc, float* out, int64_t sn, int64_t so) {
  LOWBIT_DISPATCH(pow2_gemm(x, N, K, w, O, bits, xs, ws, bias, acc, out, sn, so));
}
bool vlut_gemm(const float* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits, const float* t,
               int64_t nt, const float* bias, float* out, int64_t sn, int64_t so) {
  LOWBIT_DISPATCH(vlut_gemm(x, N, K, w, O, bits, t, nt, bias, out, sn, so));
}
template <class T> void im2col(const T* x, const Conv2dShape& s, int64_t c0, int64_t c, T* cols) {
  LOWBIT_DISPATCH(im2col(x, s, c0, c, cols));
}
template void im2col<int8_t>(const int8_t*, const Conv2dShape&, int64_t, int64_t, int8_t*);
template void im2col<float>(const float*, const Conv2dShape&, int64_t, int64_t, float*);
void max_pool2d(const float* x, const Conv2dShape& s, float* out) {
  LOWBIT_DISPATCH(max_pool2d(x, s, out));
}

#define LOWBIT_INSTANTIATE(T)                                                                  \
  template bool sym_quantize<T>(const T*, int64_t, int64_t, const T*, int, int8_t*, T*, bool*); \
  template bool sym_dequantize<T>(const int8_t*, int64_t, int64_t, const T*, int, T*);         \
  template bool affine_quantize<T>(const T*, int64_t, int64_t, const T*, const int32_t*, int,  \
                                   uint8_t*, T*, bool*);                                       \
  template bool affine_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*,              \
                                     const int32_t*, int, T*);                                 \
  template bool pow2_quantize<T>(const T*, int64_t, int64_t, const T*, int, int8_t*, T*,       \
                                 bool*);                                                       \
  template bool pow2_dequantize<T>(const int8_t*, int64_t, int64_t, const T*, int, T*);        \
  template bool codebook_quantize<T>(const T*, int64_t, int64_t, const T*, int, uint8_t*, T*,  \
                                     bool*);                                                   \
  template bool codebook_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*, int, T*);   \
  template bool qstep_maxabs<T>(const T*, int64_t, int64_t, int, T*);                          \
  template bool qstep_meanstd<T>(const T*, int64_t, int64_t, int, T*);                         \
  template bool qstep_l2<T>(const T*, int64_t, int64_t, int, T*);                              \
  template bool affine_params<T>(const T*, int64_t, int64_t, int, T*, int32_t*);               \
  template bool pow2_params<T>(const T*, int64_t, int64_t, T*);                                \
  template bool range_quantize<T>(const T*, int64_t, int64_t, const T*, const T*, int, uint8_t*, \
                                  T*, bool*);                                                  \
  template bool range_dequantize<T>(const uint8_t*, int64_t, int64_t, const T*, const T*, int,  \
                                    T*);                                                       \
  template bool range_params<T>(const T*, int64_t, int64_t, int, T*, T*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

}  // namespace kernels
}  // namespace lowbit
