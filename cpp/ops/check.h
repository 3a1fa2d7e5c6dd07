// Argument checks shared by the ATen adapters. Errors name the argument and what is
// accepted; ValueError / TypeError reach Python as those types.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "lowbit/schemes.h"

namespace lowbit::ops {

using lowbit::Scheme;
using lowbit::SchemeTraits;

// "'a', 'b', ..." over the scheme records that satisfy pred.
template <class Pred> std::string scheme_names(Pred pred) {
  std::string out;
  for (const auto& t : kSchemes)
    if (pred(t)) out += (out.empty() ? "'" : ", '") + std::string(t.name) + "'";
  return out;
}

inline const SchemeTraits& parse_scheme(const std::string& s) {
  const SchemeTraits* t = find_scheme(s);
  TORCH_CHECK_VALUE(t != nullptr, "scheme must be one of ",
                    scheme_names([](const SchemeTraits&) { return true; }), ", got '", s, "'");
  return *t;
}

inline void check_bits(int64_t bits, int64_t lo, int64_t hi, const char* what) {
  TORCH_CHECK_VALUE(bits >= lo && bits <= hi, "bits must be in [", lo, ", ", hi, "] for ", what,
                    ", got ", bits);
}

// bits in the scheme's own range.
inline void check_bits(int64_t bits, const SchemeTraits& t) {
  TORCH_CHECK_VALUE(bits >= t.min_bits && bits <= t.max_bits, "bits must be in [", t.min_bits,
                    ", ", t.max_bits, "] for the ", t.name, " scheme, got ", bits);
}

inline at::ScalarType code_dtype(const SchemeTraits& t) { return t.is_signed ? at::kChar : at::kByte; }

inline void check_weight(const at::Tensor& w, const char* name = "w") {
  TORCH_CHECK_TYPE(w.scalar_type() == at::kFloat || w.scalar_type() == at::kDouble, name,
                   " must be float32 or float64, got ", w.scalar_type());
  TORCH_CHECK_VALUE(w.dim() >= 1, name, " must have at least one dimension, got a 0-dim tensor");
  TORCH_CHECK_VALUE(w.numel() > 0, name, " is empty (shape ", w.sizes(), ")");
}

// Number of groups given by a parameter tensor's first dimension; w.size(0) must split evenly.
inline int64_t check_groups(const at::Tensor& w, const at::Tensor& p, const char* name) {
  TORCH_CHECK_VALUE(p.dim() >= 1 && p.size(0) >= 1, name,
                    " must have one entry per group (shape [groups] or [groups, K]), got shape ",
                    p.sizes());
  const int64_t g = p.size(0);
  TORCH_CHECK_VALUE(w.size(0) % g == 0, name, " has ", g, " groups but w.size(0) = ", w.size(0),
                    " is not a multiple of it");
  return g;
}

inline void check_param_dtype(const at::Tensor& w, const at::Tensor& p, const char* name) {
  TORCH_CHECK_TYPE(p.scalar_type() == w.scalar_type(), name, " must have the weight dtype ",
                   w.scalar_type(), ", got ", p.scalar_type());
  TORCH_CHECK_VALUE(p.device() == w.device(), name, " is on ", p.device(), " but w is on ",
                    w.device());
}

// The shift kernels' method: 0 literal shift-and-add, 1 int8 multiply-add (bits <= 4),
// 2 int16 multiply-add (bits = 5). 'auto' takes the multiply-add that fits, else literal.
inline int shift_method_id(const std::string& method, int64_t bits) {
  if (method == "literal") return 0;
  if (method == "int8") {
    TORCH_CHECK_VALUE(bits <= 4, "method 'int8' decodes power-of-two codes to int8 and needs bits <= 4, got ",
                      bits, "; use method='literal' (or 'auto')");
    return 1;
  }
  if (method == "int16") {
    TORCH_CHECK_VALUE(bits == 5, "method 'int16' decodes 5-bit power-of-two codes to int16 and needs bits = 5, "
                      "got ", bits, "; use method='auto'");
    return 2;
  }
  TORCH_CHECK_VALUE(method == "auto", "method must be 'auto', 'literal', 'int8' or 'int16', got '", method, "'");
  return bits <= 4 ? 1 : bits == 5 ? 2 : 0;
}

}  // namespace lowbit::ops
