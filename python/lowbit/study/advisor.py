"""Step 7: what the bit-width advisor (papers 000/001) would have predicted without any
training: the weight bits each layer kind needs, from the model's memorization capacity
and the information its training set asks it to store. The report puts it next to the
bits the study measured. Cheap: parameter counts only."""
from dataclasses import asdict

from ..capacity import advise_bits
from .context import StepContext
from .workload import SHIPPED

NAME = "advisor"
TITLE = "bit-width advisor (capacity)"


def settings_of(s) -> dict:
    # The training set's size enters through float_train_size (shipped models) or the
    # workload's fingerprint (a user's model: other data, other weights).
    return {"float_train_size": s.float_train_size}


def training_examples(ctx: StepContext) -> int:
    """The examples the float model learnt from: the shipped recipe's size, else the
    whole training split."""
    n = len(ctx.workload.data.train[1])
    if ctx.settings.float_train_size and ctx.workload.spec.lower() in SHIPPED:
        n = min(n, ctx.settings.float_train_size)
    return n


def run(ctx: StepContext) -> dict:
    n = training_examples(ctx)
    advice = advise_bits(ctx.float_model, n, num_classes=len(ctx.workload.classes))
    return {"n_samples": n, "num_classes": len(ctx.workload.classes), **asdict(advice)}
