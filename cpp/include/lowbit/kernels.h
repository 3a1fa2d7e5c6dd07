// The kernel API. Each kernel exists three times, built portable (lowbit::generic), with
// AVX2+FMA (lowbit::avx2) and with AVX-512 F/BW/VL/DQ/VNNI/VBMI (lowbit::avx512);
// lowbit::kernels::name calls the build the CPU runs (dispatch.cpp chooses it).
//
// A kernel is declared once, at namespace lowbit scope:
//   LOWBIT_KERNEL(return type, name, (parameters), (argument names))
//   LOWBIT_KERNEL_T(...): the same for a template on the element type T
// which declares it in every build and defines lowbit::kernels::name. kernels.inc holds
// the kernels; one that a single adapter calls may be declared at the top of that adapter
// (cpp/ops/*_ops.cpp) instead. Its definition, in cpp/kernels/, sits between
// LOWBIT_ISA_BEGIN and LOWBIT_ISA_END (lowbit/isa.h) and is compiled once per build; a
// definition whose signature differs from the declaration leaves lowbit._C with an undefined
// symbol, which `import lowbit` reports.
#pragma once
#include <cstdint>
#include <string>

#include "lowbit/conv_shape.h"

namespace lowbit {

enum class Isa { generic, avx2, avx512 };
bool cpu_has_avx2();
// Every feature the avx512 build is compiled with (and AVX2/FMA/F16C/BMI2).
bool cpu_has_avx512();
Isa active_isa();
// "auto" (default: the widest build the CPU runs), "generic", "avx2" or "avx512"; throws
// on an unknown name or on a build the CPU cannot run.
void set_isa(const std::string& name);
std::string isa_name();

}  // namespace lowbit

#define LOWBIT_KERNEL_IN_BUILDS(decl) \
  namespace generic {                 \
  decl;                               \
  }                                   \
  namespace avx2 {                    \
  decl;                               \
  }                                   \
  namespace avx512 {                  \
  decl;                               \
  }

// The same call in the active build (returning a void expression is fine).
#define LOWBIT_DISPATCH(...)                      \
  switch (active_isa()) {                         \
    case Isa::avx512: return avx512::__VA_ARGS__; \
    case Isa::avx2: return avx2::__VA_ARGS__;     \
    default: return generic::__VA_ARGS__;         \
  }

#ifdef LOWBIT_ISA
// Inside a per-build source only the declarations: a copy of the inline routing compiled
// with AVX-512 flags must never be the one the linker keeps.
#define LOWBIT_KERNEL(R, name, params, args) LOWBIT_KERNEL_IN_BUILDS(R name params)
#define LOWBIT_KERNEL_T(R, name, params, args) LOWBIT_KERNEL_IN_BUILDS(template <class T> R name params)
#else
#define LOWBIT_KERNEL(R, name, params, args)   \
  LOWBIT_KERNEL_IN_BUILDS(R name params)       \
  namespace kernels {                          \
  inline R name params { LOWBIT_DISPATCH(name args) } \
  }
#define LOWBIT_KERNEL_T(R, name, params, args)                     \
  LOWBIT_KERNEL_IN_BUILDS(template <class T> R name params)        \
  namespace kernels {                                              \
  template <class T>                                               \
  R name params {                                                  \
    LOWBIT_DISPATCH(name<T> args)                                  \
  }                                                                \
  }
#endif

namespace lowbit {
#include "lowbit/kernels.inc"
}  // namespace lowbit
