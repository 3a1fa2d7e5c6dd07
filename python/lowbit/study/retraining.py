"""Step 3: retraining with the straight-through estimator (paper 002) at the low bit
widths, one run per schedule, from the same float model each time.

Every Linear/Conv weight is quantized per output channel, the output layer included (as
PTQ and VBQ do here), biases stay float. The validation split picks the best epoch;
gradual runs through (b+2, b+1, b) with an equal share of the epochs per stage.
"""
import copy
import time

from ..progress import progress_bar

from .. import hooks, schedules
from ..config import QuantConfig
from ..retrain import retrain
from .context import StepContext

NAME = "retrain"
TITLE = "retraining (STE)"
LABELS = {"direct": "direct", "conventional": "retrain conventional", "adaptive": "retrain adaptive",
          "gradual": "retrain gradual", "adaptive-gradual": "retrain adaptive+gradual"}


def settings_of(s) -> dict:
    return {k: getattr(s, k) for k in ("retrain_bits", "retrain_scheme", "schedules", "epochs", "lr",
                                       "batch_size", "train_size", "seed")}


def gradual_stages(bits: int):
    return list(range(min(8, bits + 2), bits - 1, -1))


def make_schedule(name: str, bits: int, epochs: int):
    """(schedule, epochs, first bit width) for a schedule name at target `bits`."""
    if name == "direct":
        return schedules.Direct(), 0, bits
    if name == "conventional":
        return schedules.Conventional(), epochs, bits
    if name == "adaptive":
        return schedules.Adaptive(update="epoch"), epochs, bits
    stages = gradual_stages(bits)
    per_stage = max(1, round(epochs / len(stages)))
    sched = schedules.Gradual(stages, per_stage, adaptive=(name == "adaptive-gradual"))
    return sched, sched.epochs, stages[0]


def run(ctx: StepContext) -> dict:
    import torch
    s = ctx.settings
    grid = [(b, name) for b in s.retrain_bits for name in s.schedules]
    rows = []
    for bits, name in progress_bar(grid, desc=f"{ctx.workload.label}: retraining", disable=not ctx.progress):
        t0 = time.perf_counter()
        torch.manual_seed(s.seed)
        model = copy.deepcopy(ctx.float_model)
        sched, epochs, first = make_schedule(name, bits, s.epochs)
        # the scheme's retraining step rule (symmetric: the L2-optimal step)
        cfg = QuantConfig(bits=first, scheme=s.retrain_scheme, granularity="channel", quantize_output=True)
        hooks.attach(model, cfg)
        history = retrain(model, ctx.workload.batches(s.batch_size, s.seed), sched, epochs=epochs,
                          lr=s.lr, evaluate=lambda m: ctx.workload.accuracy(m, "val"),
                          progress=ctx.progress)
        hooks.freeze(model)
        model.eval()
        artifact = ctx.save_model(model, f"retrain-{name}-{bits}bit.lbq", method="retrain",
                                  schedule=name, bits=bits, scheme=s.retrain_scheme)
        rows.append(ctx.measure(model, method="retrain", variant=name, label=LABELS[name],
                                scheme=s.retrain_scheme, bits=bits, artifact=artifact,
                                epochs=epochs, val_history=history["score"],
                                seconds=time.perf_counter() - t0))
    return {"rows": rows, "artifacts": [r["artifact"] for r in rows]}
