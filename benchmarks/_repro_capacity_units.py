"""The units of repro_capacity.py that are not plain `lowbit.capacity` jobs (a long
retraining with its accuracy curve, a loss-surface measurement), and the store-only
sweep that --report-only uses. The job functions run on dask workers: they take and
return JSON-able dicts."""
import copy
import time
from typing import Any, Callable, Dict, List, Sequence

import lowbit.capacity as cap

MAX_CURVE_POINTS = 400   # a long run's stored accuracy curve is thinned to about this many


class Missing(Exception):
    """Some units of a step are not in the store (--report-only runs nothing)."""

    def __init__(self, missing: int, total: int):
        super().__init__(f"{missing} of {total} unit(s) not in the store")
        self.missing, self.total = missing, total


class StoreOnly(cap.Sweep):
    """A Sweep that only reads: `map` returns the stored results, or raises Missing when
    any job has none. Nothing is trained and no cluster starts."""

    def map(self, fn: Callable, jobs: Sequence[Any], desc: str = "sweep", args: tuple = (),
            retries: int = 0, keep_going: bool = False) -> List[Any]:
        keys = [self.key(fn, job) for job in jobs]
        absent = sum(k not in self.store for k in keys)
        if absent:
            raise Missing(absent, len(keys))
        return [self.store.get(k) for k in keys]


def best_by_epoch(history: Sequence[Sequence[float]], epochs: Sequence[int]) -> Dict[str, float]:
    """The best accuracy evaluated at or before each of `epochs` ({str(epoch): accuracy})."""
    out = {}
    for e in epochs:
        seen = [a for ep, a in history if ep <= e]
        out[str(e)] = max(seen) if seen else None
    return out


def thin(history: Sequence[Sequence[float]], points: int = MAX_CURVE_POINTS) -> List[List[float]]:
    """Every k-th evaluation (k so that about `points` remain), each new best, and the last."""
    stride = max(1, len(history) // points)
    out, best = [], -1.0
    for i, (epoch, acc) in enumerate(history):
        if i % stride == 0 or acc > best or i == len(history) - 1:
            out.append([epoch, acc])
        best = max(best, acc)
    return out


def long_job(job: Dict) -> Dict:
    """A `memorize` job with the plateau stop off and its accuracy curve kept: job adds
    "checkpoints", the epochs at which the best accuracy so far is reported (the
    capacity phase's cap and its multiples)."""
    inner = {k: v for k, v in job.items() if k != "checkpoints"}
    out = cap.memorize({**inner, "history": True})
    history = out.pop("history")
    out["best_at"] = best_by_epoch(history, job["checkpoints"])
    out["curve"] = thin(history)
    return out


def surface_job(job: Dict) -> Dict:
    """Paper 001's loss surfaces (Fig. 5) on Fashion-MNIST: LeNet-5 in float and retrained
    (one epoch on job["retrain"] images) at each of job["bits"], L(theta + alpha d) along
    filter-normalized directions on job["train"] training and test images. Returns one
    row per (model, data, alpha)."""
    import torch

    import lowbit as lb
    start, cpu = time.perf_counter(), time.process_time()
    kwargs = {"epochs": job["lenet_epochs"], "progress": False}
    if job["lenet_train"] is not None:
        kwargs.update(train_size=job["lenet_train"])
    if job.get("cache"):
        kwargs["cache"] = job["cache"]
    model = lb.models.pretrained("lenet5", **kwargs)
    x_tr, y_tr = lb.data.load_fashion_mnist("train", normalize=True, limit=max(job["train"], job["retrain"]))
    x_te, y_te = lb.data.load_fashion_mnist("test", normalize=True, limit=job["train"])
    retrain_x, retrain_y = x_tr[:job["retrain"]], y_tr[:job["retrain"]]
    alphas = torch.linspace(-1, 1, job["alphas"]).tolist()
    x_s, y_s = x_tr[:job["train"]], y_tr[:job["train"]]
    rows = []
    for bits in job["bits"]:
        label = "float" if bits is None else f"{bits}-bit"
        m = model
        if bits is not None:
            m = copy.deepcopy(model)
            lb.attach(m, bits=bits, granularity="channel", step="l2")
            lb.retrain(m, cap.epoch_fn(retrain_x, retrain_y, 64, 0), lb.Gradual([bits], 1),
                       optimizer=torch.optim.SGD(m.parameters(), lr=0.005, momentum=0.9), progress=False)
        for split, (xs, ys) in (("train", (x_s, y_s)), ("test", (x_te, y_te))):
            s = cap.loss_surface(m, xs, ys, alphas, draws=job["draws"], seed=0)
            for a, l, acc in zip(s["alpha"], s["loss"], s["accuracy"]):
                rows.append({"model": label, "data": split, "alpha": a, "loss": l, "accuracy": acc})
    return {"rows": rows, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
