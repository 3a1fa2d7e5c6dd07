"""The straight-through estimator: forward fake-quantizes, backward passes the gradient
through (or zeroes it where the quantizer saturates), in any module and training loop."""
import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit import ops
from lowbit import reference as R

from helpers import params_for

SCHEMES = list(lb.schemes.NAMES)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("clip_grad", [False, True])
def test_gradient_rule(scheme, clip_grad):
    w = (torch.randn(8, 5, dtype=torch.float64) * 0.5).requires_grad_()
    p0, p1 = params_for(w.detach(), scheme, 3, 8)
    if scheme == "symmetric":
        p0 = p0 * 0.5  # make some weights saturate
    out = ops.ste_fake_quant(w, scheme, 3, p0, p1, clip_grad)
    assert torch.equal(out.detach(), ops.fake_quant(w.detach(), scheme, 3, p0, p1))
    upstream = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, w, upstream)
    _, mask = ops.fake_quant_mask(w.detach(), scheme, 3, p0, p1)
    expected = upstream * mask if clip_grad else upstream
    assert torch.equal(grad, expected)
    # the reference implements the same rule with detach()
    w_ref = w.detach().clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad(R.ste_fake_quant(w_ref, scheme, 3, p0, p1, clip_grad), w_ref, upstream)
    assert torch.equal(grad, grad_ref)
    if clip_grad and scheme == "symmetric":
        assert not bool(mask.all())


def test_gradient_is_identity_jacobian():
    # gradcheck-style: the Jacobian of the STE w.r.t. w is the identity
    w = torch.randn(6, dtype=torch.float64, requires_grad=True)
    step = torch.tensor([0.3], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: ops.ste_fake_quant(x, "symmetric", 3, step), w)
    assert torch.equal(jac, torch.eye(6, dtype=torch.float64))


class QuantLinear(nn.Linear):
    def forward(self, x):
        qp = lb.calibrate(self.weight.detach(), "symmetric", 2, "channel")
        return nn.functional.linear(x, lb.ste_quantize(self.weight, qp), self.bias)


def test_trains_inside_module_forward():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, :3].sum(1) > 0).long()
    model = nn.Sequential(QuantLinear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss)
    assert float(loss) < 0.5 * first
    assert model[0].weight.grad is not None


def test_no_grad_and_inference_mode():
    w = torch.randn(4, 4)
    step = torch.tensor([0.2])
    with torch.no_grad():
        a = ops.ste_fake_quant(w, "symmetric", 3, step)
    with torch.inference_mode():
        b = ops.ste_fake_quant(w, "symmetric", 3, step)
    assert torch.equal(a, b) and torch.equal(a, ops.fake_quant(w, "symmetric", 3, step))
