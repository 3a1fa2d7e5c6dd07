"""Schedules move step sizes only when they should; retrain drives them."""
import pytest
import torch
from torch import nn

import lowbit as lb


def _model(device="cpu"):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)).to(device)


def _data(n=256, device="cpu"):
    x = torch.randn(n, 10)
    y = (x[:, :3].sum(1) > 0).long()
    return x.to(device), y.to(device)


def _epoch(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for idx in torch.arange(len(x)).split(32):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def _steps(model):
    return {k: v[-1].clone() for k, v in lb.step_history(model).items()}


def _run(schedule, epochs, device="cpu"):
    model = _model(device)
    x, y = _data(device=device)
    lb.attach(model, bits=3)
    schedule.start(model)
    steps = [_steps(model)]
    for _ in range(epochs):
        _epoch(model, x, y)
        schedule.step(model)
        steps.append(_steps(model))
    return model, steps


def _changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_conventional_keeps_the_step_fixed():
    _, steps = _run(lb.Conventional(), 3)
    assert not any(_changed(steps[0], s) for s in steps[1:])


def test_adaptive_epoch_updates_every_epoch(test_device):   # $LOWBIT_TEST_DEVICE, conftest.py
    model, steps = _run(lb.Adaptive("epoch"), 3, test_device)
    assert all(_changed(a, b) for a, b in zip(steps, steps[1:]))
    assert len(lb.step_history(model)["0.weight"]) == 1 + 1 + 3  # attach, start, 3 epochs


def test_adaptive_first_freezes_after_k_epochs():
    _, steps = _run(lb.Adaptive("first", first_epochs=2), 4)
    assert _changed(steps[0], steps[1]) and _changed(steps[1], steps[2])
    assert not _changed(steps[2], steps[3]) and not _changed(steps[3], steps[4])


def test_gradual_walks_down_the_bits(test_device):
    model = _model(test_device)
    x, y = _data(device=test_device)
    lb.attach(model, bits=8)
    sched = lb.Gradual(bits=[6, 4, 2], epochs_per_stage=2)
    sched.start(model)
    seen = []
    for _ in range(sched.epochs):
        seen.append({t.config.bits for t in lb.targets(model)}.pop())
        _epoch(model, x, y)
        sched.step(model)
    assert seen == [6, 6, 4, 4, 2, 2]
    assert lb.quantized_weights(model)["0.weight"].unique().numel() <= 3


def test_adaptive_gradual_updates_within_a_stage():
    model = _model()
    x, y = _data()
    lb.attach(model, bits=8)
    sched = lb.AdaptiveGradual(bits=[4, 3], epochs_per_stage=2)
    sched.start(model)
    before = _steps(model)
    _epoch(model, x, y)
    sched.step(model)  # inside the 4-bit stage: adaptive update
    assert _changed(before, _steps(model))
    assert {t.config.bits for t in lb.targets(model)} == {4}


def test_direct_quantizes_without_training():
    model = _model()
    lb.attach(model, bits=3)
    history = lb.retrain(model, [], lb.Direct(), evaluate=lambda m: 1.0, progress=False)
    assert history["loss"] == [] and history["score"] == [1.0]


def test_conventional_search_picks_the_best_factor():
    model = _model()
    x, y = _data()
    lb.attach(model, bits=2)
    target = model[0].weight_q0.clone() * 2  # a score that prefers doubling layer 0's step
    score = lambda m: -float((m[0].weight_q0 - target).abs().sum())  # noqa: E731
    lb.Conventional(search=score, factors=5).start(model)
    torch.testing.assert_close(model[0].weight_q0, target)


def test_retrain_improves_and_stops_early(test_device):
    """On $LOWBIT_TEST_DEVICE via device=: CPU model and batches, the training there, the
    model back on the CPU afterwards."""
    model = _model()
    x, y = _data(512)
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 512, 64)]
    lb.attach(model, bits=2)
    xs, ys = x.to(test_device), y.to(test_device)
    acc = lambda m: float((m(xs).argmax(1) == ys).float().mean())  # noqa: E731  (m is on the device)
    start = float((model(x).argmax(1) == y).float().mean())
    history = lb.retrain(model, batches, lb.Adaptive(), epochs=30, lr=1e-2, evaluate=acc,
                         patience=3, progress=False, device=test_device)
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert max(history["score"]) > start
    assert len(history["loss"]) <= 30
    best = float((model(x).argmax(1) == y).float().mean())
    assert best == pytest.approx(max(history["score"]))  # the best state is restored


def test_retrain_gradual_restores_only_final_precision_states(test_device):
    model = _model(test_device)
    x, y = _data(device=test_device)
    lb.attach(model, bits=8)
    batches = [(x, y)]
    history = lb.retrain(model, batches, lb.Gradual(bits=[6, 2]), evaluate=lambda m: 1.0,
                         progress=False)
    assert history["best_epoch"] == 1 and history["bits"] == [[6], [2]]
    assert {t.config.bits for t in lb.targets(model)} == {2}


def test_schedule_errors():
    with pytest.raises(ValueError, match="update must be"):
        lb.Adaptive("batch")
    with pytest.raises(ValueError, match="bits must be"):
        lb.Gradual(bits=[6, 1])
    with pytest.raises(ValueError, match="epochs must be given"):
        model = _model()
        lb.attach(model, bits=3)
        lb.retrain(model, [], lb.Adaptive())
    with pytest.raises(ValueError, match="no lowbit hooks"):
        lb.retrain(_model(), [], lb.Direct())
