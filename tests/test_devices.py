"""Devices: the one check of a device string, retraining / VBQ / capacity / the study on
a chosen device, and the shape-only `meta` device where it fits.

`test_device` (conftest.py) is $LOWBIT_TEST_DEVICE, "cpu" by default: on a GPU machine
`LOWBIT_TEST_DEVICE=cuda pytest tests/test_devices.py tests/test_hooks.py tests/test_schedules.py`
runs the same tests on CUDA, where the ops take lowbit's registered reference path.
"""
import json

import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit.devices import DeviceUnavailableError, check_device, module_device, move_optimizer_state

CUDA_MESSAGE = "cuda requested but torch.cuda.is_available() is False"


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _batches(n=4, size=16):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        x = torch.randn(size, 8, generator=g)
        out.append((x, (x[:, :3].argmax(1)).long()))
    return out


CFG = lb.QuantConfig(bits=3, scheme="symmetric", granularity="channel", quantize_output=True)


# --- the check -----------------------------------------------------------------------------

def test_check_device_accepts_cpu_meta_and_none():
    assert check_device(None) == torch.device("cpu")
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")
    assert check_device(" meta ") == torch.device("meta")


@pytest.mark.parametrize("bad, match", [("tpu", "cpu, cuda, cuda:N or meta"), ("cuda:x", "got 'cuda:x'"),
                                        ("cpu:1", "got 'cpu:1'"), ("", "got ''")])
