"""What a study report says: the answer per model and its tables, from study.json."""
from typing import Dict, List, Optional

from ..study.context import ACCURACY_STEPS, choose_best, knees
from .tables import Table

KIB = 1024.0


def accuracy_rows(steps: Dict) -> List[dict]:
    return [r for s in ACCURACY_STEPS for r in steps.get(s, {}).get("rows", [])]


def answer(label: str, steps: Dict, max_drop: float) -> Dict:
    """The report's headline for one model (None fields where a step was skipped)."""
    base = steps["baseline"]
    best = steps.get("inference", {}).get("best") or choose_best(
        accuracy_rows(steps), base["val_accuracy"], max_drop)
    out = {"model": label, "float_accuracy": base["test_accuracy"], "float_kib": base["float32_bytes"] / KIB,
           "bits": None, "method": None, "accuracy": None, "drop": None, "packed_kib": None,
           "smaller": None, "within_max_drop": None, "mode": None, "batch1_speedup": None,
           "batch64_speedup": None}
    if best is None:
        return out
    out.update(bits=best["bits"], method=best["label"], accuracy=best["test_accuracy"],
               drop=base["test_accuracy"] - best["test_accuracy"], packed_kib=best["packed_bytes"] / KIB,
               smaller=best["float32_bytes"] / best["packed_bytes"], within_max_drop=best["within_max_drop"])
    for m in steps.get("inference", {}).get("models", []):
        if m["role"] == "chosen" and "batch1_speedup" in m:
            out.update(mode=", ".join(m["modules"]), batch1_speedup=m["batch1_speedup"],
                       batch64_speedup=m["batch64_speedup"])
    return out


def sentence(a: Dict, max_drop: float) -> str:
    if a["bits"] is None:
        return f"{a['model']}: float {a['float_accuracy']:.2f} %; no quantized result (steps skipped)."
    verdict = (f"takes **{a['bits']} bits** with {a['method']}" if a["within_max_drop"] else
               f"loses more than {max_drop:g} points at every width tried; the most accurate result is "
               f"{a['bits']} bits with {a['method']}")
    text = (f"{a['model']} {verdict}: {a['accuracy']:.2f} % against {a['float_accuracy']:.2f} % in float "
            f"({-a['drop']:+.2f} points), {a['packed_kib']:.1f} KiB packed instead of "
            f"{a['float_kib']:.1f} KiB ({a['smaller']:.1f}x smaller)")
    if a["batch1_speedup"] is not None:
        text += (f"; packed inference ({a['mode']}) runs {a['batch1_speedup']:.2f}x the float speed at "
                 f"batch 1 and {a['batch64_speedup']:.2f}x at batch 64")
    return text + "."


def summary_table(answers: List[Dict], max_drop: float) -> Table:
    cols = ["model", "float acc %", "bits", "method", "acc %", "drop (points)", "packed KiB",
            "x smaller", f"within {max_drop:g} points", "inference modules", "batch-1 speedup",
            "batch-64 speedup"]
    keys = ["model", "float_accuracy", "bits", "method", "accuracy", "drop", "packed_kib", "smaller",
            "within_max_drop", "mode", "batch1_speedup", "batch64_speedup"]
    return Table("summary", "Summary: fewest bits within the accuracy budget", cols,
                 [[a[k] for k in keys] for a in answers])


def results_table(label: str, steps: Dict) -> Table:
    base = steps["baseline"]
    rows = [["float32", "", 32, base["val_accuracy"], base["test_accuracy"], 0.0,
             base["float32_bytes"] / KIB, 1.0, None]]
    for r in sorted(accuracy_rows(steps), key=lambda r: (-r["bits"], r["method"], r["variant"])):
        rows.append([r["label"], r["scheme"], r["bits"], r["val_accuracy"], r["test_accuracy"],
                     base["test_accuracy"] - r["test_accuracy"], r["packed_bytes"] / KIB,
                     r["float32_bytes"] / r["packed_bytes"], r["packed_lzma_bytes"] / KIB])
    return Table(f"{label}/results", f"{label}: every result", [
        "method", "scheme", "bits", "val acc %", "test acc %", "drop (points)", "packed KiB",
        "x smaller", "packed+LZMA KiB"], rows,
        note="val: the split that chooses (and stops retraining); test: the split quoted. Sizes are "
             "real bytes of lowbit's packed file; LZMA compresses that file further.")


