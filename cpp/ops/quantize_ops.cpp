// CPU adapters for quantize / dequantize / fake_quant / qparams:
// check -> contiguous -> dispatch on dtype and scheme -> torch-free kernel.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "lowbit/kernels.h"
#include "ops/check.h"

namespace lowbit::ops {
namespace K = lowbit::kernels;

namespace {

struct Checked {
  Scheme scheme;
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

template <class T> void check_pow2(const at::Tensor& p) {
  check_values<T>(p, "max_level", "positive and finite");
  const T* v = p.data_ptr<T>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    int e;
    TORCH_CHECK_VALUE(std::frexp(v[i], &e) == T(0.5), "max_level must be a power of two, got ",
                      v[i], " at index ", i);
  }
}

template <class T> void check_codebook(const at::Tensor& cb, int64_t K) {
  const T* v = cb.data_ptr<T>();
  for (int64_t g = 0; g < cb.numel() / K; ++g)
    for (int64_t j = 0; j < K; ++j) {
      const T x = v[g * K + j];
      TORCH_CHECK_VALUE(std::isfinite(x), "codebook must be finite, got ", x, " in group ", g);
      TORCH_CHECK_VALUE(j == 0 || x > v[g * K + j - 1],
                        "codebook must be strictly increasing (sorted, no duplicates); group ",
                        g, " has ", v[g * K + j - 1], " then ", x);
    }
}

// Validates scheme parameters against a tensor shaped like the weights (w or codes).
Checked check_params(const at::Tensor& like, at::ScalarType dtype, const std::string& scheme,
                     int64_t bits, const at::Tensor& p0, const c10::optional<at::Tensor>& p1) {
  Checked c;
  c.scheme = parse_scheme(scheme);
  TORCH_CHECK_VALUE(like.dim() >= 1 && like.numel() > 0,
                    "w must be a non-empty tensor with at least one dimension, got shape ",
                    like.sizes());
  const char* p0name = c.scheme == Scheme::symmetric    ? "step"
                       : c.scheme == Scheme::asymmetric ? "scale"
                       : c.scheme == Scheme::pow2       ? "max_level"
                                                        : "codebook";
  TORCH_CHECK_TYPE(p0.scalar_type() == dtype, p0name, " must be ", dtype, ", got ",
                   p0.scalar_type());
  TORCH_CHECK_VALUE(p0.device() == like.device(), p0name, " is on ", p0.device(),
                    " but the input is on ", like.device());
  c.p0 = p0.contiguous();
  if (c.scheme == Scheme::codebook) {
    check_bits(bits, 1, 8, "the codebook scheme");
    at::Tensor cb = c.p0.dim() == 1 ? c.p0.unsqueeze(0) : c.p0;
    TORCH_CHECK_VALUE(cb.dim() == 2, "codebook must be [K] or [groups, K], got shape ",
                      p0.sizes());
    c.K = cb.size(1);
    TORCH_CHECK_VALUE(c.K >= 2 && c.K <= (int64_t(1) << bits),
                      "codebook must have between 2 and 2^bits = ", int64_t(1) << bits,
                      " values, got ", c.K);
    c.groups = check_groups(like, cb, "codebook");
    c.p0 = cb;
    AT_DISPATCH_FLOATING_TYPES(dtype, "check_codebook", [&] { check_codebook<scalar_t>(cb, c.K); });
  } else {
    check_bits(bits, 2, 8, c.scheme == Scheme::symmetric ? "the symmetric scheme"
                           : c.scheme == Scheme::asymmetric ? "the asymmetric scheme"
                                                             : "the pow2 scheme");
    TORCH_CHECK_VALUE(c.p0.dim() == 1, p0name, " must be 1-D [groups], got shape ", p0.sizes());
    c.groups = check_groups(like, c.p0, p0name);
    AT_DISPATCH_FLOATING_TYPES(dtype, "check_params", [&] {
      if (c.scheme == Scheme::pow2)
        check_pow2<scalar_t>(c.p0);
      else
        check_values<scalar_t>(c.p0, p0name, "positive and finite");
    });
  }
  if (c.scheme == Scheme::asymmetric) {
    TORCH_CHECK_VALUE(p1.has_value() && p1->defined(),
                      "the asymmetric scheme needs zero_point (p1)");
    TORCH_CHECK_TYPE(p1->scalar_type() == at::kInt, "zero_point must be int32, got ",
                     p1->scalar_type());
    TORCH_CHECK_VALUE(p1->dim() == 1 && p1->numel() == c.groups,
                      "zero_point must have shape [", c.groups, "], got ", p1->sizes());
    c.p1 = p1->contiguous();
    const int32_t* z = c.p1.data_ptr<int32_t>();
    for (int64_t g = 0; g < c.groups; ++g)
      TORCH_CHECK_VALUE(z[g] >= 0 && z[g] < (1 << bits), "zero_point must be in [0, ",
                        (1 << bits) - 1, "], got ", z[g]);
  } else {
    TORCH_CHECK_VALUE(!p1.has_value() || !p1->defined(), "p1 is only used by the asymmetric scheme");
  }
  c.bits = int(bits);
  c.gsize = like.numel() / c.groups;
  return c;
}

at::ScalarType code_dtype(Scheme s) {
  return s == Scheme::symmetric || s == Scheme::pow2 ? at::kChar : at::kByte;
}

// One pass producing whichever of codes / fake-quant values / mask are requested.
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_quantize(
    const at::Tensor& w_in, const std::string& scheme, int64_t bits, const at::Tensor& p0,
    const c10::optional<at::Tensor>& p1, bool want_codes, bool want_fq, bool want_mask) {
  check_weight(w_in);
  const at::Tensor w = w_in.contiguous();
  const Checked c = check_params(w, w.scalar_type(), scheme, bits, p0, p1);
  at::Tensor codes, fq, mask;
  if (want_codes) codes = at::empty(w.sizes(), w.options().dtype(code_dtype(c.scheme)));
  if (want_fq) fq = at::empty_like(w);
  if (want_mask) mask = at::empty(w.sizes(), w.options().dtype(at::kBool));
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "lowbit_quantize", [&] {
    using T = scalar_t;
    const T* x = w.data_ptr<T>();
    T* f = want_fq ? fq.data_ptr<T>() : nullptr;
    bool* m = want_mask ? mask.data_ptr<bool>() : nullptr;
    switch (c.scheme) {
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
  const Scheme scheme = parse_scheme(std::string(scheme_sv));
  const at::ScalarType cd = code_dtype(scheme);
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
    switch (c.scheme) {
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
    }
  });
  TORCH_CHECK_VALUE(ok, "codes hold a value outside the range of ", bits, "-bit '",
                    std::string(scheme_sv), "' codes");
  return out;
}

std::vector<at::Tensor> qparams_cpu(const at::Tensor& w_in, c10::string_view scheme_sv,
                                    int64_t bits, int64_t groups, c10::string_view method_sv) {
  check_weight(w_in);
  const Scheme scheme = parse_scheme(std::string(scheme_sv));
  const std::string method(method_sv);
  TORCH_CHECK_VALUE(scheme != Scheme::codebook,
                    "qparams does not choose codebooks; pass sorted values (e.g. from VBQ)");
  check_bits(bits, 2, 8, "qparams");
  TORCH_CHECK_VALUE(groups >= 1 && w_in.size(0) % groups == 0, "groups must divide w.size(0) = ",
                    w_in.size(0), ", got ", groups);
  const at::Tensor w = w_in.contiguous();
  const int64_t gsize = w.numel() / groups;
  const auto opts = w.options();
  std::vector<at::Tensor> out;
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "lowbit_qparams", [&] {
    using T = scalar_t;
    const T* x = w.data_ptr<T>();
    at::Tensor p0 = at::empty({groups}, opts);
    T* p = p0.data_ptr<T>();
    if (scheme == Scheme::symmetric) {
      if (method == "l2")
        ok = K::qstep_l2<T>(x, groups, gsize, int(bits), p);
      else if (method == "maxabs")
        ok = K::qstep_maxabs<T>(x, groups, gsize, int(bits), p);
      else if (method == "meanstd")
        ok = K::qstep_meanstd<T>(x, groups, gsize, int(bits), p);
      else
        TORCH_CHECK_VALUE(false, "step method for 'symmetric' must be 'l2', 'maxabs' or "
                                 "'meanstd', got '", method, "'");
      out = {p0};
    } else if (scheme == Scheme::asymmetric) {
      TORCH_CHECK_VALUE(method == "minmax", "method for 'asymmetric' must be 'minmax', got '",
                        method, "'");
      at::Tensor zp = at::empty({groups}, opts.dtype(at::kInt));
      ok = K::affine_params<T>(x, groups, gsize, int(bits), p, zp.data_ptr<int32_t>());
      out = {p0, zp};
    } else {
      TORCH_CHECK_VALUE(method == "maxabs", "method for 'pow2' must be 'maxabs', got '", method,
                        "'");
      ok = K::pow2_params<T>(x, groups, gsize, p);
      out = {p0};
    }
  });
  TORCH_CHECK_VALUE(ok, "w contains NaN or Inf; quantizers need finite weights");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("quantize", quantize_cpu);
  m.impl("dequantize", dequantize_cpu);
  m.impl("fake_quant", fake_quant_cpu);
  m.impl("fake_quant_mask", fake_quant_mask_cpu);
  m.impl("ste_fake_quant", ste_fake_quant_cpu);
  m.impl("qparams", qparams_cpu);
}

}  // namespace lowbit::ops
