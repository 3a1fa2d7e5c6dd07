"""VBQ formula (Eq. 1/2) and its regression, the heat map, Lloyd-Max and the native
objectives against their references, and the model helpers (paper 003)."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import lowbit as lb
from lowbit import reference as R


@given(a=st.floats(0.05, 500), b=st.floats(-2, 2), c=st.floats(-1, 1), d=st.floats(-0.5, 0.5),
       bins=st.integers(2, 64))
def test_formula_matches_reference(a, b, c, d, bins):
    np.testing.assert_allclose(lb.vbq.formula(a, b, bins, c, d), R.vbq.formula(a, b, bins, c, d),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("a,b,c,d", [(385.0, 0.001, 0.0, 0.0), (1.3, 0.5, 0.0, 0.0),
                                     (0.313, -0.2, 0.0, 0.0), (50.0, 0.02, 0.01, 0.1),
                                     (8.0, 0.1, -0.03, -0.2)])
def test_regression_recovers_known_parameters(a, b, c, d):
    symmetric = c == 0 and d == 0
    v = R.vbq.formula(a, b, 16, c, d)
    fit = lb.vbq.fit_formula(v, symmetric=symmetric)
    assert fit.a == pytest.approx(a, rel=1e-5) and fit.b == pytest.approx(b, rel=1e-5)
    assert fit.c == pytest.approx(c, abs=1e-7) and fit.d == pytest.approx(d, abs=1e-7)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(fit.values(16), v, atol=1e-9)


@given(seed=st.integers(0, 2 ** 32 - 1), symmetric=st.booleans())
def test_regression_is_at_least_as_good_as_a_dense_grid(seed, symmetric):
    rng = np.random.default_rng(seed)
    v = np.sort(rng.standard_normal(8))
    if symmetric:
        v = np.concatenate([-v[4:][::-1], v[4:]])
    fit = lb.vbq.fit_formula(v, symmetric=symmetric)
    ref = R.vbq.fit_formula_grid(v, symmetric, n_alpha=801, n_d=41)
    assert fit.sse <= ref * (1 + 1e-9) + 1e-15
    sst = ((v - v.mean()) ** 2).sum()
    assert fit.r2 == pytest.approx(1 - fit.sse / sst)


def test_heatmap_grid_and_unusable_points():
    grid = lb.vbq.heatmap(lambda books: books[:, -1], 8, [0.9, 1.0, 1.2], [0.01, 0.1])
    assert grid.shape == (3, 2) and np.isnan(grid[1]).all()   # a~ = 1: a = 1, no codebook
    assert np.isnan(grid[0]).all()                            # a < 1 with b > 0: decreasing
    np.testing.assert_allclose(grid[2], [lb.vbq.formula(1.2 ** 8, b, 8)[-1] for b in (0.01, 0.1)])


@given(seed=st.integers(0, 2 ** 32 - 1), bins=st.integers(2, 32), n=st.integers(40, 2000))
def test_lloyd_max_matches_reference(seed, bins, n):
    w = np.random.default_rng(seed).standard_t(4, n)
    np.testing.assert_allclose(lb.vbq.lloyd_max(w, bins), R.vbq.lloyd_max(w, bins), rtol=1e-9, atol=1e-12)


def test_lloyd_max_is_a_fixed_point_and_beats_uniform():
    w = torch.randn(4000)
    cb = lb.vbq.lloyd_max(w, 8)
    q = lb.fake_quantize(w.double(), lb.codebook(cb, dtype=torch.float64)).numpy()
    for j, c in enumerate(cb):   # every value is the mean of its cell
        assert c == pytest.approx(w.double().numpy()[q == c].mean(), rel=1e-6)
    uniform = lb.fake_quantize(w, lb.calibrate(w, "symmetric", 3))
    assert ((q - w.numpy()) ** 2).mean() < ((uniform - w) ** 2).mean().item()
    assert lb.vbq.lloyd_codebook(w, 3).p0.shape == (1, 8)
    with pytest.raises(ValueError, match="bins must be in"):
        lb.vbq.lloyd_max(w, 1)
    with pytest.raises(ValueError, match="finite"):
        lb.vbq.lloyd_max([0.0, np.nan, 1.0], 2)
    with pytest.raises(ValueError, match="at least `bins`"):
        lb.vbq.lloyd_max([0.0, 1.0], 4)


@given(seed=st.integers(0, 2 ** 32 - 1), bins=st.integers(2, 40))
def test_weight_mse_matches_reference(seed, bins):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(3000)
    books = np.sort(rng.uniform(-3, 3, (4, bins)), 1)
    books[0] = np.linspace(-1, 1, bins)   # midpoints on grid values exercise the tie rule
    w[:bins - 1] = books[0, :-1] * 0.5 + books[0, 1:] * 0.5
    got = lb.vbq.weight_mse(w).evaluate(books)
    np.testing.assert_allclose(got, [R.vbq.weight_mse(w, b) for b in books], rtol=1e-9)


@pytest.mark.parametrize("rows", [50, 3000])   # fewer rows than inputs: direct; else Gram
def test_layer_output_mse_matches_reference(rows):
    rng = np.random.default_rng(rows)
    W = rng.standard_normal((12, 80)) * 0.1
    X = rng.standard_normal((rows, 80)).astype(np.float32)
    books = np.sort(rng.uniform(-0.3, 0.3, (5, 16)), 1)
    obj = lb.vbq.layer_output_mse(W, X)
    np.testing.assert_allclose(obj.evaluate(books), [R.vbq.layer_output_mse(W, X, b) for b in books], rtol=1e-9)
    assert obj.energy == pytest.approx(float(((X.astype(np.float64) @ W.T) ** 2).sum()), rel=1e-9)
    with pytest.raises(ValueError, match="strictly increasing"):
        obj.evaluate(books[:, ::-1].copy())
    with pytest.raises(ValueError, match=r"x must be \[rows, 80\]"):
        lb.vbq.layer_output_mse(W, X[:, :5])


def test_layer_inputs_reproduce_the_layer_outputs():
    model = lb.models.LeNet5().eval()
    x = torch.randn(3, 1, 28, 28)
    acts = lb.vbq.layer_inputs(model, x, ["features.3", "classifier.0"])
    conv = model.features[3]
    out = acts["features.3"] @ conv.weight.reshape(16, -1).T   # im2col rows times W^T
    with torch.no_grad():
        ref = conv(model.features[:3](x)) - conv.bias[:, None, None]
    torch.testing.assert_close(out.reshape(3, 10, 10, 16).permute(0, 3, 1, 2), ref, rtol=1e-4, atol=1e-5)
    assert acts["classifier.0"].shape == (3, 400)
    objs = lb.vbq.layer_output_objectives(model, x)
    assert list(objs) == ["features.0", "features.3", "classifier.0", "classifier.2", "classifier.4"]


def test_model_evaluator_suffix_matches_full_forward_and_apply_records_qparams():
    torch.manual_seed(0)
    model = lb.models.LeNet5().eval()
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    ev = lb.vbq.ModelEvaluator(model, x, y, batch_size=16)
    assert ev._chain is not None and ev.layers == 5
    books = [lb.vbq.lloyd_max(w, 4) for w in ev.float_weights]
    full = ev.accuracy(books)
    for l in range(5):
        assert ev.accuracy_with(l, books[l], books) == full
    qmodel = lb.vbq.apply(model, books, ev.names)
    assert lb.models.accuracy(qmodel, x, y) / 100 == pytest.approx(full)
    rec = lb.recorded_qparams(qmodel)
    assert set(rec) == {(n, "weight") for n in ev.names} and rec[("features.0", "weight")].scheme == "codebook"
    assert len(torch.unique(qmodel.features[0].weight)) <= 4
    assert ev.accuracy([None] * 5) == pytest.approx(lb.models.accuracy(model, x, y) / 100)
    with pytest.raises(ValueError, match="strictly increasing"):
        lb.vbq.apply(model, {"features.0": [0.2, 0.1]})
    with pytest.raises(ValueError, match="layers must name"):
        lb.vbq.ModelEvaluator(model, x, y, layers=["features.1"])