def knee_table(label: str, steps: Dict, max_drop: float) -> Table:
    base = steps["baseline"]
    found = knees(accuracy_rows(steps), base["test_accuracy"], max_drop)
    rows = [[k, v if v is not None else "none"] for k, v in found.items()]
    return Table(f"{label}/knees", f"{label}: knee per method", ["method", "knee (bits)"], rows,
                 note=f"The lowest bit width whose test accuracy, and that of every wider one tried, "
                      f"stays within {max_drop:g} points of float (paper 004's knee).")


def inference_table(label: str, steps: Dict) -> Optional[Table]:
    inf = steps.get("inference")
    if not inf or not inf.get("models"):
        return None
    rows = []
    for m in inf["models"]:
        if "error" in m:
            rows.append([m["role"], m["label"], m["bits"], m["mode"], "not converted: " + m["error"]]
                        + [None] * 7)
            continue
        modules = ", ".join(m["modules"]) + (" (fused)" if m.get("fused") else "")
        rows.append([m["role"], m["label"], m["bits"], m["mode"], modules,
                     m["test_accuracy"], m["packed_bytes"] / KIB, m["float_bytes"] / KIB,
                     m["batch1_us"], m["float_batch1_us"], m["batch1_speedup"], m["batch64_speedup"]])
    return Table(f"{label}/inference", f"{label}: packed inference against float", [
        "role", "result", "bits", "mode", "modules", "test acc %", "packed KiB", "float KiB",
        "batch-1 us/image", "float us/image", "batch-1 speedup", "batch-64 speedup"], rows,
        note=f"Timed on the CPU (the deployment it measures), whatever device the study's trainings "
             f"used, alternately with the float model in the same process, {inf.get('threads')} threads "
             "for both; speedup = float time / packed time (median of pairs). Shift modules quantize "
             "activations to 8 bits, so their accuracy can differ slightly from fake quantization.")


def coverage_table(label: str, steps: Dict) -> Optional[Table]:
    """Every parameter of the chosen model: quantized (and the kernel it runs on) or float, and why."""
    chosen = next((m for m in (steps.get("inference") or {}).get("models", [])
                   if m["role"] == "chosen" and m.get("coverage")), None)
    if chosen is None:
        return None
    rows = [[r["name"], r["kind"], r["numel"],
             f"{r['scheme']} {r['bits']} bits {r['granularity']}" if r["quantized"] else "float",
             r["kernel"], r["reason"]] for r in chosen["coverage"]]
    total = sum(r["numel"] for r in chosen["coverage"]) or 1
    share = sum(r["numel"] for r in chosen["coverage"] if r["quantized"]) / total
    return Table(f"{label}/coverage", f"{label}: what the chosen model quantizes ({chosen['label']})",
                 ["parameter", "kind", "values", "quantizer", "packed kernel", "why float"], rows,
                 note=f"{100 * share:.1f} % of the parameter values are quantized; lb.coverage(model) "
                      "gives this table for any model.")


def bit_efficiency_table(label: str, steps: Dict) -> Optional[Table]:
    an = steps.get("analysis")
    if not an or not an.get("bit_efficiency"):
        return None
    rows = [[what, r["name"], r["scheme"], r["bits"], r["range_per_bit"], r["density_per_bit"],
             r["levels_used"], r["sqnr_db"]] for what, layers in an["bit_efficiency"].items() for r in layers]
    return Table(f"{label}/bit_efficiency", f"{label}: bit efficiency at {an['bits']} bits", [
        "quantization", "tensor", "scheme", "bits", "range per bit", "density per bit", "levels used",
        "SQNR dB"], rows,
        note="range per bit: share of the float range the levels span, per bit; density per bit: "
             "entropy of the codes per bit (1 = every code equally used).")


def grouping_table(label: str, steps: Dict) -> Optional[Table]:
    g = (steps.get("analysis") or {}).get("grouping")
    if not g:
        return None
    rows = [[name, len(members)] for name, members in zip(g["names"], g["groups"]) if len(members) > 1]
    rows.append(["accuracy before / after grouping (chosen model)",
                 f"{g['accuracy_before']:.2f} / {g['accuracy_after']:.2f}"])
    rows.append(["the same groups on the float model",
                 f"{g['float_accuracy_before']:.2f} / {g['float_accuracy_after']:.2f}"])
    return Table(f"{label}/grouping", f"{label}: classes the chosen model confuses", ["group", "classes"],
                 rows, note=f"Average-linkage clustering of the confusion matrix of {g['model']}, "
                            f"merging while the confusion similarity is at least {g['threshold']}.")


