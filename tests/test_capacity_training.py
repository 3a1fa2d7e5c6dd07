"""train_memorization reports the best accuracy over its epochs (papers 000/001: "the best
accuracy obtained") and leaves the model in that state; the last epoch's accuracy, the
stop reason and the epoch-cap flag come with it, and memorize / capacity_job carry them
into the sweep stores."""
import pytest
import torch

import lowbit.capacity as cap


def _fit(n=160, epochs=60, seed=0, width=8, **kwargs):
    x, y = cap.fcdnn_dataset(n, 10, seed=seed)
    torch.manual_seed(seed)
    model = cap.FCDNN(width, 1, n_in=10)
    return model, x, y, cap.train_memorization(model, x, y, batch_size=16, max_epochs=epochs, seed=seed, **kwargs)


def test_best_accuracy_is_reported_and_kept():
    # a rate this high makes the accuracy jump between epochs: best and last differ
    model, x, y, res = _fit(lr=0.3, momentum=0.9)
    assert res.accuracy == max(a for _, a in res.history)
    assert res.accuracy > res.last_accuracy
    assert res.history[0][0] == 0 and [e for e, _ in res.history] == list(range(res.epochs + 1))
    assert dict(res.history)[res.best_epoch] == res.accuracy
    assert cap.memorization_accuracy(model, x, y) == res.accuracy      # left in the best state
    last_model, x, y, last = _fit(lr=0.3, momentum=0.9, keep_best=False)
    assert cap.memorization_accuracy(last_model, x, y) == last.last_accuracy == res.last_accuracy
    assert last.accuracy == res.accuracy                                 # same seed, same run


def test_stop_reasons_and_the_epoch_cap():
    _, _, _, small = _fit(n=32, epochs=300, width=16, lr=0.05)
    assert small.stop == "memorized" and small.accuracy == 1.0 and not small.hit_cap
    _, _, _, capped = _fit(n=400, epochs=5, lr=0.01)
    assert capped.stop == "max_epochs" and capped.hit_cap and capped.epochs == 5
    _, _, _, plateau = _fit(n=400, epochs=400, lr=0.01, plateau=2, max_decays=1)
    assert plateau.stop == "plateau" and plateau.epochs < 400 and not plateau.hit_cap
    # without the plateau stop the same training runs on (at the lowest rate) to the cap
    _, _, _, longer = _fit(n=400, epochs=400, lr=0.01, plateau=2, max_decays=1, stop_on_plateau=False)
    assert longer.stop in ("max_epochs", "memorized") and longer.epochs > plateau.epochs
    assert longer.accuracy >= plateau.accuracy
    assert longer.history[:plateau.epochs + 1] == plateau.history   # identical up to the stop
    assert set(cap.STOPS) == {"memorized", "plateau", "max_epochs"}


def test_eval_every_thins_the_evaluations():
    _, _, _, res = _fit(n=400, epochs=12, lr=0.01, eval_every=5)
    assert [e for e, _ in res.history] == [0, 5, 10, 12]               # and always the last epoch


def test_bad_arguments():
    x, y = cap.fcdnn_dataset(16, 6, seed=0)
    model = cap.FCDNN(4, 1, n_in=6)
    with pytest.raises(ValueError, match="eval_every must be a positive integer"):
        cap.train_memorization(model, x, y, eval_every=0)
    with pytest.raises(TypeError, match="stop_on_plateau must be True or False"):
        cap.train_memorization(model, x, y, stop_on_plateau="no")
    with pytest.raises(TypeError, match="keep_best must be True or False"):
        cap.train_memorization(model, x, y, keep_best=1)


def test_memorize_records_both_accuracies():
    spec = {"model": "fcdnn", "width": 8, "depth": 1, "n_in": 10}
    job = {"spec": spec, "n": 160, "hparams": {"lr": 0.3, "batch_size": 16}, "seed": 0, "max_epochs": 60}
    best = cap.memorize(job)
    last = cap.memorize({**job, "accuracy": "last"})
    assert best["accuracy"] == best["best_accuracy"] > best["last_accuracy"] == last["accuracy"]
    assert best["mi"] == pytest.approx(cap.mutual_information(best["accuracy"], 160))
    assert last["mi"] == pytest.approx(cap.mutual_information(last["accuracy"], 160))
    assert best["stop"] == "max_epochs" and best["hit_cap"] is True and best["cpu_seconds"] >= 0
    assert "history" not in best
    hist = cap.memorize({**job, "history": True, "max_epochs": 3})["history"]
    assert [e for e, _ in hist] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"job\['accuracy'\] must be one of"):
        cap.memorize({**job, "accuracy": "mean"})


def test_capacity_jobs_name_the_reported_accuracy():
    spec = {"model": "fcdnn", "width": 8, "depth": 1}
    job = cap.capacity_job(spec, 100, {"lr": 0.02}, seed=1, max_epochs=50, eval_every=2)
    assert job == {"spec": spec, "n": 100, "hparams": {"lr": 0.02}, "seed": 1, "max_epochs": 50,
                   "accuracy": "best", "eval_every": 2}
    # a job as measure_capacity wrote it before the change has another key: not reused
    old = {k: job[k] for k in ("spec", "n", "hparams", "seed", "max_epochs")}
    sweep = cap.Sweep("unused.jsonl", progress=False)
    assert sweep.key(cap.memorize, job) != sweep.key(cap.memorize, old)
