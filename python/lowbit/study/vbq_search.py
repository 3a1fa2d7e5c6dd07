"""Step 4: variable bin-size quantization (paper 003): per-layer simulated annealing on
Eq. 2's (a, b), with top-1 accuracy on calibration images from the training split as the
fitness; 2^b codebook values per layer at b bits.

A unit step (see lowbit.study.units): one unit per bit width, seeded by `settings.seed`."""
import time
from typing import List

from .. import vbq
from .context import StepContext

NAME = "vbq"
TITLE = "VBQ search (SA per layer)"
UNIT_FIELDS = ("vbq_iterations", "calib_size", "seed")


def settings_of(s) -> dict:
    return {k: getattr(s, k) for k in ("vbq_bits",) + UNIT_FIELDS}


def unit_settings(s) -> dict:
    return {k: getattr(s, k) for k in UNIT_FIELDS}


def units(s) -> List[dict]:
    return [{"bits": b} for b in s.vbq_bits]


def run_unit(ctx: StepContext, unit: dict) -> dict:
    s, bits = ctx.settings, unit["bits"]
    t0 = time.perf_counter()
    ev = vbq.ModelEvaluator(ctx.float_model, *ctx.workload.calib, device=s.device)  # fitness on the device
    result, books = vbq.sa_layers(ev, bins=2 ** bits, max_iterations=s.vbq_iterations, seed=s.seed,
                                  progress=ctx.progress)
    q = vbq.apply(ctx.float_model, books, ev.names).eval()
    artifact, data = ctx.model_file(q, f"vbq-sa-{bits}bit.lbq", method="vbq", bits=bits)
    row = ctx.measure(q, method="vbq", variant="sa", label="VBQ-SA", scheme="codebook", bits=bits,
                      artifact=artifact, seconds=time.perf_counter() - t0,
                      calib_accuracy=100.0 * float(result.best_fitness),
                      ab=[list(map(float, ab)) for ab in result.best_state])
    return {"row": row, "files": {artifact: data}, "layers": ev.names}


def assemble(results: List[dict]) -> dict:
    rows = [r["row"] for r in results]
    layers = results[0]["layers"] if results else []
    return {"rows": rows, "layers": layers, "artifacts": [r["artifact"] for r in rows]}
