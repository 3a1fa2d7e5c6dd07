"""Step 6: why the chosen result works or not: bit efficiency per layer of each PTQ scheme
at the chosen bit width (paper 004, Section III.b), and which classes the chosen model
confuses (confusion matrix grouped by average linkage, paper 004 Table 2)."""
from dataclasses import asdict

from ..analysis import bit_efficiency, class_grouping, confusion_matrix
from ..ptq import ptq
from .context import StepContext

NAME = "analysis"
TITLE = "bit efficiency and class grouping"
GROUP_THRESHOLD = 0.05


def settings_of(s) -> dict:
    return {"ptq_schemes": s.ptq_schemes}


def run(ctx: StepContext) -> dict:
    best = ctx.results.get("inference", {}).get("best")
    if best is None:
        return {"bits": None, "bit_efficiency": {}, "grouping": None}
    bits = best["bits"]
    eff = {}
    for scheme in ctx.settings.ptq_schemes:
        q = ptq(ctx.float_model, scheme, bits)
        eff[f"PTQ {scheme}"] = [asdict(r) for r in bit_efficiency(ctx.float_model, q)]
    chosen = ctx.load(best)
    if best["method"] != "ptq":
        eff[f"chosen: {best['label']}"] = [asdict(r) for r in bit_efficiency(ctx.float_model, chosen)]
    x, y = ctx.workload.eval
    classes = ctx.workload.classes
    cm = confusion_matrix(chosen, x, y, num_classes=len(classes))
    found = class_grouping(cm, classes, threshold=GROUP_THRESHOLD)
    float_cm = confusion_matrix(ctx.float_model, x, y, num_classes=len(classes))
    float_found = class_grouping(float_cm, classes, groups=found.groups)
    return {"bits": bits, "bit_efficiency": eff, "grouping": {
        "model": best["label"], "threshold": GROUP_THRESHOLD, "confusion": cm.tolist(),
        "groups": found.groups, "names": found.names, "accuracy_before": found.accuracy_before,
        "accuracy_after": found.accuracy_after, "float_accuracy_before": float_found.accuracy_before,
        "float_accuracy_after": float_found.accuracy_after}}
