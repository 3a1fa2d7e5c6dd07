// Straight-through estimator: forward fake-quantizes with any scheme, backward passes the
// gradient to w unchanged, or zeroed where the quantizer saturates when clip_grad is set.
// Registered for the Autograd key of every device: the forward redispatches to the
// device's fake_quant kernel (native on CPU, the PyTorch reference elsewhere).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

namespace lowbit::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SteFakeQuant : public torch::autograd::Function<SteFakeQuant> {
 public:
  // p1 travels as an optional: torch 1.13's apply() reads the device of every Tensor
  // argument, which an undefined tensor does not have.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& w, std::string scheme,
                            int64_t bits, const at::Tensor& p0,
                            const c10::optional<at::Tensor>& p1opt, bool clip_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["clip_grad"] = clip_grad;
    if (!clip_grad) {
      static auto op = c10::Dispatcher::singleton()
                           .findSchemaOrThrow("lowbit::fake_quant", "")
                           .typed<at::Tensor(const at::Tensor&, c10::string_view, int64_t,
                                             const at::Tensor&, const c10::optional<at::Tensor>&)>();
      return op.call(w, scheme, bits, p0, p1opt);
    }
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("lowbit::fake_quant_mask", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(
                             const at::Tensor&, c10::string_view, int64_t, const at::Tensor&,
                             const c10::optional<at::Tensor>&)>();
    auto [out, mask] = op.call(w, scheme, bits, p0, p1opt);
    ctx->save_for_backward({mask});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    at::Tensor g = grad_out[0];
    if (ctx->saved_data["clip_grad"].toBool()) {
      const at::Tensor mask = ctx->get_saved_variables()[0];
      g = g * mask.to(g.scalar_type());
    }
    return {g, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor ste_autograd(const at::Tensor& w, c10::string_view scheme, int64_t bits,
                        const at::Tensor& p0, const c10::optional<at::Tensor>& p1,
                        bool clip_grad) {
  if (!(at::GradMode::is_enabled() && w.requires_grad())) {  // no graph to record
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("lowbit::fake_quant", "")
                         .typed<at::Tensor(const at::Tensor&, c10::string_view, int64_t,
                                           const at::Tensor&, const c10::optional<at::Tensor>&)>();
    return op.call(w, scheme, bits, p0, p1);
  }
  return SteFakeQuant::apply(w, std::string(scheme), bits, p0, p1, clip_grad);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl("ste_fake_quant", ste_autograd); }

}  // namespace lowbit::ops
