"""Step 5: the chosen result as packed inference modules (bit-shift kernels for power-of-
two weights, look-up tables for any other grid), fused into one native call when the model
is a straight chain (lb.inference.fuse), its real size, and its speed against the float
model, timed alternately in this process with the same thread count.

When the chosen result is not power of two, the best power-of-two result is converted
too, so the report always shows the shift kernels next to the LUT ones.
"""
import torch
from ..progress import progress_bar

from .. import inference, schemes
from ..coverage import coverage
from ..timing import paired_times, torch_threads_as_lowbit
from .context import StepContext, choose_best

NAME = "inference"
TITLE = "packed inference"
BATCH = 64
# The scheme the bit-shift kernels serve: shown beside a chosen model of any other scheme.
SHIFT_SCHEME = next(n for n, s in schemes.SCHEMES.items() if s.kernels[0] == "shift")


def settings_of(s) -> dict:
    return {"timing_images": s.timing_images, "max_drop": s.max_drop}


def time_against_float(packed, float_model, x: torch.Tensor, images: int) -> dict:
    singles = [x[i:i + 1] for i in range(min(images, len(x)))]
    batch = x[:BATCH]

    def one_by_one(m):
        return lambda: [m(xi) for xi in singles]

    with torch.no_grad():
        t1, f1, r1 = paired_times(one_by_one(packed), one_by_one(float_model), repeat=3, warmup=1)
        repeat = max(3, min(30, images // 10))
        t64, f64, r64 = paired_times(lambda: packed(batch), lambda: float_model(batch), repeat=repeat, warmup=1)
    n = len(singles)
    return {"batch1_us": 1e6 * t1 / n, "float_batch1_us": 1e6 * f1 / n, "batch1_speedup": r1,
            "batch64_ms": 1e3 * t64, "float_batch64_ms": 1e3 * f64, "batch64_speedup": r64,
            "batch": len(batch), "images": n}


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
            entry["modules"] = sorted({type(m).__name__ for m in packed.modules()
                                       if type(m).__module__.endswith("inference.modules")})
            entry["packed_bytes"] = inference.model_size(packed)
            packed, why_not = inference.fuse_or_keep(packed)  # one native call per forward if it can
            entry["fused"] = why_not is None
            if why_not:
                entry["fuse_error"] = why_not
            entry["test_accuracy"] = ctx.workload.accuracy(packed, "eval")
            entry.update(time_against_float(packed, float_model, ctx.workload.eval[0], s.timing_images))
            out.append(entry)
    return {"best": best, "models": out, "threads": threads, "artifacts": artifacts}
