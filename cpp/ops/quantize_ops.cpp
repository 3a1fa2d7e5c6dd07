// CPU adapters for quantize / dequantize / fake_quant / qparams:
// check -> contiguous -> dispatch on dtype and scheme -> torch-free kernel.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <string_view>
#include <tuple>

#include "lowbit/kernels.h"
#include "lowbit/schemes.h"
#include "ops/check.h"
#include "ops/define.h"

namespace lowbit::ops {
namespace K = lowbit::kernels;

namespace {

struct Checked {
  const SchemeTraits* t;
  int bits;
  int64_t groups, gsize, K = 0;
  at::Tensor p0, p1;  // contiguous, validated
};

template <class T> void check_values(const at::Tensor& p, const char* name, const char* rule) {
  const T* v = p.data_ptr<T>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    const bool ok = std::isfinite(v[i]) && v[i] > T(0);
    TORCH_CHECK_VALUE(ok, name, " must be ", rule, ", got ", v[i], " at index ", i);
  }
}

template <class T> void check_pow2(const at::Tensor& p, const char* name) {
  check_values<T>(p, name, "positive and finite");
  const T* v = p.data_ptr<T>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    int e;
    TORCH_CHECK_VALUE(std::frexp(v[i], &e) == T(0.5), name, " must be a power of two, got ",
                      v[i], " at index ", i);
  }
}

template <class T> void check_increasing(const at::Tensor& cb, int64_t K, const char* name) {
  const T* v = cb.data_ptr<T>();
  for (int64_t g = 0; g < cb.numel() / K; ++g)
    for (int64_t j = 0; j < K; ++j) {
      const T x = v[g * K + j];
      TORCH_CHECK_VALUE(std::isfinite(x), name, " must be finite, got ", x, " in group ", g);
      TORCH_CHECK_VALUE(j == 0 || x > v[g * K + j - 1], name,
                        " must be strictly increasing (sorted, no duplicates); group ",
                        g, " has ", v[g * K + j - 1], " then ", x);
    }
}

// Validates scheme parameters against a tensor shaped like the weights (w or codes).
// The record says what p0 must hold and whether there is a zero point.
Checked check_params(const at::Tensor& like, at::ScalarType dtype, const std::string& scheme,
                     int64_t bits, const at::Tensor& p0, const c10::optional<at::Tensor>& p1) {
  Checked c;
  c.t = &parse_scheme(scheme);
  const SchemeTraits& t = *c.t;
  TORCH_CHECK_VALUE(like.dim() >= 1 && like.numel() > 0,
                    "w must be a non-empty tensor with at least one dimension, got shape ",
                    like.sizes());
  const char* p0name = t.p0;
  TORCH_CHECK_TYPE(p0.scalar_type() == dtype, p0name, " must be ", dtype, ", got ",
                   p0.scalar_type());
  TORCH_CHECK_VALUE(p0.device() == like.device(), p0name, " is on ", p0.device(),
                    " but the input is on ", like.device());
  check_bits(bits, t);
  c.p0 = p0.contiguous();
  if (t.p0_rule == ParamRule::increasing) {  // [K] or [G, K] sorted values
    at::Tensor cb = c.p0.dim() == 1 ? c.p0.unsqueeze(0) : c.p0;
    TORCH_CHECK_VALUE(cb.dim() == 2, p0name, " must be [K] or [groups, K], got shape ",
                      p0.sizes());
    c.K = cb.size(1);
    TORCH_CHECK_VALUE(c.K >= 2 && c.K <= (int64_t(1) << bits), p0name,
                      " must have between 2 and 2^bits = ", int64_t(1) << bits,
                      " values, got ", c.K);
    c.groups = check_groups(like, cb, p0name);
    c.p0 = cb;
    AT_DISPATCH_FLOATING_TYPES(dtype, "check_increasing",
                               [&] { check_increasing<scalar_t>(cb, c.K, p0name); });
  } else {  // [G] positive values
    TORCH_CHECK_VALUE(c.p0.dim() == 1, p0name, " must be 1-D [groups], got shape ", p0.sizes());
    c.groups = check_groups(like, c.p0, p0name);
    AT_DISPATCH_FLOATING_TYPES(dtype, "check_params", [&] {
      if (t.p0_rule == ParamRule::power_of_two)
        check_pow2<scalar_t>(c.p0, p0name);
      else
        check_values<scalar_t>(c.p0, p0name, "positive and finite");
    });
  }
  if (t.has_zero_point()) {  // [G]: an int32 code (zero point) or a finite float (offset)
    TORCH_CHECK_VALUE(p1.has_value() && p1->defined(), "the ", t.name, " scheme needs ", t.p1,
                      " (p1)");
    if (t.p1_is_code()) {
      TORCH_CHECK_TYPE(p1->scalar_type() == at::kInt, t.p1, " must be int32, got ",
                       p1->scalar_type());
    } else {
      TORCH_CHECK_TYPE(p1->scalar_type() == dtype, t.p1, " must have the dtype of ", t.p0, " (",
                       dtype, "), got ", p1->scalar_type());
    }
    TORCH_CHECK_VALUE(p1->device() == like.device(), t.p1, " is on ", p1->device(),
                      " but the input is on ", like.device());
    TORCH_CHECK_VALUE(p1->dim() == 1 && p1->numel() == c.groups, t.p1, " must have shape [",
                      c.groups, "], got ", p1->sizes());
    c.p1 = p1->contiguous();
    if (t.p1_is_code()) {
      const int32_t* z = c.p1.data_ptr<int32_t>();
      for (int64_t g = 0; g < c.groups; ++g)
        TORCH_CHECK_VALUE(z[g] >= 0 && z[g] < (1 << bits), t.p1, " must be in [0, ",
                          (1 << bits) - 1, "], got ", z[g]);
    } else {
      AT_DISPATCH_FLOATING_TYPES(dtype, "check_p1", [&] {
        const scalar_t* v = c.p1.data_ptr<scalar_t>();
        for (int64_t g = 0; g < c.groups; ++g)
          TORCH_CHECK_VALUE(std::isfinite(v[g]), t.p1, " must be finite, got ", v[g],
                            " at index ", g);
      });
    }
  } else {
    TORCH_CHECK_VALUE(!p1.has_value() || !p1->defined(),
                      "p1 is only used by schemes with a second parameter, a zero point or an offset (",
                      scheme_names([](const SchemeTraits& s) { return s.has_zero_point(); }), ")");
  }
  c.bits = int(bits);
  c.gsize = like.numel() / c.groups;
  return c;
}

