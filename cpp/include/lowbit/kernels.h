// The kernel API. Each kernel exists twice, built portable (lowbit::generic) and with
// AVX2+FMA (lowbit::avx2); lowbit::kernels picks one at run time (dispatch.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "lowbit/conv_shape.h"

namespace lowbit {
namespace generic {
#include "lowbit/kernels.inc"
}
namespace avx2 {
#include "lowbit/kernels.inc"
}

enum class Isa { generic, avx2 };
bool cpu_has_avx2();
Isa active_isa();
// "auto" (default: AVX2 when the CPU has it), "generic" or "avx2"; throws on an unknown
// name or on "avx2" without CPU support.
void set_isa(const std::string& name);
std::string isa_name();

namespace kernels {
#include "lowbit/kernels.inc"
}
}  // namespace lowbit
