// Chooses the AVX2 or the portable build of every kernel at run time.
#include <atomic>
#include <stdexcept>

#include "lowbit/kernels.h"

namespace lowbit {

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

namespace {
std::atomic<int> g_isa{-1};
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    v = int(cpu_has_avx2() ? Isa::avx2 : Isa::generic);
    g_isa.store(v);
  }
  return Isa(v);
}

void set_isa(const std::string& name) {
  if (name == "auto") {
    g_isa.store(int(cpu_has_avx2() ? Isa::avx2 : Isa::generic));
  } else if (name == "generic") {
    g_isa.store(int(Isa::generic));
  } else if (name == "avx2") {
    if (!cpu_has_avx2()) throw std::invalid_argument("isa='avx2' but this CPU lacks AVX2/FMA");
    g_isa.store(int(Isa::avx2));
  } else {
    throw std::invalid_argument("isa must be 'auto', 'generic' or 'avx2', got '" + name + "'");
  }
}

std::string isa_name() { return active_isa() == Isa::avx2 ? "avx2" : "generic"; }

namespace kernels {


template <class T>
bool sym_quantize(const T* w, int64_t g, int64_t n, const T* s, int b, int8_t* c, T* f, bool* m) {
  return active_isa() == Isa::avx2 ? avx2::sym_quantize(w, g, n, s, b, c, f, m)
                                   : generic::sym_quantize(w, g, n, s, b, c, f, m);
}
template <class T>
bool sym_dequantize(const int8_t* c, int64_t g, int64_t n, const T* s, int b, T* o) {
  return active_isa() == Isa::avx2 ? avx2::sym_dequantize(c, g, n, s, b, o)
                                   : generic::sym_dequantize(c, g, n, s, b, o);
}
template <class T>
bool affine_quantize(const T* w, int64_t g, int64_t n, const T* s, const int32_t* z, int b,
                     uint8_t* c, T* f, bool* m) {
  return active_isa() == Isa::avx2 ? avx2::affine_quantize(w, g, n, s, z, b, c, f, m)
                                   : generic::affine_quantize(w, g, n, s, z, b, c, f, m);
}
template <class T>
bool affine_dequantize(const uint8_t* c, int64_t g, int64_t n, const T* s, const int32_t* z,
                       int b, T* o) {
  return active_isa() == Isa::avx2 ? avx2::affine_dequantize(c, g, n, s, z, b, o)
                                   : generic::affine_dequantize(c, g, n, s, z, b, o);
}
template <class T>
bool pow2_quantize(const T* w, int64_t g, int64_t n, const T* l, int b, int8_t* c, T* f,
                   bool* m) {
  return active_isa() == Isa::avx2 ? avx2::pow2_quantize(w, g, n, l, b, c, f, m)
                                   : generic::pow2_quantize(w, g, n, l, b, c, f, m);
}
template <class T>
bool pow2_dequantize(const int8_t* c, int64_t g, int64_t n, const T* l, int b, T* o) {
  return active_isa() == Isa::avx2 ? avx2::pow2_dequantize(c, g, n, l, b, o)
                                   : generic::pow2_dequantize(c, g, n, l, b, o);
}
template <class T>
bool codebook_quantize(const T* w, int64_t g, int64_t n, const T* cb, int K, uint8_t* c, T* f,
                       bool* m) {
  return active_isa() == Isa::avx2 ? avx2::codebook_quantize(w, g, n, cb, K, c, f, m)
                                   : generic::codebook_quantize(w, g, n, cb, K, c, f, m);
}
template <class T>
bool codebook_dequantize(const uint8_t* c, int64_t g, int64_t n, const T* cb, int K, T* o) {
  return active_isa() == Isa::avx2 ? avx2::codebook_dequantize(c, g, n, cb, K, o)
                                   : generic::codebook_dequantize(c, g, n, cb, K, o);
}
template <class T> bool qstep_maxabs(const T* w, int64_t g, int64_t n, int b, T* s) {
  return active_isa() == Isa::avx2 ? avx2::qstep_maxabs(w, g, n, b, s)
                                   : generic::qstep_maxabs(w, g, n, b, s);
}
template <class T> bool qstep_meanstd(const T* w, int64_t g, int64_t n, int b, T* s) {
  return active_isa() == Isa::avx2 ? avx2::qstep_meanstd(w, g, n, b, s)
                                   : generic::qstep_meanstd(w, g, n, b, s);
}
template <class T> bool qstep_l2(const T* w, int64_t g, int64_t n, int b, T* s) {
  return active_isa() == Isa::avx2 ? avx2::qstep_l2(w, g, n, b, s)
                                   : generic::qstep_l2(w, g, n, b, s);
}
template <class T>
bool affine_params(const T* w, int64_t g, int64_t n, int b, T* s, int32_t* z) {
  return active_isa() == Isa::avx2 ? avx2::affine_params(w, g, n, b, s, z)
                                   : generic::affine_params(w, g, n, b, s, z);
}
template <class T> bool pow2_params(const T* w, int64_t g, int64_t n, T* l) {
  return active_isa() == Isa::avx2 ? avx2::pow2_params(w, g, n, l)
                                   : generic::pow2_params(w, g, n, l);
}
bool pack_bits(const uint8_t* c, int64_t n, int b, uint8_t off, uint8_t* o) {
  return active_isa() == Isa::avx2 ? avx2::pack_bits(c, n, b, off, o)
                                   : generic::pack_bits(c, n, b, off, o);
}
void unpack_bits(const uint8_t* p, int64_t n, int b, uint8_t off, uint8_t* o) {
  active_isa() == Isa::avx2 ? avx2::unpack_bits(p, n, b, off, o)
                            : generic::unpack_bits(p, n, b, off, o);
}
bool shift_gemm(const int8_t* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
                float xs, const double* ws, const float* bias, int method, int64_t* acc, float* out,
                int64_t sn, int64_t so) {
  return active_isa() == Isa::avx2
             ? avx2::shift_gemm(x, N, K, w, O, bits, xs, ws, bias, method, acc, out, sn, so)
             : generic::shift_gemm(x, N, K, w, O, bits, xs, ws, bias, method, acc, out, sn, so);
}
void lut_gemm(const float* x, int64_t N, int64_t K, const uint8_t* w, int64_t O, int bits,
              const float* t, int64_t nt, const float* bias, float* out, int64_t sn, int64_t so) {
  active_isa() == Isa::avx2 ? avx2::lut_gemm(x, N, K, w, O, bits, t, nt, bias, out, sn, so)
                            : generic::lut_gemm(x, N, K, w, O, bits, t, nt, bias, out, sn, so);
}
bool shift_conv2d(const int8_t* x, const Conv2dShape& s, int64_t c0, int64_t c, const uint8_t* w, int64_t O,
                  int bits, float xs, const double* ws, const float* bias, float* out) {
  return active_isa() == Isa::avx2 ? avx2::shift_conv2d(x, s, c0, c, w, O, bits, xs, ws, bias, out)
                                   : generic::shift_conv2d(x, s, c0, c, w, O, bits, xs, ws, bias, out);
}
template <class T> void im2col(const T* x, const Conv2dShape& s, int64_t c0, int64_t c, T* cols) {
  active_isa() == Isa::avx2 ? avx2::im2col(x, s, c0, c, cols) : generic::im2col(x, s, c0, c, cols);
}
template void im2col<int8_t>(const int8_t*, const Conv2dShape&, int64_t, int64_t, int8_t*);
template void im2col<float>(const float*, const Conv2dShape&, int64_t, int64_t, float*);
void max_pool2d(const float* x, const Conv2dShape& s, float* out) {
  active_isa() == Isa::avx2 ? avx2::max_pool2d(x, s, out) : generic::max_pool2d(x, s, out);
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
  template bool pow2_params<T>(const T*, int64_t, int64_t, T*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

}  // namespace kernels
}  // namespace lowbit
