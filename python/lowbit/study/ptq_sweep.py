"""Step 2: data-free post-training quantization (paper 004) of every layer, per output
channel, for each scheme over the bit widths; no data but the evaluation.

A unit step (see lowbit.study.units): one unit per (scheme, bits)."""
from typing import List

from .. import schemes
from ..ptq import ptq
from .context import StepContext

NAME = "ptq"
TITLE = "data-free PTQ sweep"


def settings_of(s) -> dict:
    return {"bits": s.ptq_bits, "schemes": s.ptq_schemes}


def unit_settings(s) -> dict:
    return {}       # PTQ is data-free: the weights and the evaluation splits (the fingerprint) are all


def units(s) -> List[dict]:
    return [{"scheme": scheme, "bits": b} for scheme in s.ptq_schemes for b in s.ptq_bits]


def run_unit(ctx: StepContext, unit: dict) -> dict:
    scheme, bits = unit["scheme"], unit["bits"]
    q = ptq(ctx.float_model, scheme, bits)
    label = f"PTQ {schemes.get(scheme).label}"
    return {"row": ctx.measure(q, method="ptq", variant=scheme, label=label, scheme=scheme, bits=bits)}


def assemble(results: List[dict]) -> dict:
    return {"rows": [r["row"] for r in results]}