def test_check_device_names_the_accepted_devices(bad, match):
    with pytest.raises(ValueError, match=match):
        check_device(bad, "device")
    with pytest.raises(TypeError, match="device must be a string"):
        check_device(3)
    with pytest.raises(ValueError, match="cpu, cuda or cuda:N, got 'meta'"):
        check_device("meta", allow_meta=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_on_this_machine_is_one_line():
    for name in ("cuda", "cuda:0", "cuda:1"):
        with pytest.raises(DeviceUnavailableError) as info:
            check_device(name)
        assert str(info.value) == CUDA_MESSAGE


def test_unavailable_cuda_message_when_torch_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as info:         # DeviceUnavailableError is a ValueError
        check_device("cuda")
    assert str(info.value) == CUDA_MESSAGE and isinstance(info.value, DeviceUnavailableError)
    model = _net()
    lb.attach(model, CFG)
    with pytest.raises(DeviceUnavailableError, match="^cuda requested but"):
        lb.retrain(model, _batches(), lb.Adaptive(), epochs=1, progress=False, device="cuda")
    assert module_device(model).type == "cpu"     # nothing moved
    with pytest.raises(DeviceUnavailableError, match="^cuda requested but"):
        lb.retrained_copy(_net(), CFG, lb.Direct(), _batches(), progress=False, device="cuda")
    with pytest.raises(DeviceUnavailableError, match="^cuda requested but"):
        lb.study.StudySettings(device="cuda")


def test_cuda_index_beyond_the_count_names_the_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(DeviceUnavailableError) as info:
        check_device("cuda:2")
    assert str(info.value) == ("cuda:2 requested but torch.cuda.device_count() is 2 "
                               "(valid: cuda:0 to cuda:1)")


# --- meta: shapes only, no data --------------------------------------------------------------

def test_hooked_model_on_meta_runs_the_reference_path_forward_and_backward():
    """Off the CPU every op runs its registered reference: on meta that needs no data."""
    model = _net().to("meta")
    lb.attach(model, CFG)
    assert model[0].weight_q0.device.type == "meta"
    out = model(torch.randn(5, 8, device="meta"))
    assert out.shape == (5, 3) and out.device.type == "meta"
    out.sum().backward()
    assert model[0].weight_float.grad.shape == (16, 8)
    lb.Adaptive("epoch").step(model)        # re-quantizing runs there too
    lb.set_bits(model, 2)
    lb.freeze(model)
    assert model[2].weight.device.type == "meta"


def test_retrain_on_meta_runs_for_a_model_already_there():
    model = _net().to("meta")
    lb.attach(model, CFG)
    history = lb.retrain(model, _batches(2), lb.Gradual(bits=[4, 3]), progress=False, device="meta")
    assert history["bits"] == [[4], [3]] and len(history["loss"]) == 2
    assert all(v != v for v in history["loss"])     # NaN: meta holds no loss value
    assert module_device(model).type == "meta"


def test_retrain_will_not_move_a_model_to_meta():
    """Moving to meta would lose the weights (nothing comes back), so it is refused."""
    model = _net()
    lb.attach(model, CFG)
    before = model[0].weight_float.detach().clone()
    with pytest.raises(ValueError, match="meta"):
        lb.retrain(model, _batches(), lb.Adaptive(), epochs=1, progress=False, device="meta")
    assert torch.equal(model[0].weight_float, before)


def test_optimizer_state_follows_the_model():
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    move_optimizer_state(opt, torch.device("meta"))
    state = next(iter(opt.state.values()))
    assert state["exp_avg"].device.type == "meta" and state["step"].device.type == "cpu"  # step stays a CPU scalar


# --- training on the test device ----------------------------------------------------------

def test_retrain_device_cpu_is_the_same_as_no_device():
    a, ha = lb.retrained_copy(_net(), CFG, lb.Adaptive("epoch"), _batches(), epochs=2, seed=3, progress=False)
    b, hb = lb.retrained_copy(_net(), CFG, lb.Adaptive("epoch"), _batches(), epochs=2, seed=3, progress=False,
                              device="cpu")
    assert ha == hb
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_retrained_copy_on_the_test_device_comes_back_to_the_cpu(test_device, tmp_path):
    float_model = _net()
    data = _batches()
    xv, yv = data[0]
    score = lambda m: lb.models.accuracy(m, xv.to(test_device), yv.to(test_device))  # noqa: E731
    ref, ref_h = lb.retrained_copy(float_model, CFG, lb.Adaptive("epoch"), data, epochs=2, evaluate=score,
                                   seed=3, progress=False, device="cpu") if test_device.type != "cpu" else (None, None)
    model, history = lb.retrained_copy(float_model, CFG, lb.Adaptive("epoch"), data, epochs=2, evaluate=score,
                                       seed=3, progress=False, device=test_device)
    assert module_device(float_model).type == "cpu"
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert all(qp.p0.device.type == "cpu" for qp in lb.recorded_qparams(model).values())
    assert len(history["loss"]) == 2 and len(history["score"]) == 2
    lb.save_quantized(model, tmp_path / "m.lbq")            # saved and converted as it comes back
    lb.inference.convert(model)
    if ref is not None:                                      # CUDA: the CPU's result up to rounding
        for (name, t), r in zip(model.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(t, r, rtol=1e-3, atol=1e-3, msg=name)


def test_retrain_moves_a_hooked_model_and_its_history_back(test_device):
    model = _net()
    lb.attach(model, CFG)
    lb.retrain(model, _batches(), lb.Adaptive("epoch"), epochs=2, progress=False, device=test_device)
    assert module_device(model).type == "cpu"
    steps = lb.step_history(model)["0.weight"]
    assert len(steps) == 1 + 1 + 2 and all(s.device.type == "cpu" for s in steps)


def test_vbq_evaluator_on_the_test_device(test_device):
    model = _net()
    x, y = _batches(1, 64)[0]
    cpu = lb.vbq.ModelEvaluator(model, x, y)
    dev = lb.vbq.ModelEvaluator(model, x, y, device=test_device)
    assert all(w.device.type == "cpu" for w in dev.float_weights)
    books = [lb.vbq.lloyd_max(w, 4) for w in cpu.float_weights]
    assert dev.accuracy(books) == pytest.approx(cpu.accuracy(books), abs=1 / 64)
    assert dev.accuracy_with(1, books[1], [None, None]) == pytest.approx(
        cpu.accuracy_with(1, books[1], [None, None]), abs=1 / 64)
    assert module_device(model).type == "cpu"


def test_capacity_training_on_the_test_device(test_device):
    cap = lb.capacity
    job = {"spec": {"model": "fcdnn", "width": 6, "depth": 1}, "n": 32, "seed": 2, "max_epochs": 5}
    plain = cap.memorize(job)
    on = cap.measure.memorize_on_device({**job, "device": str(test_device)})
    keys = ("accuracy", "mi", "params", "epochs")
    if test_device.type == "cpu":    # the device job is the same training, exactly
        assert {k: on[k] for k in keys} == {k: plain[k] for k in keys}
    else:
        assert on["params"] == plain["params"] and abs(on["accuracy"] - plain["accuracy"]) <= 2 / 32
    x, y = cap.dataset(job["spec"], 32, 2)
    torch.manual_seed(0)
    model = cap.build(job["spec"])
    result = cap.train_memorization(model, x, y, max_epochs=2, device=test_device)
    assert module_device(model) == test_device and 0 <= result.accuracy <= 1
    assert cap.memorization_accuracy(model, x, y) == result.accuracy   # CPU data, moved to the model


def test_measure_capacity_keeps_cpu_jobs_as_they_were(tmp_path, monkeypatch):
    """device="cpu" sends the same `memorize` jobs (same store keys) as before; another
    device sends `memorize_on_device` jobs that name it."""
    sent = []

    class FakeSweep(lb.capacity.Sweep):
        def map(self, fn, jobs, desc="sweep"):
            sent.append((fn.__name__, list(jobs)))
            return [{"accuracy": 1.0} for _ in jobs]

    sweep = FakeSweep(tmp_path / "runs.jsonl", progress=False)
    spec = {"model": "fcdnn", "width": 4, "depth": 1}
    lb.capacity.measure_capacity(spec, sweep, max_epochs=2, fine_points=1, grid_points=0, trials=0, device="cpu")
    assert {name for name, _ in sent} == {"memorize"} and all("device" not in j for _, js in sent for j in js)
    sent.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    lb.capacity.measure_capacity(spec, sweep, max_epochs=2, fine_points=1, grid_points=0, trials=0, device="cuda")
    assert {name for name, _ in sent} == {"memorize_on_device"}
    assert all(j["device"] == "cuda" for _, js in sent for j in js)


# --- the study ------------------------------------------------------------------------------

def test_study_device_is_checked_and_in_no_cache_key(monkeypatch):
    S = lb.study.StudySettings
    assert S().device == "cpu" and S.quick().device == "cpu" and S().as_dict()["device"] == "cpu"
    with pytest.raises(ValueError, match="device \\(--device\\) must be cpu, cuda or cuda:N"):
        S(device="meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = S(device="cuda")
    for step in lb.study.STEPS:
        assert step.settings_of(gpu) == step.settings_of(S()), step.NAME


def test_small_study_on_the_test_device_reuses_and_matches_the_cpu_study(tmp_path, monkeypatch, test_device):
    from test_study import run_user_study
    index, settings = run_user_study(tmp_path, monkeypatch, "cpu")
    cpu = json.loads((tmp_path / "cpu" / "study.json").read_text())["models"]["model"]
    # the same folder on the test device: every step is reused (device is in no key)
    lb.study.run_study(["usercode:model"], data="usercode:data", out=tmp_path / "cpu",
                       settings=settings.replace(device=str(test_device)), progress=False)
    again = json.loads((tmp_path / "cpu" / "study.json").read_text())
    assert again["settings"]["device"] == str(test_device)
    assert set(again["models"]["model"]["cached_steps"]) == set(cpu["steps"])
    # a fresh folder on the test device: the same results up to float rounding
    lb.study.run_study(["usercode:model"], data="usercode:data", out=tmp_path / "dev",
                       settings=settings.replace(device=str(test_device)), progress=False)
    dev = json.loads((tmp_path / "dev" / "study.json").read_text())["models"]["model"]["steps"]
    for step in ("ptq", "retrain", "vbq"):
        for a, b in zip(cpu["steps"][step]["rows"], dev[step]["rows"]):
            assert (a["label"], a["bits"]) == (b["label"], b["bits"])
            tol = 0 if test_device.type == "cpu" else 2.0    # accuracy points
            assert abs(a["test_accuracy"] - b["test_accuracy"]) <= tol, (step, a["label"], a["bits"])
    assert dev["baseline"]["test_accuracy"] == pytest.approx(cpu["steps"]["baseline"]["test_accuracy"])
    assert (tmp_path / "dev" / "model" / "best.lbq").is_file()     # packed on the CPU
    assert "Timed on the CPU" in (tmp_path / "dev" / "report.md").read_text()