def failures(steps: Dict) -> List[dict]:
    """The units that failed twice (see lowbit.study.units), each with its step's name."""
    return [{"step": name, **f} for name, step in steps.items() for f in (step or {}).get("failures", [])]


def failures_table(label: str, steps: Dict) -> Optional[Table]:
    found = failures(steps)
    if not found:
        return None
    rows = [[f["step"], ", ".join(f"{k}={v}" for k, v in f["unit"].items()), f["attempts"], f["error"]]
            for f in found]
    return Table(f"{label}/failures", f"{label}: units that failed", ["step", "unit", "attempts", "error"], rows,
                 note="Each was tried twice; the other units finished and the results above leave these out. "
                      "Rerunning the same command tries them again (finished units are kept); study.json "
                      "holds each traceback.")


def step_times_table(label: str, model: Dict) -> Table:
    rows = [[step, sec, "cached" if step in model.get("cached_steps", []) else "run"]
            for step, sec in model.get("seconds", {}).items()]
    return Table(f"{label}/steps", f"{label}: steps", ["step", "seconds (when computed)", "this run"], rows)


def _fewest_within(rows: List[dict], base: Dict, max_drop: float, method: Optional[str] = None):
    """Fewest bits whose best result (of `method`, or any) stays within max_drop of float on
    the validation split, as (bits, label); None when none does."""
    rows = [r for r in rows if method is None or r["method"] == method]
    best = choose_best(rows, base["val_accuracy"], max_drop)
    return (best["bits"], best["label"]) if best and best["within_max_drop"] else None


def _verdict(advised: Dict[str, int], measured) -> str:
    if measured is None:
        return "No measured width stayed within the budget, so the advice cannot be checked here."
    lo, hi = min(advised.values()), max(advised.values())
    if measured[0] < lo:
        return (f"Measured {measured[0]} bits, fewer than advised: the advice is the memorization worst "
                "case, a generalization task needs less.")
    if measured[0] > hi:
        return f"Measured {measured[0]} bits, more than advised: this model needs more than its capacity suggests."
    return f"Measured {measured[0]} bits, within the advised range."


def advisor_table(label: str, steps: Dict, max_drop: float) -> Optional[Table]:
    """The capacity advisor's bits per layer kind beside the bits the study measured."""
    adv = steps.get("advisor")
    if not adv:
        return None
    rows = accuracy_rows(steps)
    measured = _fewest_within(rows, steps["baseline"], max_drop)
    ptq_only = _fewest_within(rows, steps["baseline"], max_drop, "ptq")
    show = lambda m: f"{m[0]} ({m[1]})" if m else "none within budget"  # noqa: E731
    out = []
    for kind, bits in adv["bits"].items():
        layers = [l for l in adv["layers"] if l["kind"] == kind and l["bits"] != "float"]
        out.append([kind, len(layers), sum(l["weights"] for l in layers), bits, show(measured), show(ptq_only)])
    outputs = [l for l in adv["layers"] if l["bits"] == "float"]
    if outputs:
        out.append([f"output ({outputs[0]['kind']})", len(outputs), sum(l["weights"] for l in outputs),
                    "float", "quantized too", ""])
    note = (f"Advisor (papers 000/001, no training): {adv['n_samples']} training examples x "
            f"log2({adv['num_classes']}) = {adv['demand_bits']:.0f} bits to store against a capacity of "
            f"{adv['capacity_bits']:.0f} bits, utilization {adv['utilization']:.3f}. "
            + "; ".join(e.rstrip(".") for e in adv["evidence"]) + ". "
            f"The study's columns: the fewest bits whose validation accuracy stays within {max_drop:g} "
            "points of float, every layer (the output too) at that width. " + _verdict(adv["bits"], measured))
    return Table(f"{label}/advisor", f"{label}: bit-width advisor against the measured answer",
                 ["layer kind", "layers", "quantized weights", "advised bits", "study: fewest bits (method)",
                  "study, PTQ only"], out, note=note)
