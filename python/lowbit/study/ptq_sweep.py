"""Step 2: data-free post-training quantization (paper 004) of every layer, per output
channel, for each scheme over the bit widths; no data but the evaluation."""
from .. import schemes
from ..progress import progress_bar
from ..ptq import ptq
from .context import StepContext

NAME = "ptq"
TITLE = "data-free PTQ sweep"


def settings_of(s) -> dict:
    return {"bits": s.ptq_bits, "schemes": s.ptq_schemes}


def run(ctx: StepContext) -> dict:
    s = ctx.settings
    grid = [(scheme, b) for scheme in s.ptq_schemes for b in s.ptq_bits]
    rows = []
    for scheme, bits in progress_bar(grid, desc=f"{ctx.workload.label}: PTQ sweep", disable=not ctx.progress):
        q = ptq(ctx.float_model, scheme, bits)
        label = f"PTQ {schemes.get(scheme).label}"
        rows.append(ctx.measure(q, method="ptq", variant=scheme, label=label, scheme=scheme,
                                bits=bits))
    return {"rows": rows}