// One pass producing whichever of codes / fake-quant values / mask are requested.
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_quantize(
    const at::Tensor& w_in, const std::string& scheme, int64_t bits, const at::Tensor& p0,
    const c10::optional<at::Tensor>& p1, bool want_codes, bool want_fq, bool want_mask) {
  check_weight(w_in);
  const at::Tensor w = w_in.contiguous();
  const Checked c = check_params(w, w.scalar_type(), scheme, bits, p0, p1);
  at::Tensor codes, fq, mask;
  if (want_codes) codes = at::empty(w.sizes(), w.options().dtype(code_dtype(*c.t)));
  if (want_fq) fq = at::empty_like(w);
  if (want_mask) mask = at::empty(w.sizes(), w.options().dtype(at::kBool));
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "lowbit_quantize", [&] {
    using T = scalar_t;
    const T* x = w.data_ptr<T>();
    T* f = want_fq ? fq.data_ptr<T>() : nullptr;
    bool* m = want_mask ? mask.data_ptr<bool>() : nullptr;
    switch (c.t->id) {
      case Scheme::symmetric:
        ok = K::sym_quantize<T>(x, c.groups, c.gsize, c.p0.data_ptr<T>(), c.bits,
                                want_codes ? codes.data_ptr<int8_t>() : nullptr, f, m);
        break;
      case Scheme::asymmetric:
        ok = K::affine_quantize<T>(x, c.groups, c.gsize, c.p0.data_ptr<T>(),
                                   c.p1.data_ptr<int32_t>(), c.bits,
                                   want_codes ? codes.data_ptr<uint8_t>() : nullptr, f, m);
        break;
      case Scheme::pow2:
        ok = K::pow2_quantize<T>(x, c.groups, c.gsize, c.p0.data_ptr<T>(), c.bits,
                                 want_codes ? codes.data_ptr<int8_t>() : nullptr, f, m);
        break;
      case Scheme::codebook:
        ok = K::codebook_quantize<T>(x, c.groups, c.gsize, c.p0.data_ptr<T>(), int(c.K),
                                     want_codes ? codes.data_ptr<uint8_t>() : nullptr, f, m);
        break;
      case Scheme::range:
        ok = K::range_quantize<T>(x, c.groups, c.gsize, c.p0.data_ptr<T>(), c.p1.data_ptr<T>(),
                                  c.bits, want_codes ? codes.data_ptr<uint8_t>() : nullptr, f, m);
        break;
    }
  });
  TORCH_CHECK_VALUE(ok, "w contains NaN or Inf; quantizers need finite weights");
  return {codes, fq, mask};
}

