"""Step 5: the chosen result as packed inference modules (bit-shift kernels for power-of-
two weights, look-up tables for any other grid), fused into one native call when the model
is a straight chain (lb.inference.fuse), its real size, and its speed against the float
model, timed alternately in this process with the same thread count.

When the chosen result is not power of two, the best power-of-two result is converted
too, so the report always shows the shift kernels next to the LUT ones.

Everything here runs on the CPU whatever `settings.device` is: packed inference is CPU
deployment (the native kernels), and the timing measures exactly that.
"""
from .. import inference, schemes
from ..coverage import coverage
from ..progress import progress_bar
from ..timing import time_against_float, torch_threads_as_lowbit
from .context import StepContext, choose_best

NAME = "inference"
TITLE = "packed inference"
# The scheme the bit-shift kernels serve: shown beside a chosen model of any other scheme.
SHIFT_SCHEME = next(n for n, s in schemes.SCHEMES.items() if s.kernels[0] == "shift")


def settings_of(s) -> dict:
    return {"timing_images": s.timing_images, "max_drop": s.max_drop}


def run(ctx: StepContext) -> dict:
    s = ctx.settings
    base = ctx.results["baseline"]
    rows = ctx.rows()
    best = choose_best(rows, base["val_accuracy"], s.max_drop)
    if best is None:
        return {"best": None, "models": [], "note": "no quantized result to convert"}
    picks = [("chosen", best, "auto")]
    if best["scheme"] != SHIFT_SCHEME:
        shift = choose_best(rows, base["val_accuracy"], s.max_drop, scheme=SHIFT_SCHEME)
        if shift is not None:
            picks.append(("best power of two", shift, "shift"))
    float_model = ctx.float_model.eval()
    float_bytes = inference.model_size(float_model)
    out, artifacts = [], []
    with torch_threads_as_lowbit() as threads:  # the float baseline gets the same threads as lowbit
        for role, row, mode in progress_bar(picks, desc=f"{ctx.workload.label}: packed inference",
                                    disable=not ctx.progress):
            q = ctx.load(row)
            entry = {"role": role, "label": row["label"], "bits": row["bits"], "scheme": row["scheme"],
                     "mode": mode, "fake_quant_test_accuracy": row["test_accuracy"],
                     "float_bytes": float_bytes}
            if role == "chosen":
                rel = ctx.save_model(q, "best.lbq", under=None, method=row["method"], variant=row["variant"],
                                     bits=row["bits"], scheme=row["scheme"])
                entry["file"] = rel
                entry["file_bytes"] = (ctx.root / rel).stat().st_size
                entry["coverage"] = coverage(q, mode=mode).as_dicts()   # every parameter, and why float
                artifacts.append(rel)
            try:
                packed = inference.convert(q, mode=mode)
            except ValueError as exc:        # e.g. a user model without Linear/Conv2d layers
                entry["error"] = str(exc)
                out.append(entry)
                continue
            # lowbit's packed modules (inference.modules, int_modules, attention, embedding)
            entry["modules"] = sorted({type(m).__name__ for m in packed.modules()
                                       if type(m).__module__.startswith(inference.__name__ + ".")})
            entry["packed_bytes"] = inference.model_size(packed)
            packed, why_not = inference.fuse_or_keep(packed)  # one native call per forward if it can
            entry["fused"] = why_not is None
            if why_not:
                entry["fuse_error"] = why_not
            entry["test_accuracy"] = ctx.workload.accuracy(packed, "eval")
            entry.update(time_against_float(packed, float_model, ctx.workload.eval[0], s.timing_images))
            out.append(entry)
    return {"best": best, "models": out, "threads": threads, "artifacts": artifacts}
