"""The public training helpers the CLI and the study share: schedules by name, seeded
batches, one retraining recipe, paired timing against float."""
import pytest
import torch
from torch import nn

import lowbit as lb
from lowbit.data import ShuffledBatches
from lowbit.retrain import retrained_copy
from lowbit.schedules import SCHEDULES, from_name
from lowbit.timing import time_against_float


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_name_builds_its_schedule(name):
    sched, epochs, first = from_name(name, 3, 4)
    assert isinstance(sched, lb.Schedule)
    assert (epochs == 0) == (name == "direct")
    assert first >= 3 and (first > 3) == ("gradual" in name)


@pytest.mark.parametrize("args,match", [(("slow", 3, 2), "schedule must be one of"),
                                        (("adaptive", 9, 2), "bits must be"), (("adaptive", 3, 0), "epochs")])
def test_schedule_names_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        from_name(*args)


def test_shuffled_batches_cover_every_example_in_a_seeded_order():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    a, b = ShuffledBatches(x, y, 4, seed=1), ShuffledBatches(x, y, 4, seed=1)
    first = [yb.tolist() for _, yb in a]
    assert first == [yb.tolist() for _, yb in b] and len(a) == 3
    assert sorted(sum(first, [])) == list(range(10))
    assert [yb.tolist() for _, yb in a] != first           # a new order every epoch


def test_retrained_copy_leaves_the_float_model_and_returns_a_frozen_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    q, history = retrained_copy(model, lb.QuantConfig(bits=3), lb.Adaptive(), ShuffledBatches(x, y, 16, 0),
                                epochs=2, lr=0.01, seed=0, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not q.training and ("0", "weight") in lb.recorded_qparams(q)
    assert len(q[0].weight.unique()) <= 7


def test_time_against_float_reports_both_batch_sizes():
    model = nn.Sequential(nn.Linear(4, 3))
    t = time_against_float(model, model, torch.randn(8, 4), images=3, batch_size=4)
    assert t["images"] == 3 and t["batch"] == 4
    assert t["batch1_speedup"] > 0 and t["batch64_speedup"] > 0
