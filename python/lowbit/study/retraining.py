"""Step 3: retraining with the straight-through estimator (paper 002) at the low bit
widths, one run per schedule, from the same float model each time.

Every Linear/Conv weight is quantized per output channel, the output layer included (as
PTQ and VBQ do here), biases stay float. The validation split picks the best epoch;
gradual runs through (b+2, b+1, b) with an equal share of the epochs per stage.
The trainings run on `settings.device`; each frozen copy comes back to the CPU, where it
is measured, packed and later converted.

A unit step (see lowbit.study.units): one unit per (bits, schedule), each seeded by
`settings.seed` alone, so the units can run in any order, anywhere.
"""
import time
from typing import List

from .. import schedules
from ..config import QuantConfig
from ..retrain import retrained_copy
from .context import StepContext

NAME = "retrain"
TITLE = "retraining (STE)"
LABELS = {"direct": "direct", "conventional": "retrain conventional", "adaptive": "retrain adaptive",
          "gradual": "retrain gradual", "adaptive-gradual": "retrain adaptive+gradual"}
UNIT_FIELDS = ("retrain_scheme", "epochs", "lr", "batch_size", "train_size", "seed")


def settings_of(s) -> dict:
    return {k: getattr(s, k) for k in ("retrain_bits", "schedules") + UNIT_FIELDS}


def unit_settings(s) -> dict:
    return {k: getattr(s, k) for k in UNIT_FIELDS}


def units(s) -> List[dict]:
    return [{"bits": b, "schedule": name} for b in s.retrain_bits for name in s.schedules]


def run_unit(ctx: StepContext, unit: dict) -> dict:
    s, bits, name = ctx.settings, unit["bits"], unit["schedule"]
    t0 = time.perf_counter()
    sched, epochs, first = schedules.from_name(name, bits, s.epochs)
    # the scheme's retraining step rule (symmetric: the L2-optimal step)
    cfg = QuantConfig(bits=first, scheme=s.retrain_scheme, granularity="channel", quantize_output=True)
    model, history = retrained_copy(ctx.float_model, cfg, sched, ctx.workload.batches(s.batch_size, s.seed),
                                    epochs=epochs, lr=s.lr, evaluate=lambda m: ctx.workload.accuracy(m, "val"),
                                    seed=s.seed, progress=ctx.progress, device=s.device)
    artifact, data = ctx.model_file(model, f"retrain-{name}-{bits}bit.lbq", method="retrain",
                                    schedule=name, bits=bits, scheme=s.retrain_scheme)
    row = ctx.measure(model, method="retrain", variant=name, label=LABELS[name], scheme=s.retrain_scheme,
                      bits=bits, artifact=artifact, epochs=epochs, val_history=history["score"],
                      seconds=time.perf_counter() - t0)
    return {"row": row, "files": {artifact: data}}


def assemble(results: List[dict]) -> dict:
    rows = [r["row"] for r in results]
    return {"rows": rows, "artifacts": [r["artifact"] for r in rows]}
