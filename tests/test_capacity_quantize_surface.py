"""Quantization under capacity (paper's per-layer / per-kernel / per-matrix steps, output
layer and biases float), the precision threshold, filter-normalized loss surfaces and the
bit-width advisor."""
import pytest
import torch

import lowbit as lb
import lowbit.capacity as cap


def test_paper_quantizers_per_family():
    fc = lb.attach(cap.FCDNN(8, 2), cap.paper_config(cap.FCDNN(8, 2), 6))
    assert [(t.name, t.config.granularity) for t in fc.targets] == [
        ("hidden.fc1.weight", "tensor"), ("hidden.fc2.weight", "tensor")]
    cnn = cap.cnn_model("A")
    st = lb.attach(cnn, cap.paper_config(cnn))
    assert {t.config.granularity for t in st.targets} == {"channel"} and len(st.targets) == 3
    lstm = cap.MemorizationLSTM(8, 4)
    st = lb.attach(lstm, cap.paper_config(lstm))
    assert sorted(t.param for t in st.targets) == ["weight_hh_l0", "weight_ih_l0"]  # two steps


def _memorized_fcdnn():
    """A 16-unit FCDNN trained to memorize 64 random samples, and the samples."""
    torch.manual_seed(0)
    x, y = cap.fcdnn_dataset(64, 8, seed=0)
    model = cap.FCDNN(16, 1, n_in=8)
    cap.train_memorization(model, x, y, lr=0.05, max_epochs=150)
    return model, x, y


def test_quantize_under_capacity_records_and_threshold():
    model, x, y = _memorized_fcdnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    records = cap.quantize_under_capacity(model, x, y, bits=(8, 4, 2), retrain_epochs=2)
    assert [r["bits"] for r in records] == [None, 8, 4, 2]
    assert all(0 <= r["accuracy"] <= 1 for r in records)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # a copy was used
    # 8-bit quantization of a 16-unit layer barely perturbs it
    assert records[1]["accuracy_direct"] >= records[0]["accuracy"] - 0.05
    synthetic = [{"bits": None, "accuracy": 0.99}] + [
        {"bits": b, "accuracy": a} for b, a in ((8, 0.99), (6, 0.985), (5, 0.95), (4, 0.99), (3, 0.7))]
    assert cap.precision_threshold(synthetic, tolerance=0.01) == 6   # 5 bits drops, 4 does not count
    assert cap.precision_threshold(synthetic[:1] + [{"bits": 8, "accuracy": 0.5}]) is None
    with pytest.raises(ValueError, match="bits must decrease"):
        cap.quantize_under_capacity(model, x, y, bits=(4, 6))
    with pytest.raises(ValueError, match=r"bits must be a non-empty list of widths in \[2, 8\]"):
        cap.quantize_under_capacity(model, x, y, bits=(10, 8))


def test_retraining_that_hurts_is_not_kept():
    model, x, y = _memorized_fcdnn()
    # a learning rate this large wrecks whatever the network had stored
    wrecked = cap.quantize_under_capacity(model, x, y, bits=(8, 6), retrain_epochs=1, lr=50.0,
                                          keep_direct=False)
    assert wrecked[1]["accuracy"] < wrecked[1]["accuracy_direct"]
    kept = cap.quantize_under_capacity(model, x, y, bits=(8, 6), retrain_epochs=1, lr=50.0)
    assert kept[1]["accuracy"] == kept[1]["accuracy_direct"] == wrecked[1]["accuracy_direct"]
    # 6 bits then starts from the kept 8-bit weights, not the wrecked ones
    assert kept[2]["accuracy_direct"] > wrecked[2]["accuracy_direct"]


