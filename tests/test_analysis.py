"""lowbit.analysis (paper 004): sizes from real bytes, the accuracy/size sweep and its
knee, bit efficiency, quartiles and histograms, pow2 bit-levels, class grouping."""
import gzip
import lzma
import math

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

import lowbit as lb
from lowbit import analysis as A
from lowbit.analysis.bit_efficiency import plot_bit_efficiency
from lowbit.analysis.sweep import SweepRow
from lowbit.serialize import to_bytes

PNG = b"\x89PNG\r\n\x1a\n"


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5)).eval()


# ---- sizes ---------------------------------------------------------------------------------

def test_sizes_are_lengths_of_the_real_files(tmp_path):
    model = _mlp()
    q = lb.ptq(model, "pow2", 3)
    s = A.model_sizes(q, float_model=model)
    packed, values = to_bytes(q), to_bytes(q, pack=False)
    assert s.packed == len(packed) == lb.save_quantized(q, tmp_path / "q.lbq")
    assert s.packed == (tmp_path / "q.lbq").stat().st_size
    assert s.float32 == len(to_bytes(model)) == len(values)
    assert s.packed_gzip == len(gzip.compress(packed, 9, mtime=0))
    assert s.packed_lzma == len(lzma.compress(packed, preset=9 | lzma.PRESET_EXTREME))
    assert s.values_gzip == len(gzip.compress(values, 9, mtime=0))
    assert gzip.decompress(gzip.compress(packed, 9, mtime=0)) == packed
    # 3-bit codes (a 1.7k-parameter model, so the JSON header weighs in); few distinct
    # float values compress well too.
    assert s.packed < s.float32 / 3 and s.values_lzma < s.float32 / 2


# ---- sweep and knee ------------------------------------------------------------------------

def test_sweep_rows_and_plot(tmp_path):
    model, x = _mlp(), torch.randn(50, 20)
    target = model(x).argmax(1)
    agree = lambda m: lb.models.accuracy(m, x, target)  # noqa: E731  (float model = 100 %)
    rows = A.accuracy_size_table(model, agree, schemes=("asymmetric", "pow2"), bits=(8, 3, 2),
                                 png=tmp_path / "sweep.png", progress=False)
    assert [(r.scheme, r.bits) for r in rows] == [("float32", 32), ("asymmetric", 8), ("asymmetric", 3),
                                                  ("asymmetric", 2), ("pow2", 8), ("pow2", 3), ("pow2", 2)]
    assert rows[0].accuracy == 100.0 and rows[1].accuracy >= 90
    by = {(r.scheme, r.bits): r for r in rows}
    assert by[("asymmetric", 2)].sizes.packed < by[("asymmetric", 3)].sizes.packed < by[("asymmetric", 8)].sizes.packed
    assert all(r.sizes.float32 == rows[0].sizes.float32 for r in rows)
    assert set(rows[1].as_dict()) >= {"scheme", "bits", "accuracy", "packed_bytes", "packed_lzma_bytes"}
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG
    with pytest.raises(TypeError, match="evaluate"):
        A.accuracy_size_table(model, 3.0)


def test_knee_is_the_lowest_width_before_the_drop():
    sizes = A.ModelSizes(1, 1, 1, 1, 1, 1)
    rows = [SweepRow("float32", 32, 90.0, sizes)] + [
        SweepRow("asymmetric", b, a, sizes) for b, a in [(8, 90.1), (6, 89.5), (5, 89.2), (4, 88.0), (3, 89.9), (2, 20)]]
    assert A.knee_bits(rows, "asymmetric", max_drop=1.0) == 5   # 4 bits drops 2 points; 3 is not counted
    assert A.knee_bits(rows, "asymmetric", max_drop=2.0) == 3
    assert A.knee_bits(rows, "asymmetric", max_drop=0.01) == 8
    assert A.knee_bits(rows, "pow2") is None


# ---- bit efficiency ------------------------------------------------------------------------

def test_bit_efficiency_on_a_known_tensor():
    w = torch.linspace(-1, 1, 1000)
    qp = lb.calibrate(w.reshape(1, -1), "symmetric", 2, method="maxabs")   # levels -1, 0, 1
    q = lb.fake_quantize(w.reshape(1, -1), qp)
    r = A.tensor_efficiency(w, q.reshape(-1), 2, lb.quantize(w.reshape(1, -1), qp))
    assert r["range_per_bit"] == pytest.approx(0.5)        # full range, 2 bits
    assert r["density_per_bit"] == pytest.approx(0.75)     # half at 0, a quarter at +-1: 1.5 bits
    assert r["levels_used"] == 3
    assert A.tensor_efficiency(w, w, 8)["sqnr_db"] == math.inf
    assert A.entropy_bits(torch.arange(8)) == pytest.approx(3.0)


