"""Step sizes: the L2-optimal QStep never loses to a dense grid of 1000 candidates
(checked by brute force), matches the reference algorithm, gives the same steps on every
ISA and thread count, and the max-abs, mean/std, asymmetric and power-of-two parameters
match their references."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lowbit import ops
from lowbit import reference as R
import lowbit as lb
from lowbit.reference.grids import round_half_away, round_half_up


def l2_error(w: torch.Tensor, step: float, bits: int) -> float:
    fq = R.fake_quant(w, "symmetric", bits, torch.tensor([step], dtype=w.dtype))
    return float(((fq.double() - w.double()) ** 2).sum())


def grid_best(w: torch.Tensor, bits: int) -> float:
    """Brute force: the best of 1000 evenly spaced steps up to max|w| / (L - 1/2)."""
    L = 2 ** (bits - 1) - 1
    a = w.abs().double().flatten()
    D = a.max() / (L - 0.5) * torch.arange(1, 1001, dtype=torch.float64) / 1000
    best = float("inf")
    for d in D.split(max(1, 4_000_000 // a.numel())):  # bound the [steps, n] temporary
        k = round_half_up(torch.clamp(a[None, :] / d[:, None], max=L))
        best = min(best, float(((k * d[:, None] - a[None, :]) ** 2).sum(1).min()))
    return best


def assert_no_worse_than_grid(w: torch.Tensor, step: float, bits: int, note=None) -> None:
    # Errors are measured through float fake quant, as the kernel measures them: each
    # k * step carries a rounding of eps |w|, which moves a residual r <= step / 2 by
    # that much and the sum by up to eps * step * sum|w|, per evaluation. Relative to a
    # tiny error (two values that nearly fit the grid) that is far more than 1e-6.
    slack = 4 * torch.finfo(w.dtype).eps * step * float(w.abs().double().sum())
    assert l2_error(w, step, bits) <= grid_best(w, bits) * (1 + 1e-6) + slack + 1e-30, note


def sample(kind: str, n: int, g: torch.Generator) -> torch.Tensor:
    if kind == "normal":
        return torch.randn(n, generator=g)
    if kind == "laplace":
        u = torch.rand(n, generator=g) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs())
    if kind == "uniform":
        return torch.rand(n, generator=g) * 2 - 1
    if kind == "outliers":
        x = torch.randn(n, generator=g) * 0.01
        x[: max(1, n // 500)] = 1.0
        return x
    if kind == "bimodal":
        return torch.randn(n, generator=g) * 0.1 + torch.sign(torch.randn(n, generator=g))
    if kind == "student":
        return torch.randn(n, generator=g) / torch.sqrt(torch.rand(n, generator=g) + 1e-3)
    if kind == "clusters":  # tight clusters at random places: a grid with many basins
        centers = torch.rand(4, generator=g) * 2
        return centers[torch.randint(0, 4, (n,), generator=g)] + torch.randn(n, generator=g) * 1e-3
    return torch.randint(-3, 4, (n,), generator=g).float() * 0.25  # few distinct values


KINDS = ["normal", "laplace", "uniform", "outliers", "bimodal", "student", "discrete", "clusters"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [37, 2000, 20000, 70000])  # sorted (pruned grid) up to 65536, then histogram
def test_l2_step_never_worse_than_dense_grid(kind, n):
    g = torch.Generator().manual_seed(n)
    w = sample(kind, n, g)
    for bits in range(2, 9):
        step = float(ops.qparams(w, "symmetric", bits, 1, "l2")[0])
        assert_no_worse_than_grid(w, step, bits, (kind, n, bits))


@pytest.mark.parametrize("n", [50, 5000])
def test_l2_step_finds_the_grid_basin_below_a_worse_one(n):
    # 0.3 and 0.7 at 2 bits: steps near 0.46 (both values on the level) cost 192 per 5000,
    # steps near 0.7 (0.3 rounds to 0) 270. The sweep starts between the basins, and the
    # error of the top cell alone is not monotone in the step, so it must not end the sweep.
    w = torch.tensor([0.3] * (n * 3 // 5) + [0.7] * (n * 2 // 5))
    w = w[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    step = float(ops.qparams(w, "symmetric", 2, 1, "l2")[0])
    assert_no_worse_than_grid(w, step, 2)
    assert step == pytest.approx(0.46, abs=0.01)


@given(st.integers(2, 8), st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=300))
def test_l2_step_beats_grid_property(bits, values):
    w = torch.tensor(values)
    step = float(ops.qparams(w, "symmetric", bits, 1, "l2")[0])
    assert step > 0
    if w.abs().max() > 0:
        assert_no_worse_than_grid(w, step, bits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(12, 300), (2, 4096)])
def test_l2_step_matches_reference_algorithm(dtype, shape, isa):
    # Groups of <= 65536 values are sorted: kernel and reference run the same algorithm
    # on exact sums (the kernel skips grid steps it proves worse) and reach the same error.
    G, n = shape
    w = (torch.randn(G, n) * torch.linspace(0.1, 2, G)[:, None]).to(dtype)
    for bits in (2, 3, 4, 6, 8):
        ours = ops.qparams(w, "symmetric", bits, G, "l2")[0]
        ref = R.qparams(w, "symmetric", bits, G, "l2")[0]
        for g in range(G):
            e_ours, e_ref = l2_error(w[g], float(ours[g]), bits), l2_error(w[g], float(ref[g]), bits)
            assert e_ours <= e_ref * (1 + 1e-6) + 1e-30  # error sums round at ~1e-7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,ties", [((64, 4096), False), ((1, 200_000), False), ((1, 200_000), True)])
def test_l2_step_same_on_every_isa_and_thread_count(dtype, shape, ties):
    # sorted groups / one histogram group; with ties, values on multiples of 1/8 put a / D on
    # half-integers for many grid steps, where the SIMD exact errors must divide
    from lowbit.threads import supported_isas
    g = torch.Generator().manual_seed(3)
    if ties:
        w = (torch.randint(-24, 25, shape, generator=g).to(torch.float64) / 8).to(dtype)
    else:
        w = (torch.randn(shape, generator=g) * 0.05).to(dtype)
    w[0, :7] = 0.5  # ties and a bucket of equal values
    isas = supported_isas()
    for bits in (2, 4, 8):
        steps = []
        try:
            for name in isas:
                lb.set_kernel_isa(name)
                for threads in (1, 2, 3):
                    lb.set_num_threads(threads)
                    steps.append(ops.qparams(w, "symmetric", bits, shape[0], "l2")[0])
        finally:
            lb.set_kernel_isa("auto")
            lb.set_num_threads(0)
        for s in steps[1:]:
            assert torch.equal(s, steps[0]), bits


def test_l2_step_on_gaussian_matches_meanstd_constant():
    # The mean/std rule's constants are the L2-optimal steps of a unit Gaussian.
    w = torch.randn(400_000, dtype=torch.float64)
    for bits in range(2, 9):
        l2 = float(ops.qparams(w, "symmetric", bits, 1, "l2")[0])
        ms = float(ops.qparams(w, "symmetric", bits, 1, "meanstd")[0])
        assert abs(l2 / ms - 1) < 0.03, bits


def test_l2_step_per_channel_and_group():
    w = torch.randn(8, 500) * torch.arange(1, 9)[:, None]
    per_ch = ops.qparams(w, "symmetric", 3, 8, "l2")[0]
    for c in range(8):
        assert float(per_ch[c]) == pytest.approx(float(ops.qparams(w[c:c + 1], "symmetric", 3, 1, "l2")[0]), rel=1e-6)
    per_group = ops.qparams(w, "symmetric", 3, 4, "l2")[0]
    assert per_group.shape == (4,)
    assert float(per_group[1]) == pytest.approx(float(ops.qparams(w[2:4], "symmetric", 3, 1, "l2")[0]), rel=1e-6)


@pytest.mark.parametrize("scheme,method", [("symmetric", "maxabs"), ("symmetric", "meanstd"),
                                           ("asymmetric", "minmax"), ("pow2", "maxabs")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_simple_params_match_reference(scheme, method, dtype, isa):
    w = (torch.randn(16, 333) * torch.rand(16, 1) + torch.randn(16, 1) * 0.1).to(dtype)
    for bits in range(2, 9):
        for groups in (1, 4, 16):
            ours = ops.qparams(w, scheme, bits, groups, method)
            ref = R.qparams(w, scheme, bits, groups, method)
            for a, b in zip(ours, ref):
                torch.testing.assert_close(a, b, rtol=1e-12 if method != "meanstd" else 1e-6, atol=0)


def test_maxabs_step_is_paper_004_symmetric():
    # round(w * (2^(n-1) - 1) / max|w|) is the symmetric quantizer with D = max|w| / L
    w = torch.randn(1000, dtype=torch.float64)
    step = ops.qparams(w, "symmetric", 4, 1, "maxabs")[0]
    assert float(step) == pytest.approx(float(w.abs().max()) / 7)
    codes = ops.quantize(w, "symmetric", 4, step).double()
    assert torch.equal(codes, round_half_away(w / step))


@pytest.mark.parametrize("scheme,method", [("symmetric", "l2"), ("symmetric", "maxabs"),
                                           ("asymmetric", "minmax"), ("pow2", "maxabs")])
def test_all_zero_group_gets_a_usable_parameter(scheme, method):
    w = torch.zeros(2, 5)
    w[1] = torch.randn(5)
    p = ops.qparams(w, scheme, 4, 2, method)
    fq = ops.fake_quant(w, scheme, 4, p[0], p[1] if len(p) > 1 else None)
    assert fq[0].eq(0).all()