def test_retraining_that_diverges_is_undone_and_said():
    model, x, y = _memorized_fcdnn()
    # a learning rate this large turns the weights infinite within the first epoch
    records = cap.quantize_under_capacity(model, x, y, bits=(8, 6), retrain_epochs=2, lr=1e30,
                                          keep_direct=False)
    assert [r["diverged"] for r in records] == [False, True, True]
    assert all(r["accuracy"] == r["accuracy_direct"] for r in records[1:])
    calm = cap.quantize_under_capacity(model, x, y, bits=(8, 6), retrain_epochs=2)
    assert not any(r["diverged"] for r in calm)
    assert records[1]["accuracy_direct"] == calm[1]["accuracy_direct"]
    step = cap.epoch_fn(x, y, 16, check_finite=True)
    lb.attach(model, bits=4)
    with pytest.raises(cap.TrainingDiverged, match="left a weight NaN or infinite"):
        step(model, torch.optim.SGD(model.parameters(), lr=1e30))


def test_noise_is_filter_normalized():
    model = cap.cnn_model("A")
    d = cap.filter_normalized_direction(model, seed=3)
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            assert torch.count_nonzero(d[name]) == 0      # biases get no noise (Li et al.)
            continue
        w = p.detach().reshape(p.shape[0], -1).norm(dim=1)
        v = d[name].reshape(p.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(v, w)                  # every filter: the weight's norm
    again = cap.filter_normalized_direction(model, seed=3)
    assert all(torch.equal(d[k], again[k]) for k in d)
    # the scale follows the weights: doubling a layer doubles its noise
    with torch.no_grad():
        model.features.conv1_1.weight.mul_(2)
    d2 = cap.filter_normalized_direction(model, seed=3)
    torch.testing.assert_close(d2["features.conv1_1.weight"], 2 * d["features.conv1_1.weight"])


def test_loss_surface_of_float_and_quantized_models(tmp_path):
    torch.manual_seed(0)
    x, y = cap.fcdnn_dataset(64, 8, seed=1)
    model = cap.FCDNN(16, 1, n_in=8)
    cap.train_memorization(model, x, y, lr=0.05, max_epochs=100)
    s = cap.loss_surface(model, x, y, alphas=[-0.5, 0.0, 0.5], draws=3, seed=0)
    plain = torch.nn.functional.cross_entropy(model(x), y).item()
    assert s["loss"][1] == pytest.approx(plain, rel=1e-5)   # alpha = 0 is the model itself
    assert s["loss"][0] > s["loss"][1] and s["loss"][2] > s["loss"][1]
    q = cap.FCDNN(16, 1, n_in=8)
    q.load_state_dict(model.state_dict())
    lb.attach(q, cap.paper_config(q, 2))
    sq = cap.loss_surface(q, x, y, alphas=[0.0], draws=2)
    frozen = lb.freeze(q)
    assert sq["loss"][0] == pytest.approx(torch.nn.functional.cross_entropy(frozen(x), y).item(), rel=1e-5)
    png = cap.plot_loss_surfaces({"float": s}, tmp_path / "s.png", test={"float": s})
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        cap.loss_surface(model, x, y, [0.0], draws=0)


def test_advisor_follows_capacity_utilization():
    model = cap.FCDNN(64, 2)                        # 12,610 parameters -> ~29,000 bits
    params = cap.count_parameters(model)
    full = cap.advise_bits(model, n_samples=int(2.3 * params * 1.2))
    half = cap.advise_bits(model, n_samples=int(2.3 * params * 0.4))
    mid = cap.advise_bits(model, n_samples=int(2.3 * params * 0.75))
    assert full.bits == {"fc": 6} and half.bits == {"fc": 4} and mid.bits == {"fc": 5}
    assert full.layers[-1]["bits"] == "float" and full.layers[0]["bits"] == 6
    assert "paper 001" in "\n".join(full.evidence) and "capacity utilization" in str(full)
    measured = cap.advise_bits(model, 100, evidence={"fc": {"half_bits": 3}})
    assert measured.bits == {"fc": 3} and "[measured]" in measured.evidence[0]
    lstm = cap.advise_bits(cap.MemorizationLSTM(), 32000)
    assert lstm.bits == {"rnn": 10}                 # the paper's LSTM at capacity
    with pytest.raises(ValueError, match="evidence keys"):
        cap.advise_bits(model, 10, evidence={"gru": {}})
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        cap.advise_bits(model, 0)
