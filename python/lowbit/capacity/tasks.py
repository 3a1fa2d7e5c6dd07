"""One memorization trial from a plain, JSON-able description, so that sweeps can ship
trials to dask workers and key their results on disk.

A spec names the network: {"model": "fcdnn", "width": 32, "depth": 2},
{"model": "cnn", "name": "A"} (optionally "input_size"), or
{"model": "lstm", "hidden": 32, "n_in": 32, "n_seq": 5}.
"""
import time
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .datasets import cnn_dataset, fcdnn_dataset, rnn_dataset
from .information import count_parameters, mutual_information
from .models import FCDNN, MemorizationLSTM, cnn_model
from .training import DEFAULT_HPARAMS, train_memorization

MODEL_KINDS = ("fcdnn", "cnn", "lstm")


def _spec_model(spec: Dict) -> str:
    if not isinstance(spec, dict) or spec.get("model") not in MODEL_KINDS:
        raise ValueError(f"spec must be a dict with 'model' in {MODEL_KINDS}, got {spec!r}")
    return spec["model"]


def build(spec: Dict) -> nn.Module:
    """The network a spec names (call after torch.manual_seed for a seeded init)."""
    kind = _spec_model(spec)
    if kind == "fcdnn":
        return FCDNN(spec["width"], spec["depth"], spec.get("n_in"))
    if kind == "cnn":
        return cnn_model(spec["name"], spec.get("input_size", 32))
    return MemorizationLSTM(spec.get("hidden", 32), spec.get("n_in", 32))


def dataset(spec: Dict, n: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """The memorization set that fits the spec's network."""
    kind = _spec_model(spec)
    if kind == "fcdnn":
        return fcdnn_dataset(n, spec.get("n_in") or spec["width"], seed)
    if kind == "cnn":
        return cnn_dataset(n, spec.get("input_size", 32), seed)
    return rnn_dataset(n, spec.get("n_seq", 5), spec.get("n_in", 32), seed)


def spec_name(spec: Dict) -> str:
    """Paper-style label: FCDNN(32)x2, CNN model A, LSTM(32)x1."""
    kind = _spec_model(spec)
    if kind == "fcdnn":
        return f"FCDNN({spec['width']})x{spec['depth']}"
    if kind == "cnn":
        size = spec.get("input_size", 32)
        return f"CNN model {spec['name']}" + ("" if size == 32 else f" ({size}x{size})")
    return f"LSTM({spec.get('hidden', 32)})x1"


# Job fields that set how a training runs, with their defaults (see `memorize`).
TRAINING_OPTIONS = {"max_epochs": 300, "stop_on_plateau": True, "eval_every": 1}
REPORTED = ("best", "last")


def training_options(job: Dict) -> Dict:
    return {k: job.get(k, v) for k, v in TRAINING_OPTIONS.items()}


def trained(spec: Dict, n: int, hparams: Optional[Dict] = None, seed: int = 0,
            max_epochs: int = 300, stop_on_plateau: bool = True, eval_every: int = 1):
    """(model, x, y, TrainResult): a fresh network trained to convergence on N samples,
    left in its best-accuracy state."""
    h = {**DEFAULT_HPARAMS, **(hparams or {})}
    x, y = dataset(spec, n, seed)
    torch.manual_seed(seed)
    model = build(spec)
    result = train_memorization(model, x, y, lr=h["lr"], momentum=h["momentum"], decay=h["decay"],
                                batch_size=int(h["batch_size"]), max_epochs=max_epochs, seed=seed,
                                stop_on_plateau=stop_on_plateau, eval_every=eval_every)
    return model, x, y, result


def result_record(result, n: int, reported: str = "best") -> Dict:
    """The JSON-able fields of a TrainResult that sweeps store; `accuracy` and `mi` are the
    best or the last epoch's (reported), both accuracies are kept."""
    if reported not in REPORTED:
        raise ValueError(f"accuracy must be one of {REPORTED}, got {reported!r}")
    acc = result.accuracy if reported == "best" else result.last_accuracy
    return {"accuracy": acc, "mi": mutual_information(acc, n), "best_accuracy": result.accuracy,
            "last_accuracy": result.last_accuracy, "best_epoch": result.best_epoch,
            "epochs": result.epochs, "stop": result.stop, "hit_cap": result.hit_cap}


def memorize(job: Dict) -> Dict:
    """Run one trial: job = {"spec": ..., "n": N, "hparams": {...}, "seed": s,
    "max_epochs": e, "accuracy": "best" | "last", "stop_on_plateau": bool,
    "eval_every": k, "history": bool} (all but spec and n optional; defaults 300 epochs,
    best accuracy, plateau stop on, every epoch evaluated, no history).
    Returns the reported accuracy and its mutual information, both accuracies, the best
    epoch, epochs run, why it stopped ("hit_cap": the epoch cap ended it), parameters,
    wall and CPU seconds, and with "history" the (epoch, accuracy) evaluations."""
    start, cpu = time.perf_counter(), time.process_time()
    reported = job.get("accuracy", "best")
    if reported not in REPORTED:
        raise ValueError(f"job['accuracy'] must be one of {REPORTED}, got {reported!r}")
    model, _, _, result = trained(job["spec"], job["n"], job.get("hparams"), job.get("seed", 0),
                                  **training_options(job))
    out = {**result_record(result, job["n"], reported), "params": count_parameters(model),
           "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
    if job.get("history", False):
        out["history"] = [list(h) for h in result.history]
    return out


def quantize_job(job: Dict) -> Dict:
    """Train a fresh network on N samples (as `memorize`; its best-accuracy state is what
    gets quantized), then quantize it in sequence with retraining
    (`quantize_under_capacity`). job adds "bits" (default 8..2), "retrain_epochs"
    (default 5), "retrain_lr" (default: a fifth of the training lr) and "keep_direct"
    (default True, see `quantize_under_capacity`).
    Returns {"float_accuracy", "float": the training's record (see `memorize`),
    "records": [...], "threshold": bits or None, "seconds", "cpu_seconds"}."""
    from .quantize import PAPER_BITS, precision_threshold, quantize_under_capacity
    h = {**DEFAULT_HPARAMS, **(job.get("hparams") or {})}
    start, cpu = time.perf_counter(), time.process_time()
    model, x, y, result = trained(job["spec"], job["n"], h, job.get("seed", 0), **training_options(job))
    records = quantize_under_capacity(model, x, y, bits=job.get("bits", PAPER_BITS),
                                      retrain_epochs=job.get("retrain_epochs", 5),
                                      lr=job.get("retrain_lr", h["lr"] / 5), momentum=h["momentum"],
                                      batch_size=int(h["batch_size"]), seed=job.get("seed", 0),
                                      keep_direct=job.get("keep_direct", True))
    return {"float_accuracy": result.accuracy, "epochs": result.epochs,
            "float": result_record(result, job["n"]), "records": records,
            "threshold": precision_threshold(records, job.get("tolerance", 0.01)),
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
