// The C++ half of the scheme table: one record per scheme. python/lowbit/schemes.py holds
// the Python half; tests/test_schemes.py checks field by field that the two agree.
// Code that needs a scheme fact reads the record; it does not branch on the name.
#pragma once
#include <array>
#include <cstddef>
#include <string_view>

namespace lowbit {

// Indexes kSchemes: the kernel calls switch on it, the facts live in the records.
enum class Scheme { symmetric, asymmetric, pow2, codebook, range };

// What a parameter must hold. p0: positive [G], a power of two [G], or sorted values
// [G, K]. p1: a valid code (int32 [G], the zero point) or any finite value of the
// weight's dtype ([G], the range scheme's offset).
enum class ParamRule { positive, power_of_two, increasing, code, finite };

constexpr const char* rule_name(ParamRule r) {
  return r == ParamRule::positive       ? "positive"
         : r == ParamRule::power_of_two ? "power_of_two"
         : r == ParamRule::increasing   ? "increasing"
         : r == ParamRule::code         ? "code"
                                        : "finite";
}

struct SchemeTraits {
  Scheme id;
  const char* name;
  bool is_signed;  // codes int8 (offset by 2^(bits-1) when packed), else uint8
  int min_bits, max_bits;
  const char* p0;  // the name of p0
  ParamRule p0_rule;
  const char* p1;  // the name of p1 (a second [G] parameter), nullptr if none
  ParamRule p1_rule;  // code: int32 zero point; finite: a float of the weight's dtype
  std::array<std::string_view, 3> step_rules;  // qparams' methods; empty entries unused

  // True when the scheme has a p1 (Python's SchemeSpec.has_zero_point, the same fact).
  constexpr bool has_zero_point() const { return p1 != nullptr; }
  // p1 is an int32 code (the zero point); else it has the weight's float dtype.
  constexpr bool p1_is_code() const { return p1 != nullptr && p1_rule == ParamRule::code; }
  constexpr int n_step_rules() const {
    int n = 0;
    for (auto r : step_rules) n += !r.empty();
    return n;
  }
  constexpr bool accepts_rule(std::string_view rule) const {
    for (auto r : step_rules)
      if (!r.empty() && r == rule) return true;
    return false;
  }
};

inline constexpr std::array<SchemeTraits, 5> kSchemes{{
    {Scheme::symmetric, "symmetric", true, 2, 8, "step", ParamRule::positive, nullptr,
     ParamRule::code, {"l2", "maxabs", "meanstd"}},
    {Scheme::asymmetric, "asymmetric", false, 2, 8, "scale", ParamRule::positive, "zero_point",
     ParamRule::code, {"minmax"}},
    {Scheme::pow2, "pow2", true, 2, 8, "max_level", ParamRule::power_of_two, nullptr,
     ParamRule::code, {"maxabs"}},
    {Scheme::codebook, "codebook", false, 1, 8, "codebook", ParamRule::increasing, nullptr,
     ParamRule::code, {}},
    // Paper 004's min/max formula: value = offset + code * scale, offset a float.
    {Scheme::range, "range", false, 2, 8, "scale", ParamRule::positive, "offset",
     ParamRule::finite, {"minmax"}},
}};

constexpr bool ids_match_order() {
  for (std::size_t i = 0; i < kSchemes.size(); ++i)
    if (static_cast<std::size_t>(kSchemes[i].id) != i) return false;
  return true;
}
static_assert(ids_match_order(), "kSchemes must be listed in Scheme's order");

constexpr const SchemeTraits& traits(Scheme s) { return kSchemes[static_cast<std::size_t>(s)]; }

// The record named `name`, or nullptr.
constexpr const SchemeTraits* find_scheme(std::string_view name) {
  for (const auto& t : kSchemes)
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace lowbit
