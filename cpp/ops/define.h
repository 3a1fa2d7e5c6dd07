// Each *_ops.cpp defines its operators beside their CPU kernels:
//   TORCH_LIBRARY_FRAGMENT(lowbit, m) { define(m, "name(Tensor x, ...) -> Tensor", name_cpu); }
// The pure-PyTorch references are registered from Python for every other device
// (python/lowbit/ops.py, which discovers the ops from these schemas).
#pragma once
#include <torch/library.h>

#include <string>

namespace lowbit::ops {

enum class Autograd { fallthrough, own };

// Defines `schema` with `cpu` as its CPU kernel. Unless the op has an Autograd kernel of
// its own (ste_ops.cpp), it also gets an AutogradMeta fallthrough: torch 1.13 has none for
// custom ops, and without one shape-only calls on meta tensors fail before reaching the
// reference implementation.
template <class Func>
void define(torch::Library& m, const char* schema, Func* cpu, Autograd autograd = Autograd::fallthrough) {
  m.def(schema);
  const std::string full(schema);
  const std::string name = full.substr(0, full.find('('));
  m.impl(name.c_str(), c10::DispatchKey::CPU, cpu);
  if (autograd == Autograd::fallthrough)
    m.impl(name.c_str(), c10::DispatchKey::AutogradMeta, torch::CppFunction::makeFallthrough());
}

}  // namespace lowbit::ops
