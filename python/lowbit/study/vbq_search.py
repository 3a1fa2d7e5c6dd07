"""Step 4: variable bin-size quantization (paper 003): per-layer simulated annealing on
Eq. 2's (a, b), with top-1 accuracy on calibration images from the training split as the
fitness; 2^b codebook values per layer at b bits."""
import time

from .. import vbq
from ..progress import progress_bar
from .context import StepContext

NAME = "vbq"
TITLE = "VBQ search (SA per layer)"


def settings_of(s) -> dict:
    return {k: getattr(s, k) for k in ("vbq_bits", "vbq_iterations", "calib_size", "seed")}


def run(ctx: StepContext) -> dict:
    s = ctx.settings
    rows = []
    ev = vbq.ModelEvaluator(ctx.float_model, *ctx.workload.calib, device=s.device)  # fitness on the device
    for bits in progress_bar(s.vbq_bits, desc=f"{ctx.workload.label}: VBQ-SA", disable=not ctx.progress):
        t0 = time.perf_counter()
        result, books = vbq.sa_layers(ev, bins=2 ** bits, max_iterations=s.vbq_iterations, seed=s.seed,
                                      progress=ctx.progress)
        q = vbq.apply(ctx.float_model, books, ev.names).eval()
        artifact = ctx.save_model(q, f"vbq-sa-{bits}bit.lbq", method="vbq", bits=bits)
        rows.append(ctx.measure(q, method="vbq", variant="sa", label="VBQ-SA", scheme="codebook",
                                bits=bits, artifact=artifact, seconds=time.perf_counter() - t0,
                                calib_accuracy=100.0 * float(result.best_fitness),
                                ab=[list(map(float, ab)) for ab in result.best_state]))
    return {"rows": rows, "layers": ev.names, "artifacts": [r["artifact"] for r in rows]}
