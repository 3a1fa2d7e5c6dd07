// The kernel API. Each kernel exists three times, built portable (lowbit::generic), with
// AVX2+FMA (lowbit::avx2) and with AVX-512 F/BW/VL/DQ/VNNI/VBMI (lowbit::avx512);
// lowbit::kernels picks one at run time. Every kernel is one entry of kernels.inc.
#pragma once
#include <cstdint>
#include <string>

#include "lowbit/conv_shape.h"

namespace lowbit {
// One declaration per build, defined in cpp/kernels/ (compiled once per build).
#define LOWBIT_KERNEL(R, name, params, args) R name params;
#define LOWBIT_KERNEL_T(R, name, params, args) template <class T> R name params;
namespace generic {
#include "lowbit/kernels.inc"
}
namespace avx2 {
#include "lowbit/kernels.inc"
}
namespace avx512 {
#include "lowbit/kernels.inc"
}
#undef LOWBIT_KERNEL
#undef LOWBIT_KERNEL_T

enum class Isa { generic, avx2, avx512 };
bool cpu_has_avx2();
// Every feature the avx512 build is compiled with (and AVX2/FMA/F16C/BMI2).
bool cpu_has_avx512();
Isa active_isa();
// "auto" (default: the widest build the CPU runs), "generic", "avx2" or "avx512"; throws
// on an unknown name or on a build the CPU cannot run.
void set_isa(const std::string& name);
std::string isa_name();

// lowbit::kernels::name calls the active build's name (returning a void expression is fine).
// Only code outside the per-build sources sees these inline functions: a copy compiled
// with AVX-512 flags must never be the one the linker keeps.
#ifndef LOWBIT_ISA
#define LOWBIT_DISPATCH(...)                      \
  switch (active_isa()) {                         \
    case Isa::avx512: return avx512::__VA_ARGS__; \
    case Isa::avx2: return avx2::__VA_ARGS__;     \
    default: return generic::__VA_ARGS__;         \
  }
#define LOWBIT_KERNEL(R, name, params, args) \
  inline R name params { LOWBIT_DISPATCH(name args) }
#define LOWBIT_KERNEL_T(R, name, params, args) \
  template <class T>                           \
  R name params {                              \
    LOWBIT_DISPATCH(name<T> args)              \
  }
namespace kernels {
#include "lowbit/kernels.inc"
}
#undef LOWBIT_KERNEL
#undef LOWBIT_KERNEL_T
#undef LOWBIT_DISPATCH
#endif
}  // namespace lowbit
