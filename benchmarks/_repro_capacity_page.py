"""repro_capacity.md and its CSVs and figures, from the steps' results."""
import datetime
import json
import shlex
import statistics
from pathlib import Path
from typing import Dict, List

import _repro_capacity_plots as plots
from _repro_capacity_claims import capacity_claims, quant_claims, surface_claims
from _repro_capacity_plan import PAPER_CNN_CONV, PAPER_FCDNN_MEAN, PAPER_FCDNN_RANGE, PAPER_LSTM, PAPER_THRESHOLD
from _repro_capacity_summary import capacity_rows, drop_rows, long_rows, surface_widths, training_rows
from _repro_capacity_text import differences, protocol
from _repro_report import atomic_write, machine, md_table, rows_to_csv

import lowbit.capacity as cap

PREFIX = "repro_capacity"
DASH = "–"


def _v(value, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return DASH
    return f"{100 * value:.{digits}f} %" if pct else f"{value:.{digits}f}"


def _pm(mean, std, digits: int = 2) -> str:
    if mean is None:
        return DASH
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _escaped(rows: List[Dict]) -> List[Dict]:
    """A '|' inside a cell would split it: escape it for Markdown."""
    return [{k: v.replace("|", "\\|") if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def _table(rows: List[Dict]) -> str:
    return md_table(_escaped(rows)) if rows else f"{DASH}: this step has not run yet."


def _paper_capacity(row: Dict) -> str:
    if row["family"] == "fcdnn":
        return f"{PAPER_FCDNN_RANGE[0]}-{PAPER_FCDNN_RANGE[1]} (mean {PAPER_FCDNN_MEAN})"
    if row["family"] == "cnn":
        name = row["model"].split()[-1] if row["model"].startswith("CNN model") else ""
        return f"{PAPER_CNN_CONV[name]} per conv param" if name in PAPER_CNN_CONV else "3.0 per conv param"
    return f"{PAPER_LSTM['bits']}" + ("" if row["model"] == f"LSTM({PAPER_LSTM['hidden']})x1" else " (LSTM(32))")


def capacity_section(rows: List[Dict]) -> List[str]:
    table = []
    for r in rows:
        done = r["status"] == "done"
        counted = f"{r['trainings']} ({r['hit_cap']})"
        table.append({
            "network": r["model"],
            "params (conv)": f"{r['params']:,}" + (f" ({r['conv_params']:,})" if r["conv_params"] else ""),
            "seeds": r["seeds"] if done else DASH, "N* (seed 0)": r["n_star"] or DASH,
            "p at N*": _v(r["accuracy"], 2, pct=True), "bits/param": _pm(r["bits_per_param"], r["bits_std"]),
            "bits/conv param": _pm(r["conv_bits_per_param"], r["conv_bits_std"]) if r["conv_params"] else "",
            "paper": _paper_capacity(r), "bits/param, last epoch": _v(r["last_epoch_bits_per_param"]),
            "trainings (hit cap)": counted if done else (f"{counted} so far, unfinished" if r["trainings"] else DASH)})
    hit = sum(r["hit_cap"] for r in rows)
    total = sum(r["trainings"] for r in rows)
    return [_table(table), "",
            "A network marked unfinished shows the best of its trainings so far (seed 0); the claims "
            "use finished networks only. "
            f"{hit} of {total} trainings ended at their epoch cap. The last-epoch column scores the same "
            "trainings by their last epoch's accuracy instead of the best; every training's best and last "
            f"accuracy, epochs and stop reason are in `{PREFIX}_trainings.csv`, per-seed values in "
            f"`{PREFIX}_capacity.csv`.", "",
            f"![bits per parameter]({PREFIX}_bits.png)", "", f"![curves]({PREFIX}_curves.png)"]


def long_section(rows: List[Dict]) -> List[str]:
    table = []
    for r in rows:
        done = r["status"] == "done"
        later = "" if not done else ", ".join(f"{100 * r['best_at'][e]:.2f} % at {e}" for e in sorted(r["best_at"])
                                              if e != r["cap"])
        table.append({
            "network": r["model"], "N": r["n"] if r.get("n") is not None else DASH,
            "search training (cap)": DASH if not done else
            f"{100 * r['search_accuracy']:.2f} % ({r['search_stop']} at {r['search_epochs']} of {r['cap']})",
            "best by the cap": _v(r.get("at_cap"), 2, pct=True), "later (epochs)": later or DASH,
            "bits/param: cap -> end": DASH if not done else f"{r['bits_at_cap']:.2f} -> {r['bits_at_end']:.2f}",
            "gain, last half": DASH if not done else f"{100 * r['gain_last_half']:+.2f} points",
            "still rising": DASH if not done else ("yes" if r["rising"] else "no")})
    return [_table(table), "", f"![long budget]({PREFIX}_long.png)"]


def quant_section(drops: List[Dict], bits) -> List[str]:
    table = []
    for d in drops:
        done = d["status"] == "done"
        row = {"network": d["model"], "capacity": d["regime"], "N": d["n"] if d.get("n") else DASH,
               "float": _v(d.get("float_accuracy"), 1, pct=True)}
        for b in bits:
            row[f"{b}-bit"] = _v(d["accuracies"][b], 1, pct=True) if done else DASH
        row["threshold"] = (DASH if not done else "none (drops at 8)" if d["threshold"] is None
                            else f"{d['threshold']} bits")
        row["paper"] = f"{PAPER_THRESHOLD[d['family']]} bits" if d["regime"] == "full" else ""
        table.append(row)
    return [_table(table), "", f"![quantization]({PREFIX}_quantization.png)"]


def surface_section(widths: List[Dict]) -> List[str]:
    if not widths:
        return [f"{DASH}: no finished unit yet.", "", f"![surface]({PREFIX}_surface.png)"]
    table = [{"model": w["model"], "data": w["data"], "loss at 0": _v(w["loss_at_0"], 3),
              "accuracy at 0": _v(w["accuracy_at_0"], 1, pct=True),
              "loss rise at alpha ±0.5": _v(w["rise_at_0.5"], 3),
              "loss rise at alpha ±1": _v(w["rise_at_1"], 3),
              "accuracy at alpha 1": _v(w["accuracy_at_1"], 1, pct=True)}
             for w in widths]
    return [md_table(table), "", f"![surface]({PREFIX}_surface.png)"]


def unit_costs(store) -> List[Dict]:
    """Mean CPU seconds per unit, by unit kind and network (all stored units)."""
    groups: Dict[tuple, List[Dict]] = {}
    for key, res in store.items():
        k = json.loads(key)
        fn, job = k["fn"].rsplit(".", 1)[-1], k["job"]
        name = cap.spec_name(job["spec"]) if "spec" in job else "LeNet-5"
        groups.setdefault((fn, name), []).append(res)
    rows = []
    for (fn, name), rs in sorted(groups.items()):
        cpu = [r.get("cpu_seconds", r.get("seconds", 0.0)) for r in rs]
        epochs = [r.get("epochs") or r.get("float", {}).get("epochs") for r in rs]
        epochs = [e for e in epochs if e]
        rows.append({"unit": fn, "network": name, "units": len(rs), "CPU s each (mean)": f"{statistics.fmean(cpu):.0f}",
                     "CPU s in all": f"{sum(cpu):.0f}",
                     "epochs (mean)": f"{statistics.fmean(epochs):.0f}" if epochs else ""})
    return rows


def _csv(path: Path, rows: List[Dict]) -> None:
    """The CSV of rows; with none, no file (an older one would not match the store)."""
    if rows:
        atomic_write(path, rows_to_csv(rows))
    elif path.exists():
        path.unlink()


def write(out: Path, plan, results, long, quant, surface_rows, store, meta: Dict) -> Path:
    cap_rows = capacity_rows(results)
    longs = long_rows(long)
    drops = drop_rows(quant)
    widths = surface_widths(surface_rows)
    claims = capacity_claims(cap_rows, longs) + quant_claims(drops) + surface_claims(widths)

    plots.curves(results, out / f"{PREFIX}_curves.png")
    plots.bits_vs_params(cap_rows, out / f"{PREFIX}_bits.png")
    plots.long_curves(long, out / f"{PREFIX}_long.png")
    plots.quantization(drops, plan.bits, out / f"{PREFIX}_quantization.png")
    plots.surfaces(surface_rows, plan.surface["draws"], out / f"{PREFIX}_surface.png")

    _csv(out / f"{PREFIX}_capacity.csv", cap_rows)
    _csv(out / f"{PREFIX}_claims.csv", claims)
    _csv(out / f"{PREFIX}_trainings.csv", training_rows(results))
    _csv(out / f"{PREFIX}_long.csv", [{k: v for k, v in r.items() if k != "best_at"} for r in longs])
    quant_csv = [{"model": d["model"], "regime": d["regime"], "n": d["n"], "status": d["status"],
                  "float_accuracy": d.get("float_accuracy"), "threshold": d.get("threshold"),
                  **{f"acc_{b}": (d["accuracies"][b] if d["status"] == "done" else None) for b in plan.bits}}
                 for d in drops]
    _csv(out / f"{PREFIX}_quantization.csv", quant_csv)
    _csv(out / f"{PREFIX}_surface.csv", surface_rows or [])

    units = [v for _, v in store.items()]
    cpu = sum(u.get("cpu_seconds", u.get("seconds", 0.0)) for u in units)
    cmd = " ".join(["OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/repro_capacity.py"]
                   + [shlex.quote(a) for a in meta["argv"] if a != "--report-only"])
    head = [
        "# Papers 000/001: memorization capacity under quantization", "",
        "Boo, Shin, Sung, \"Memorization capacity of deep neural networks under parameter quantization\" "
        "(000) and its long version \"Capacity of deep neural networks under parameter quantization\" (001).", "",
        f"- Command (from the repository root): `{cmd}`",
        f"- Date: {datetime.date.today().isoformat()}; machine: {machine()}; {meta['workers']} dask worker(s), "
        "one torch thread each",
        f"- {len(units)} units in `{meta['store']}`, {cpu / 3600:.2f} CPU hours; the full run is planned at "
        f"{meta['estimate']}. A cell shown as {DASH} has no finished units yet: the same command resumes the "
        "run where it stopped, and `--report-only` rewrites this page from the store.",
    ]
    if meta.get("quick"):
        head.append("- `--quick`: tiny networks and budgets, a smoke test of the script; its numbers say "
                    "nothing about the papers.")
    md = head + ["", "## Claims and verdicts", "",
                 md_table(_escaped(claims), ["where", "claim", "paper", "ours", "verdict"]), "",
                 "## Protocol", ""] + protocol(plan) + [
        "", "## What differs from the paper", ""] + differences(plan) + [
        "", "## Capacity", ""] + capacity_section(cap_rows) + [
        "", "## Long budget: does the accuracy still rise?", "",
        "Each network's best N of seed 0, trained again with several times the epoch cap and no plateau "
        "stop. 'Search training' is the capacity step's training at the same point.", ""] + long_section(longs) + [
        "", "## Quantization under capacity", ""] + quant_section(drops, plan.bits) + [
        "", "## Loss surfaces (Fashion-MNIST LeNet-5)", ""] + surface_section(widths) + [
        "", "## Unit costs", "",
        "CPU seconds per unit as measured in this run's store (one torch thread per unit). On 2 cores "
        "with 2 workers the wall time is about half the CPU time, plus the waits of searches whose "
        "batches finish unevenly.", "", md_table(unit_costs(store)) if units else f"{DASH}: no units yet.", ""]
    page = out / f"{PREFIX}.md"
    atomic_write(page, "\n".join(md) + "\n")
    return page
