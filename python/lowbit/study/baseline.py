"""Step 1: the float model's accuracy and size, the yardstick for everything else."""
from .context import StepContext

NAME = "baseline"
TITLE = "float baseline"


def settings_of(s) -> dict:
    return {}


def run(ctx: StepContext) -> dict:
    wl = ctx.workload
    model = ctx.float_model
    return {
        "spec": wl.spec, "data": wl.data.name, "classes": wl.classes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "float32_bytes": ctx.float32_bytes,
        "split_sizes": {"train": len(wl.train[1]), "calib": len(wl.calib[1]),
                        "val": len(wl.val[1]), "eval": len(wl.eval[1])},
        **wl.scores(model),
    }