at::Tensor quantize_cpu(const at::Tensor& w, c10::string_view scheme, int64_t bits,
                        const at::Tensor& p0, const c10::optional<at::Tensor>& p1) {
  return std::get<0>(run_quantize(w, std::string(scheme), bits, p0, p1, true, false, false));
}

at::Tensor fake_quant_cpu(const at::Tensor& w, c10::string_view scheme, int64_t bits,
                          const at::Tensor& p0, const c10::optional<at::Tensor>& p1) {
  return std::get<1>(run_quantize(w, std::string(scheme), bits, p0, p1, false, true, false));
}

std::tuple<at::Tensor, at::Tensor> fake_quant_mask_cpu(const at::Tensor& w,
                                                       c10::string_view scheme, int64_t bits,
                                                       const at::Tensor& p0,
                                                       const c10::optional<at::Tensor>& p1) {
  auto r = run_quantize(w, std::string(scheme), bits, p0, p1, false, true, true);
  return {std::get<1>(r), std::get<2>(r)};
}

at::Tensor ste_fake_quant_cpu(const at::Tensor& w, c10::string_view scheme, int64_t bits,
                              const at::Tensor& p0, const c10::optional<at::Tensor>& p1, bool) {
  return fake_quant_cpu(w, scheme, bits, p0, p1);
}

at::Tensor dequantize_cpu(const at::Tensor& codes_in, c10::string_view scheme_sv, int64_t bits,
                          const at::Tensor& p0, const c10::optional<at::Tensor>& p1) {
  const at::ScalarType cd = code_dtype(parse_scheme(std::string(scheme_sv)));
  TORCH_CHECK_TYPE(codes_in.scalar_type() == cd, "codes for the '", std::string(scheme_sv),
                   "' scheme must be ", cd, ", got ", codes_in.scalar_type());
  const at::Tensor codes = codes_in.contiguous();
  const at::ScalarType dtype = p0.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble,
                   "parameters must be float32 or float64, got ", dtype);
  const Checked c = check_params(codes, dtype, std::string(scheme_sv), bits, p0, p1);
  at::Tensor out = at::empty(codes.sizes(), codes.options().dtype(dtype));
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(dtype, "lowbit_dequantize", [&] {
    using T = scalar_t;
    T* o = out.data_ptr<T>();
    switch (c.t->id) {
      case Scheme::symmetric:
        ok = K::sym_dequantize<T>(codes.data_ptr<int8_t>(), c.groups, c.gsize,
                                  c.p0.data_ptr<T>(), c.bits, o);
        break;
      case Scheme::asymmetric:
        ok = K::affine_dequantize<T>(codes.data_ptr<uint8_t>(), c.groups, c.gsize,
                                     c.p0.data_ptr<T>(), c.p1.data_ptr<int32_t>(), c.bits, o);
        break;
      case Scheme::pow2:
        ok = K::pow2_dequantize<T>(codes.data_ptr<int8_t>(), c.groups, c.gsize,
                                   c.p0.data_ptr<T>(), c.bits, o);
        break;
      case Scheme::codebook:
        ok = K::codebook_dequantize<T>(codes.data_ptr<uint8_t>(), c.groups, c.gsize,
                                       c.p0.data_ptr<T>(), int(c.K), o);
        break;
      case Scheme::range:
        ok = K::range_dequantize<T>(codes.data_ptr<uint8_t>(), c.groups, c.gsize,
                                    c.p0.data_ptr<T>(), c.p1.data_ptr<T>(), c.bits, o);
        break;
    }
  });
  TORCH_CHECK_VALUE(ok, "codes hold a value outside the range of ", bits, "-bit '",
                    std::string(scheme_sv), "' codes");
  return out;
}

// The kernel of each step rule, one signature for all: p1 is the second parameter if the
// scheme has one (int32_t* for a zero point, T* for an offset: SchemeTraits::p1_rule). Which
// rules a scheme accepts is the scheme record's fact; this only maps them to kernels.
template <class T>
using RuleKernel = bool (*)(const T* w, int64_t groups, int64_t gsize, int bits, T* p0, void* p1);

