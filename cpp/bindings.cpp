// lowbit._C: the non-tensor API. Tensor ops are registered with TORCH_LIBRARY (ops/)
// and reached through torch.ops.lowbit, so this module needs no torch Python bindings.
#include <pybind11/pybind11.h>

#include "lowbit/common.h"
#include "lowbit/kernels.h"
#include "lowbit/schemes.h"

namespace py = pybind11;

void register_vbq(py::module_& m);  // vbq_bindings.cpp

// The C++ scheme records as dicts, for the test that checks them against lowbit.schemes.
static py::list scheme_traits() {
  py::list out;
  for (const auto& t : lowbit::kSchemes) {
    py::list rules;
    for (auto r : t.step_rules)
      if (!r.empty()) rules.append(std::string(r));
    py::dict d;
    d["name"] = t.name;
    d["is_signed"] = t.is_signed;
    d["min_bits"] = t.min_bits;
    d["max_bits"] = t.max_bits;
    d["p0"] = t.p0;
    d["p0_rule"] = lowbit::rule_name(t.p0_rule);
    d["has_zero_point"] = t.has_zero_point();
    d["p1"] = t.p1 ? py::object(py::str(t.p1)) : py::object(py::none());
    d["step_rules"] = py::tuple(rules);
    out.append(d);
  }
  return out;
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "lowbit native kernels";
  m.attr("built_with_torch") = LOWBIT_TORCH_VERSION;
  m.def("num_threads", &lowbit::num_threads, "Threads used by lowbit's native kernels.");
  m.def("set_num_threads", &lowbit::set_num_threads, py::arg("n"),
        "Set the thread count (n <= 0 restores the default: OMP_NUM_THREADS, else the "
        "CPUs this process may use).");
  m.def("cpu_has_avx2", &lowbit::cpu_has_avx2);
  m.def("cpu_has_avx512", &lowbit::cpu_has_avx512,
        "True when the CPU and OS run the avx512 build (AVX-512 F/BW/VL/DQ, VNNI, VBMI).");
  m.def("isa", &lowbit::isa_name, "Instruction set of the kernels in use: 'avx512', 'avx2' or 'generic'.");
  m.def("set_isa", &lowbit::set_isa, py::arg("name"),
        "Force 'generic', 'avx2' or 'avx512' kernels, or 'auto' to pick by CPU (for tests and benchmarks).");
  m.def("scheme_traits", &scheme_traits,
        "The C++ scheme table (cpp/include/lowbit/schemes.h): one dict per scheme.");
  register_vbq(m);
}
