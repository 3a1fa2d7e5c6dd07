// The kernel API. Each kernel exists three times, built portable (lowbit::generic), with
// AVX2+FMA (lowbit::avx2) and with AVX-512 F/BW/VL/DQ/VNNI/VBMI (lowbit::avx512);
// lowbit::kernels picks one at run time (dispatch.cpp).
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
namespace avx512 {
#include "lowbit/kernels.inc"
}

enum class Isa { generic, avx2, avx512 };
bool cpu_has_avx2();
// Every feature the avx512 build is compiled with (and AVX2/FMA/F16C/BMI2).
bool cpu_has_avx512();
Isa active_isa();
// "auto" (default: the widest build the CPU runs), "generic", "avx2" or "avx512"; throws
// on an unknown name or on a build the CPU cannot run.
void set_isa(const std::string& name);
std::string isa_name();

namespace kernels {
#include "lowbit/kernels.inc"
}
}  // namespace lowbit
