// Argument checks shared by the ATen adapters. Errors name the argument and what is
// accepted; ValueError / TypeError reach Python as those types.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace lowbit::ops {

enum class Scheme { symmetric, asymmetric, pow2, codebook };

inline Scheme parse_scheme(const std::string& s) {
  if (s == "symmetric") return Scheme::symmetric;
  if (s == "asymmetric") return Scheme::asymmetric;
  if (s == "pow2") return Scheme::pow2;
  if (s == "codebook") return Scheme::codebook;
  TORCH_CHECK_VALUE(false, "scheme must be 'symmetric', 'asymmetric', 'pow2' or 'codebook', got '",
                    s, "'");
}

inline void check_bits(int64_t bits, int64_t lo, int64_t hi, const char* what) {
  TORCH_CHECK_VALUE(bits >= lo && bits <= hi, "bits must be in [", lo, ", ", hi, "] for ", what,
                    ", got ", bits);
}

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