def test_bit_efficiency_per_layer(tmp_path):
    model = _mlp()
    rows = {s: A.bit_efficiency(model, lb.ptq(model, s, 4)) for s in ("asymmetric", "pow2")}
    assert [r.name for r in rows["pow2"]] == ["0.weight", "2.weight"]
    for r in rows["asymmetric"]:
        assert r.levels_used <= 16 and 0 < r.density_per_bit <= 1
        assert r.range_per_bit == pytest.approx(0.25, rel=0.05)   # min/max: the whole range
        assert 10 < r.sqnr_db < 40
    plot_bit_efficiency(rows, tmp_path / "be.png")
    assert (tmp_path / "be.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no module"):
        A.bit_efficiency(nn.Linear(2, 2), lb.ptq(model, "pow2", 4))


# ---- distributions -------------------------------------------------------------------------

def test_channel_quartiles_and_histograms(tmp_path):
    t = torch.arange(10.0).reshape(2, 5)
    stats = A.channel_quartiles({"float32": t, "same": t.clone()}, png=tmp_path / "box.png")
    assert [(s.minimum, s.q1, s.median, s.q3, s.maximum, s.mean) for s in stats["float32"]] == [
        (0, 1, 2, 3, 4, 2), (5, 6, 7, 8, 9, 7)]
    hist = A.weight_histograms({"a": t, "b": t * 2}, bins=9, png=tmp_path / "hist.png")
    assert hist["a"].edges == hist["b"].edges and len(hist["a"].edges) == 10
    assert hist["a"].edges[0] == 0 and hist["a"].edges[-1] == 18
    assert sum(hist["a"].counts) == sum(hist["b"].counts) == 10
    for png in ("box.png", "hist.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG
    model = _mlp()
    assert torch.equal(A.layer_tensor(model, "0.weight"), model[0].weight.detach())
    with pytest.raises(ValueError, match="no tensor"):
        A.layer_tensor(model, "conv.weight")
    with pytest.raises(ValueError, match="non-empty"):
        A.weight_histograms({})
    with pytest.raises(ValueError, match="bins"):
        A.weight_histograms({"a": t}, bins=0)


# ---- power-of-two bit-levels ---------------------------------------------------------------

def test_pow2_bit_levels():
    w = torch.tensor([1.0, -0.5, 0.25, 0.125, 0.0, 0.9, -0.13])   # exponents 0..-3
    r = A.tensor_pow2_levels(w)
    assert (r.max_exponent, r.min_exponent, r.exponents) == (0, -3, 4)
    assert r.bit_levels == pytest.approx(1 + math.log2(5)) and r.bits_needed == 4
    # Dropping the smallest exponents: 4 of the 6 nonzero weights have e >= -2.
    assert A.tensor_pow2_levels(w, coverage=0.6).min_exponent == -2
    assert A.tensor_pow2_levels(w, coverage=0.7).min_exponent == -3
    assert A.tensor_pow2_levels(torch.zeros(3)) is None
    with pytest.raises(ValueError, match="coverage"):
        A.tensor_pow2_levels(w, coverage=0)
    # bits_needed is exactly where bounded pow2 stops changing the values.
    model = nn.Linear(30, 8)
    s = A.pow2_bit_levels(model, granularity="tensor")
    need = s.layers[0].bits_needed
    if need <= 8:
        wide = lb.ptq(model, "pow2", 8, granularity="tensor").weight
        assert torch.equal(lb.ptq(model, "pow2", need, granularity="tensor").weight, wide)
    assert s.average_bit_levels == pytest.approx(s.layers[0].bit_levels)


# ---- class grouping ------------------------------------------------------------------------

def _known_cm():
    """6 classes, 100 samples each: 0/1 confuse 20 %, 2/3 10 %, 4 and 5 barely."""
    cm = torch.diag(torch.full((6,), 100))
    for (a, b, n) in [(0, 1, 20), (1, 0, 20), (2, 3, 10), (3, 2, 10), (4, 5, 1)]:
        cm[a, b] += n
        cm[a, a] -= n
    return cm


def test_grouping_on_a_known_confusion_matrix(tmp_path):
    cm = _known_cm()
    s = A.confusion_similarity(cm)
    assert s[0, 1] == pytest.approx(0.2) and s[2, 3] == pytest.approx(0.1)
    assert s[4, 5] == pytest.approx(0.005) and s[0, 0] == 0
    merges = A.linkage(cm)
    assert (merges[0].left, merges[0].right) == ([0], [1]) and merges[0].similarity == pytest.approx(0.2)
    assert (merges[1].left, merges[1].right) == ([2], [3])
    assert A.group_classes(cm, threshold=0.05) == [[0, 1], [2, 3], [4], [5]]
    assert A.group_classes(cm, threshold=0.15) == [[0, 1], [2], [3], [4], [5]]
    assert A.group_classes(cm, max_groups=3) == [[0, 1], [2, 3], [4, 5]]
    assert A.group_classes(cm, max_groups=2) == [[0, 1, 2, 3], [4, 5]]   # a tie: smallest indices
    assert A.group_classes(cm, max_groups=1, max_group_size=2) == [[0, 1], [2, 3], [4, 5]]
    assert len(A.linkage(cm, max_group_size=2)) == 3
    assert A.grouped_accuracy(cm) == pytest.approx(100 * (600 - 61) / 600)
    assert A.grouped_accuracy(cm, [[0, 1], [2, 3]]) == pytest.approx(100 * (600 - 1) / 600)
    assert A.grouped_accuracy(cm, [list(range(6))]) == 100.0
    names = ["cat", "dog", "car", "truck", "ship", "plane"]
    r = A.class_grouping(cm, names, png=tmp_path / "grouping.png")
    assert r.names == ["cat/dog", "car/truck", "ship", "plane"]
    assert r.accuracy_before == pytest.approx(89.8333, abs=1e-3) and r.accuracy_after > r.accuracy_before
    assert (tmp_path / "grouping.png").read_bytes()[:8] == PNG
    fixed = A.class_grouping(cm, groups=[[1, 0]])
    assert fixed.groups == [[0, 1]] and fixed.accuracy_after == pytest.approx(100 * (600 - 21) / 600)


def test_confusion_matrix_of_a_model():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 1.0, 0.0]).expand(len(x), 3)   # always class 1
    y = torch.tensor([0, 1, 1, 2, 2, 2])
    cm = A.confusion_matrix(Constant(), torch.zeros(6, 4), y, batch_size=4)
    assert cm.tolist() == [[0, 1, 0], [0, 2, 0], [0, 3, 0]]


