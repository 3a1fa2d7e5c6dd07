"""Step 3: retraining with the straight-through estimator (paper 002) at the low bit
widths, one run per schedule, from the same float model each time.

Every Linear/Conv weight is quantized per output channel, the output layer included (as
PTQ and VBQ do here), biases stay float. The validation split picks the best epoch;
gradual runs through (b+2, b+1, b) with an equal share of the epochs per stage.
The trainings run on `settings.device`; each frozen copy comes back to the CPU, where it
is measured, saved and later converted.
"""
import time

from .. import schedules
from ..config import QuantConfig
from ..progress import progress_bar
from ..retrain import retrained_copy
from .context import StepContext

NAME = "retrain"
TITLE = "retraining (STE)"
LABELS = {"direct": "direct", "conventional": "retrain conventional", "adaptive": "retrain adaptive",
          "gradual": "retrain gradual", "adaptive-gradual": "retrain adaptive+gradual"}


def settings_of(s) -> dict:
    return {k: getattr(s, k) for k in ("retrain_bits", "retrain_scheme", "schedules", "epochs", "lr",
                                       "batch_size", "train_size", "seed")}


def run(ctx: StepContext) -> dict:
    s = ctx.settings
    grid = [(b, name) for b in s.retrain_bits for name in s.schedules]
    rows = []
    for bits, name in progress_bar(grid, desc=f"{ctx.workload.label}: retraining", disable=not ctx.progress):
        t0 = time.perf_counter()
        sched, epochs, first = schedules.from_name(name, bits, s.epochs)
        # the scheme's retraining step rule (symmetric: the L2-optimal step)
        cfg = QuantConfig(bits=first, scheme=s.retrain_scheme, granularity="channel", quantize_output=True)
        model, history = retrained_copy(ctx.float_model, cfg, sched, ctx.workload.batches(s.batch_size, s.seed),
                                        epochs=epochs, lr=s.lr, evaluate=lambda m: ctx.workload.accuracy(m, "val"),
                                        seed=s.seed, progress=ctx.progress, device=s.device)
        artifact = ctx.save_model(model, f"retrain-{name}-{bits}bit.lbq", method="retrain",
                                  schedule=name, bits=bits, scheme=s.retrain_scheme)
        rows.append(ctx.measure(model, method="retrain", variant=name, label=LABELS[name],
                                scheme=s.retrain_scheme, bits=bits, artifact=artifact,
                                epochs=epochs, val_history=history["score"],
                                seconds=time.perf_counter() - t0))
    return {"rows": rows, "artifacts": [r["artifact"] for r in rows]}
