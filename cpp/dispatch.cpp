// Which build the kernels run (AVX-512, AVX2 or portable): the CPU checks and the choice.
// A build is only ever called when the CPU (and the OS, which must save the wider
// registers) has every feature it was compiled with; kernels.h routes each call.
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

}  // namespace lowbit