@pytest.mark.parametrize("call,match", [
    (lambda: A.confusion_similarity(torch.ones(2, 3)), "square"),
    (lambda: A.confusion_similarity(-torch.ones(2, 2)), ">= 0"),
    (lambda: A.group_classes(torch.ones(3, 3), threshold=2), "threshold"),
    (lambda: A.group_classes(torch.ones(3, 3), max_groups=0), "max_groups"),
    (lambda: A.linkage(torch.ones(3, 3), max_group_size=0), "max_group_size"),
    (lambda: A.grouped_accuracy(torch.ones(3, 3), [[0, 7]]), "outside"),
    (lambda: A.grouped_accuracy(torch.zeros(3, 3)), "empty"),
    (lambda: A.class_grouping(torch.ones(3, 3), ["a", "b"]), "class_names"),
    (lambda: A.confusion_matrix(nn.Identity(), torch.zeros(3, 2), torch.zeros(2)), "labels"),
])
def test_grouping_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@given(st.integers(2, 7), st.integers(0, 2 ** 16))
def test_linkage_matches_scipy_average_linkage(n, seed):
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    g = torch.Generator().manual_seed(seed)
    cm = torch.rand(n, n, generator=g, dtype=torch.float64) * 100   # continuous: no ties
    s = A.confusion_similarity(cm)
    d = (1 - s).numpy()
    condensed = [d[i, j] for i in range(n) for j in range(i + 1, n)]
    Z = hierarchy.linkage(condensed, method="average")
    ours = A.linkage(cm)
    assert [1 - m.similarity for m in ours] == pytest.approx(list(Z[:, 2]))
    members = {i: [i] for i in range(n)}
    for k, (a, b, _, _) in enumerate(Z):
        joined = sorted(members[int(a)] + members[int(b)])
        members[n + k] = joined
        assert sorted(ours[k].left + ours[k].right) == joined