template <class T> RuleKernel<T> rule_kernel(Scheme s, std::string_view rule) {
  static const struct {
    Scheme s;
    std::string_view rule;
    RuleKernel<T> fn;
  } table[] = {
      {Scheme::symmetric, "l2",
       [](const T* w, int64_t g, int64_t n, int b, T* p, void*) { return K::qstep_l2<T>(w, g, n, b, p); }},
      {Scheme::symmetric, "maxabs",
       [](const T* w, int64_t g, int64_t n, int b, T* p, void*) { return K::qstep_maxabs<T>(w, g, n, b, p); }},
      {Scheme::symmetric, "meanstd",
       [](const T* w, int64_t g, int64_t n, int b, T* p, void*) { return K::qstep_meanstd<T>(w, g, n, b, p); }},
      {Scheme::asymmetric, "minmax",
       [](const T* w, int64_t g, int64_t n, int b, T* p, void* z) {
         return K::affine_params<T>(w, g, n, b, p, static_cast<int32_t*>(z));
       }},
      {Scheme::pow2, "maxabs",
       [](const T* w, int64_t g, int64_t n, int, T* p, void*) { return K::pow2_params<T>(w, g, n, p); }},
      {Scheme::range, "minmax",
       [](const T* w, int64_t g, int64_t n, int b, T* p, void* o) {
         return K::range_params<T>(w, g, n, b, p, static_cast<T*>(o));
       }},
  };
  for (const auto& e : table)
    if (e.s == s && e.rule == rule) return e.fn;
  return nullptr;
}

std::string rule_list(const SchemeTraits& t) {
  std::string out;
  for (auto r : t.step_rules)
    if (!r.empty()) out += (out.empty() ? "'" : ", '") + std::string(r) + "'";
  return out;
}

std::vector<at::Tensor> qparams_cpu(const at::Tensor& w_in, c10::string_view scheme_sv,
                                    int64_t bits, int64_t groups, c10::string_view method_sv) {
  check_weight(w_in);
  const SchemeTraits& t = parse_scheme(std::string(scheme_sv));
  const std::string method(method_sv);
  TORCH_CHECK_VALUE(t.n_step_rules() > 0, "qparams does not choose ", t.name,
                    " parameters: the scheme has no step rule; pass ", t.p0,
                    " yourself");
  check_bits(bits, t.min_bits, t.max_bits, "qparams");
  TORCH_CHECK_VALUE(groups >= 1 && w_in.size(0) % groups == 0, "groups must divide w.size(0) = ",
                    w_in.size(0), ", got ", groups);
  TORCH_CHECK_VALUE(t.accepts_rule(method), "method for '", t.name, "' must be one of ",
                    rule_list(t), ", got '", method, "'");
  const at::Tensor w = w_in.contiguous();
  const int64_t gsize = w.numel() / groups;
  const auto opts = w.options();
  std::vector<at::Tensor> out;
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "lowbit_qparams", [&] {
    using T = scalar_t;
    const RuleKernel<T> fn = rule_kernel<T>(t.id, method);
    TORCH_INTERNAL_ASSERT(fn != nullptr, "no kernel for step rule '", method, "' of ", t.name);
    at::Tensor p0 = at::empty({groups}, opts);
    at::Tensor p1 = !t.has_zero_point() ? at::Tensor()
                    : t.p1_is_code()    ? at::empty({groups}, opts.dtype(at::kInt))
                                        : at::empty({groups}, opts);
    ok = fn(w.data_ptr<T>(), groups, gsize, int(bits), p0.data_ptr<T>(),
            p1.defined() ? p1.data_ptr() : nullptr);
    out = p1.defined() ? std::vector<at::Tensor>{p0, p1} : std::vector<at::Tensor>{p0};
  });
  TORCH_CHECK_VALUE(ok, "w contains NaN or Inf; quantizers need finite weights");
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  // scheme: 'symmetric' (p0 = step [G]), 'asymmetric' (p0 = scale [G], p1 = zero_point
  // int32 [G]), 'pow2' (p0 = max_level [G], a power of two), 'codebook' (p0 = sorted
  // values [G, K]), 'range' (p0 = scale [G], p1 = offset [G]); see lowbit/schemes.h. G groups
  // split w along dim 0: 1 = per tensor, w.size(0) = per channel.
  define(m, "quantize(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor", quantize_cpu);
  define(m, "dequantize(Tensor codes, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor",
         dequantize_cpu);
  define(m, "fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> Tensor", fake_quant_cpu);
  define(m, "fake_quant_mask(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None) -> (Tensor, Tensor)",
         fake_quant_mask_cpu);
  // Its Autograd kernel, the straight-through estimator, is in ste_ops.cpp.
  define(m,
         "ste_fake_quant(Tensor w, str scheme, int bits, Tensor p0, Tensor? p1=None,"
         " bool clip_grad=False) -> Tensor",
         ste_fake_quant_cpu, Autograd::own);
  // method: one of the scheme's step rules (schemes.h).
  define(m, "qparams(Tensor w, str scheme, int bits, int groups, str method) -> Tensor[]", qparams_cpu);
}

}  // namespace lowbit::ops
