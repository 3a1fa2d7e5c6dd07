"""Reproduction of paper 002's Tables 1-4 and Fig. 2 (Shin, Boo, Sung 2017, "Fixed-point
optimization of deep neural networks with adaptive step size retraining"), following the
paper's training protocol at sizes that fit a 2-core machine.

    .venv/bin/python benchmarks/repro_002.py [--tables 1 2 3 4] [--seeds 5] [--workers 2]
                                             [--quick] [--out DIR]

Every float model is trained to convergence with the paper's rule and every quantized
variant is retrained from a copy of it with the same rule (see _repro_train.py). Each
training unit is one dask job; its result is appended to <out>/repro_002_runs.jsonl the
moment it finishes and float weights are cached under <out>/cache/, so running the same
command again resumes where an interrupted run stopped. Writes <out>/repro_002.md (the
page: the paper's number beside ours, a verdict per claim), repro_002_table{1..4}.csv,
repro_002_comparisons.csv, repro_002_steps.csv and repro_002_fig2.png.
"""
import argparse
import datetime
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _repro_paper as paper  # noqa: E402
import _repro_train as T  # noqa: E402
from _repro_report import (atomic_write, cell, comparison_md, draw_fig2, machine, mean,  # noqa: E402
                           paired_rows, pivot, pooled, row_label, rows_to_csv, to_csv)
from _repro_train import ImagePlan, TextPlan, job  # noqa: E402
from _stats import paired_t  # noqa: E402
from _timing import set_threads  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
STORE = "repro_002_runs.jsonl"
BARELY = 1.0       # % : an adaptive step that moves less than this "barely moves"
MIN_GAP = 1.0      # points: the loss of 2-bit Conventional against float the issue asks for


@dataclass(frozen=True)
class Plan:
    ffdnn: ImagePlan
    widths: Sequence[int]         # Table 1 (both BN settings)
    paper_widths: Sequence[int]   # the paper's widths set beside ours, in the same order
    t1_bits: Sequence[int]
    depth: int
    t2_width: int                 # Table 2's network (paper: 512, no BN)
    fig2_width: int               # Fig. 2's network (paper: 256, no BN)
    cnn: ImagePlan
    cnns: Dict[str, dict]         # Table 3: paper label -> network
    t3_bits: Sequence[int]
    text: TextPlan
    lstm_sizes: Sequence[int]
    t4_bits: Sequence[int]


# The full run, sized from measured unit costs on this 2-core machine (see the page).
FULL = Plan(
    ffdnn=ImagePlan(n_train=25000, n_val=5000, n_test=None, batch_size=256,
                    float_lr=0.1, retrain_lr=0.025, lr_floor=0.1 / 64),
    widths=(16, 32, 64), paper_widths=(64, 128, 256), t1_bits=(2, 3, 4), depth=2, t2_width=32, fig2_width=32,
    # The paper's CNN rates: 2e-2 down to 3.125e-4, retraining from 5e-4.
    cnn=ImagePlan(n_train=10000, n_val=5000, n_test=None, batch_size=128,
                  float_lr=2e-2, retrain_lr=5e-4, lr_floor=3.125e-4),
    cnns={"L": {"kind": "lenet5"}, "C": {"kind": "vgg", "width": 8}},
    t3_bits=(2, 3),
    text=TextPlan(max_chars=100_000, batch_size=64, seq_len=50, eval_batch_size=32,
                  eval_seq_len=100, embed=32, layers=1,
                  float_lr=1e-2, retrain_lr=2.5e-3, lr_floor=1e-2 / 32),
    lstm_sizes=(64, 128), t4_bits=(2, 3),
)

QUICK = Plan(
    ffdnn=ImagePlan(n_train=1000, n_val=500, n_test=1000, batch_size=100, float_lr=0.1,
                    retrain_lr=0.025, lr_floor=0.025, patience=1, max_epochs=3),
    widths=(32,), paper_widths=(64,), t1_bits=(2,), depth=2, t2_width=32, fig2_width=32,
    cnn=ImagePlan(n_train=300, n_val=200, n_test=300, batch_size=100, float_lr=5e-2,
                  retrain_lr=5e-4, lr_floor=5e-4, patience=1, max_epochs=2),
    cnns={"L": {"kind": "lenet5"}},
    t3_bits=(2,),
    text=TextPlan(max_chars=8_000, batch_size=16, seq_len=16, eval_batch_size=4,
                  eval_seq_len=32, embed=16, layers=1, float_lr=1e-2, retrain_lr=2.5e-3,
                  lr_floor=2.5e-3, patience=1, max_epochs=2),
    lstm_sizes=(32,), t4_bits=(2,),
)

# Method names in the jobs; the tables call the paper's adaptive variant of each table
# "Adaptive" (epoch-level for the FFDNNs, '1 epoch update & fix' for CNNs and LSTMs).
CONV, SEARCH, DIRECT = "Conventional", "Conventional + search", "Direct"
EPOCH, FIRST = "Adaptive (epoch)", "Adaptive (1 epoch & fix)"
GRADUAL, ADAPTIVE_GRADUAL = "Gradual", "Adaptive & Gradual"
T2_BITS = (6, 4, 3, 2)
GRADUAL_BITS = [6, 5, 4, 3, 2]


@dataclass
class Context:
    plan: Plan
    seeds: List[int]
    out: Path
    store: object                 # lowbit.capacity.ResultStore
    run: Callable[[List[dict]], List[dict]]
    both_adaptive: bool

    def adaptive_methods(self, table: int) -> Tuple[str, ...]:
        if table in (1, 2):
            return (EPOCH,)
        return (FIRST, EPOCH) if self.both_adaptive else (FIRST,)


def display(method: str, table: int) -> str:
    paper_variant = EPOCH if table in (1, 2) else FIRST
    return "Adaptive" if method == paper_variant else method


# ---- nets and jobs -------------------------------------------------------------------------

def ffdnn(plan: Plan, width: int, bn: bool) -> dict:
    return {"kind": "ffdnn", "width": width, "depth": plan.depth, "bn": bn}


def lstm(size: int) -> dict:
    return {"kind": "lstm", "hidden": size}


def units_table1(ctx: Context):
    """(setting, net, plan, jobs) per network of Table 1."""
    p = ctx.plan
    for bn in (False, True):
        for w in p.widths:
            yield {"batch_norm": bn, "width": w}, ffdnn(p, w, bn), p.ffdnn, \
                [(m, b) for b in p.t1_bits for m in (DIRECT, CONV, SEARCH, EPOCH)]


def units_table2(ctx: Context):
    p = ctx.plan
    yield {"width": p.t2_width}, ffdnn(p, p.t2_width, False), p.ffdnn, \
        [(m, b) for b in T2_BITS for m in (CONV, EPOCH)] + [(GRADUAL, None), (ADAPTIVE_GRADUAL, None)]


def units_table3(ctx: Context):
    p = ctx.plan
    methods = (DIRECT, CONV, SEARCH) + ctx.adaptive_methods(3)
    for label, net in p.cnns.items():
        yield {"network": label}, net, p.cnn, [(m, b) for b in p.t3_bits for m in methods]


def units_table4(ctx: Context):
    p = ctx.plan
    methods = (DIRECT, CONV, SEARCH) + ctx.adaptive_methods(4)
    for size in p.lstm_sizes:
        yield {"hidden": size}, lstm(size), p.text, [(m, b) for b in p.t4_bits for m in methods]


UNITS = {1: units_table1, 2: units_table2, 3: units_table3, 4: units_table4}


def unit_job(net, plan, seed, method, bits) -> dict:
    if method in (GRADUAL, ADAPTIVE_GRADUAL):
        return job("gradual", net, plan, seed, adaptive=method == ADAPTIVE_GRADUAL, bits=GRADUAL_BITS)
    return job("retrain", net, plan, seed, method=method, bits=bits)


def collect(ctx: Context, n: int, run: bool = True) -> List[dict]:
    """Run (run=True) or just read from the store every unit of table n; returns its
    records. Floats go first (every retraining of a network needs its float model), the
    longest units first within each phase."""
    units = list(UNITS[n](ctx))
    floats = [job("float", net, plan, s) for _, net, plan, _ in units for s in ctx.seeds]
    retrains = [unit_job(net, plan, s, m, b) for _, net, plan, mb in units
                for s in ctx.seeds for m, b in mb]
    if run:
        ctx.run(floats)
        ctx.run(sorted(retrains, key=lambda j: -estimated_cost(j)))
    return records_of(ctx, n, units)


def estimated_cost(j: dict) -> float:
    """Relative cost, to start the long units first."""
    net = j["net"]
    scale = {"lstm": 8.0, "vgg": 6.0, "lenet5": 3.0}.get(net["kind"], net.get("width", 64) / 64)
    kind = {"gradual": 5.0, "retrain": 1.0, "float": 1.5}[j["kind"]]
    return scale * kind * (0.01 if j.get("method") == DIRECT else 1.0)


# ---- records -------------------------------------------------------------------------------

def lookup(plan: Plan, n: int, setting: dict, method: str, bits) -> Optional[float]:
    # The paper's 'conventional' column is "the baseline [4]", the reference that searches
    # the step; its number stands beside both of our conventional variants.
    m = CONV if method == SEARCH else display(method, n)
    if n == 1:
        width = dict(zip(plan.widths, plan.paper_widths))[setting["width"]]
        return paper.table1(setting["batch_norm"], width, bits, m)
    if n == 2:
        return paper.table2(bits, m)
    if n == 3:
        return paper.table3(setting["network"], bits, m)
    return paper.table4(setting["hidden"], bits, m)


def records_of(ctx: Context, n: int, units) -> List[dict]:
    """One record per (setting, method, bits), with {seed: value} of the finished units."""
    recs: Dict[tuple, dict] = {}

    def add(setting, method, bits, seed, result, key_extra=None):
        key = tuple(setting.items()) + (method, bits)
        r = recs.setdefault(key, {**setting, "method": display(method, n), "bits": bits,
                                  "job_method": method, "values": {}, "selected": {},
                                  "results": {}, "paper": lookup(ctx.plan, n, setting, method, bits)})
        if result is None:
            return
        r["values"][seed] = result["test"]
        if "test_selected" in result:
            r["selected"][seed] = result["test_selected"]
        r["results"][seed] = result

    for setting, net, plan, mb in units:
        for s in ctx.seeds:
            add(setting, paper.FLOAT, None, s, ctx.store.get(key_of(job("float", net, plan, s))))
            for m, b in mb:
                res = ctx.store.get(key_of(unit_job(net, plan, s, m, b)))
                if m in (GRADUAL, ADAPTIVE_GRADUAL):
                    for bits in GRADUAL_BITS:
                        stage = None if res is None else {**res["stages"][str(bits)],
                                                          "steps": res["steps"]}
                        add(setting, m, bits, s, stage)
                else:
                    add(setting, m, b, s, res)
    return list(recs.values())


RUN_JOB = "_repro_train.run_job"   # the name the dask sweep keys its results by


def key_of(j: dict) -> str:
    import lowbit.capacity as cap
    return cap.job_key({"fn": RUN_JOB, "job": j})


# ---- step drift ----------------------------------------------------------------------------

def drift(result: dict) -> Dict[str, float]:
    """Per tensor: how far (%) the step of the evaluated model is from QStep of the float
    weights it started from, and the largest excursion over retraining."""
    out = {}
    for name, steps in result.get("steps", {}).items():
        start = steps[0]
        final = result.get("steps_final", {}).get(name, steps[-1])
        out[name] = {"final": 100 * (final / start - 1),
                     "max": 100 * max(abs(s / start - 1) for s in steps + [final])}
    return out


def drift_rows(n: int, records: List[dict], setting_columns: Sequence[str]) -> List[dict]:
    rows = []
    for r in records:
        if not r["job_method"].startswith("Adaptive") or r["bits"] is None:
            continue
        for seed, res in sorted(r["results"].items()):
            for layer, d in drift(res).items():
                setting = ", ".join(f"{c}={r[c]}" for c in setting_columns)
                rows.append({"table": n, "setting": setting, "method": r["method"],
                             "bits": r["bits"], "seed": seed, "layer": layer,
                             "step_start": res["steps"][layer][0],
                             "step_final": res.get("steps_final", {}).get(layer, res["steps"][layer][-1]),
                             "final_change_pct": d["final"], "max_change_pct": d["max"]})
    return rows


def largest_drift(record: dict) -> Optional[float]:
    """Mean over seeds of the largest |final step change| (%) over the layers."""
    vals = [max(abs(d["final"]) for d in drift(res).values())
            for res in record["results"].values() if drift(res)]
    return mean(vals) if vals else None


def drift_text(row: dict) -> str:
    d = largest_drift(row["record"])
    if d is None:
        return ""
    return f"{d:.1f} %" + (" (steps barely move)" if d < BARELY else "")


# ---- verdicts ------------------------------------------------------------------------------

def verdict(test, paper_mean: Optional[float], digits: int = 2,
            untestable: Optional[str] = None, similar: bool = False) -> str:
    """One line: reproduced when the 95 % CI of our pooled difference lies on the paper's
    side of zero (similar=True, a 'worse or similar' claim: when it does not lie wholly
    on the other side); otherwise not reproduced, or not testable here (and why)."""
    if test is None:
        return "not testable here: no finished runs"
    if test.ci_low is None:
        return "not testable here: needs at least 2 seeds for an interval"
    ours = f"ours {test.text(digits)}"
    if similar:
        if test.ci_high >= 0:
            return f"reproduced: not significantly the other way ({ours})"
        return f"not reproduced: the opposite is significant ({ours})"
    if paper_mean is not None and paper_mean <= 0:
        agree = test.ci_high < 0
        return ("reproduced" if agree else "not reproduced") + f" ({ours})"
    if test.ci_low > 0:
        return f"reproduced ({ours})"
    if untestable:
        return f"not testable here: {untestable} ({ours})"
    side = ("the opposite is significant" if test.ci_high < 0 else
            "the interval excludes the paper's effect" if paper_mean is not None and test.ci_high < paper_mean
            else "no significant difference")
    return f"not reproduced: {side} ({ours})"


class Claims:
    """The page's verdict lines, and every paired comparison behind them."""

    def __init__(self):
        self.rows: List[dict] = []
        self.comparisons: List[dict] = []

    def log(self, table: str, better: str, baseline: str, rows: List[dict]) -> None:
        for r in rows:
            t = r["test"]
            self.comparisons.append({
                "table": table, "setting": r["setting"], "bits": r["bits"], "better": better,
                "baseline": baseline, "n_seeds": t.n, "baseline_minus_better": t.mean,
                "ci95_low": t.ci_low, "ci95_high": t.ci_high, "p": t.p, "holm_reject": r.get("holm"),
                "paper_baseline_minus_better": r["paper"]})

    def add(self, where: str, claim: str, paper_text: str, test, paper_mean, digits=2,
            untestable: Optional[str] = None, similar: bool = False) -> str:
        line = verdict(test, paper_mean, digits, untestable, similar)
        return self.add_line(where, claim, paper_text, line)

    def add_line(self, where: str, claim: str, paper_text: str, line: str) -> str:
        self.rows.append({"where": where, "claim": claim, "paper": paper_text, "verdict": line})
        return line

    def markdown(self) -> List[str]:
        lines = ["| where | claim | paper | verdict (ours: pooled difference [95 % CI]) |",
                 "|---|---|---|---|"]
        lines += [f"| {r['where']} | {r['claim']} | {r['paper']} | {r['verdict']} |" for r in self.rows]
        return lines


def compare_block(records, better, baseline, setting, claims: Claims, where: str,
                  claim: Optional[str], digits=2, with_drift=False, untestable=None,
                  selected_too=False, similar=False, paper_values=True) -> List[str]:
    """Per-setting paired comparison table, its pooled test and (claim given) a verdict.
    paper_values=False: the paper has no such comparison (blank paper column)."""
    rows = paired_rows(records, better, baseline, setting)
    if not rows:
        return []
    if not paper_values:
        for r in rows:
            r["paper"] = None
    claims.log(where, better, baseline, rows)
    test, pmean = pooled(rows)
    paper_text = "" if pmean is None else f"{pmean:+.{digits}f} on average"
    if claim:
        line = claims.add(where, claim, paper_text, test, pmean, digits, untestable, similar)
    else:
        line = verdict(test, pmean, digits, untestable, similar)
    out = [f"**{better} vs {baseline}** ({baseline} − {better}; > 0: {better} is better). "
           f"Pooled over the {len(rows)} settings: {'–' if test is None else test.text(digits)} "
           f"(paper {'–' if pmean is None else f'{pmean:+.{digits}f}'}). Verdict: {line}.", ""]
    out += comparison_md(rows, better, baseline, digits,
                         extra=drift_text if with_drift else None,
                         extra_header="largest step change of the adaptive run" if with_drift else "")
    if selected_too:
        sel = paired_rows(records, better, baseline, setting, field="selected")
        st, _ = pooled_selected(sel)
        if st is not None:
            out += ["", f"Before the fixed-step phase (the best-validation state of the "
                        f"convergence run; with the epoch-level update its step was set after "
                        f"its last training epoch): pooled {st.text(digits)}."]
    return out + [""]


def pooled_selected(rows):
    """pooled() over the 'selected' values."""
    if not rows:
        return None, None
    seeds = None
    for row in rows:
        have = set(row["record"]["selected"]) & set(row["baseline"]["selected"])
        seeds = have if seeds is None else seeds & have
    seeds = sorted(seeds or [])
    if not seeds:
        return None, None
    per = [mean([row["baseline"]["selected"][s] - row["record"]["selected"][s] for row in rows])
           for s in seeds]
    return paired_t(per, [0.0] * len(per)), None


def precondition(claims: Claims, where: str, records, setting, digits=2, unit="points",
                 needed: Optional[float] = MIN_GAP) -> None:
    """The verdict line on the loss of 2-bit Conventional against float (pooled)."""
    rows = paired_rows(records, paper.FLOAT, CONV, setting, baseline_bits=lambda b: 2)
    test, pmean = pooled(rows)
    papers = [r["paper"] for r in rows if r["paper"] is not None]
    paper_text = (span([round(x, digits) + 0.0 for x in papers], digits, signed=True)
                  if papers else "")
    claim = "float converged: 2-bit Conventional loses against float"
    if test is None:
        claims.add_line(where, claim, paper_text, "not testable here: no finished runs")
        return
    ours = f"ours {test.text(digits)} {unit}"
    if needed is not None:
        claim += f" (≥ {needed:g} {'point' if needed == 1 and unit == 'points' else unit} needed)"
        line = ("met" if test.mean >= needed else "not met") + f" ({ours})"
    else:
        claim += " (CI above 0 needed)"
        line = ("met" if test.ci_low is not None and test.ci_low > 0 else "not met") + f" ({ours})"
    claims.add_line(where, claim, paper_text, line)


def gap_block(records, method, setting, digits=2) -> Tuple[List[str], Optional[float]]:
    """Loss of `method` at 2 bits against the float model, per setting (paired by seed)."""
    rows = paired_rows(records, paper.FLOAT, method, setting, baseline_bits=lambda b: 2)
    # baseline − better = quantized − float: the loss.
    if not rows:
        return [], None
    lines = [f"| setting | 2-bit {method} − float, ours [95 % CI] | paper |", "|---|---|---|"]
    gaps = []
    for r in rows:
        t = r["test"]
        gaps.append(t.mean)
        paper_gap = "" if r["paper"] is None else f"{r['paper']:+.{digits}f}"
        lines.append(f"| {r['setting']} | {t.text(digits)} | {paper_gap} |")
    return lines, mean(gaps)


# ---- the tables ----------------------------------------------------------------------------

def span(values, digits: Optional[int] = None, signed: bool = False) -> str:
    f = (lambda v: str(v)) if digits is None else (  # noqa: E731
        lambda v: f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}")
    lo, hi = f(min(values)), f(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def float_summary(records: List[dict], digits: int = 2, unit: str = " %") -> str:
    """Float models: the error range and their training length."""
    floats = [r for r in records if r["bits"] is None and r["values"]]
    if not floats:
        return "float models: none finished"
    ours = [mean(list(r["values"].values())) for r in floats]
    epochs = [res["epochs"] for r in floats for res in r["results"].values()]
    capped = sum(res["stop"] == "cap" for r in floats for res in r["results"].values())
    text = (f"float models: test {span(ours, digits)}{unit} (means over seeds), "
            f"{span(epochs)} epochs to reach the floor rate and stop")
    return text + (f"; {capped} stopped at the epoch cap" if capped else "")


def retrain_summary(records: List[dict]) -> str:
    res = [x for r in records if r["bits"] is not None for x in r["results"].values()
           if x.get("epochs")]
    if not res:
        return ""
    epochs = [x["epochs"] for x in res]
    capped = sum(x.get("stop") == "cap" for x in res)
    return (f"retraining: {span(epochs)} epochs each, fixed-step phase included"
            + (f"; {capped} stopped at the epoch cap" if capped else ""))


def section_table1(ctx: Context, records: List[dict], claims: Claims) -> List[str]:
    where = lambda r: f"{'BN' if r['batch_norm'] else 'no BN'}, w {r['width']}"  # noqa: E731
    lines = []
    for bn in (False, True):
        lines += [f"### {'With' if bn else 'Without'} batch normalization (test error %)", ""]
        lines += pivot([r for r in records if r["batch_norm"] == bn], "width",
                       list(ctx.plan.widths), row_label,
                       header="width of each layer (paper's values: widths "
                       + " / ".join(map(str, ctx.plan.paper_widths)) + ")") + [""]
    gap_lines, gap = gap_block(records, CONV, where)
    untestable = (None if gap is None or gap >= MIN_GAP else
                  f"2-bit Conventional loses only {gap:.2f} points against float here")
    precondition(claims, "Table 1", records, where)
    lines += ["### Loss of 2-bit Conventional against the float model", ""] + gap_lines + [""]
    lines += ["### Comparisons", ""]
    lines += compare_block(records, "Adaptive", CONV, where, claims, "Table 1",
                           "Adaptive (epoch-level) beats Conventional, 2-4 bits, with and without BN",
                           with_drift=True, untestable=untestable, selected_too=True)
    # The paper's regime: the settings where quantization costs Conventional a point or more.
    roomy = sorted(r["setting"] for r in paired_rows(records, paper.FLOAT, CONV, where, baseline_bits=lambda b: 2)
                   if r["test"].mean >= MIN_GAP)
    if roomy:
        lines += compare_block([r for r in records if where(r) in roomy], "Adaptive", CONV, where, claims,
                               "Table 1", f"Adaptive beats Conventional where 2-bit Conventional loses "
                               f"≥ {MIN_GAP:g} point ({'; '.join(roomy)})")
    lines += compare_block(records, "Adaptive", SEARCH, where, claims, "Table 1",
                           "Adaptive beats ref. [4]'s Conventional with step search", untestable=untestable)
    lines += compare_block(records, SEARCH, CONV, where, claims, "Table 1", None, paper_values=False)
    return lines


def section_table2(ctx: Context, records: List[dict], claims: Claims) -> List[str]:
    where = lambda r: f"w {r['width']}"  # noqa: E731
    quant = [r for r in records if r["bits"] is not None]
    order = ["Conventional", "Adaptive", GRADUAL, ADAPTIVE_GRADUAL]
    lines = [f"### FFDNN, width {ctx.plan.t2_width}, no BN (test error %)", ""]
    fl = next((r for r in records if r["bits"] is None), None)
    if fl is not None:
        lines += [f"Float: {cell(fl)}.", ""]
    lines += pivot(sorted(quant, key=lambda r: -r["bits"]), "method", order,
                   lambda r: f"{r['bits']}-bit", header="precision") + [""]
    lines += ["### Comparisons", ""]
    sub = lambda bits: [r for r in records if r["bits"] in bits or r["bits"] is None]  # noqa: E731
    lines += compare_block(sub((4, 3, 2)), GRADUAL, CONV, where, claims, "Table 2",
                           "Gradual beats Conventional (4, 3, 2 bits)")
    lines += compare_block(sub((4, 3, 2)), "Adaptive", GRADUAL, where, claims, "Table 2",
                           "Gradual is worse than or similar to Adaptive (4, 3, 2 bits)", similar=True)
    lines += compare_block(sub((4, 3)), ADAPTIVE_GRADUAL, "Adaptive", where, claims, "Table 2",
                           "Adaptive & Gradual beats Adaptive at 4 and 3 bits")
    lines += compare_block(sub((2,)), "Adaptive", ADAPTIVE_GRADUAL, where, claims, "Table 2",
                           "Adaptive beats Adaptive & Gradual at 2 bits")
    six = paired_rows(records, CONV, paper.FLOAT, where, baseline_bits=lambda b: None)
    six = [r for r in six if r["bits"] == 6]
    if six:
        t = six[0]["test"]
        claims.add("Table 2", "6-bit (Conventional) is slightly better than float",
                   f"{paper.T2_FLOAT - 29.32:+.2f}", t, paper.T2_FLOAT - 29.32)
        lines += [f"6-bit Conventional against float (float − 6-bit): {t.text()}, paper "
                  f"{paper.T2_FLOAT - 29.32:+.2f}.", ""]
    return lines


def section_fig2(ctx: Context, records: List[dict], claims: Claims) -> List[str]:
    """Fig. 2 from Table 1's epoch-level adaptive runs at the Fig. 2 width, no BN."""
    width = min(ctx.plan.widths, key=lambda w: abs(w - ctx.plan.fig2_width))
    runs = [r for r in records if r["job_method"] == EPOCH and not r["batch_norm"]
            and r["width"] == width]
    curves = {}
    for r in runs:
        res = r["results"].get(ctx.seeds[0])
        if res is not None:
            curves[r["bits"]] = res["steps"]
    if curves:
        draw_fig2(ctx.out / "repro_002_fig2.png", curves,
                  f"Adaptive (epoch-level) step per layer during retraining, FFDNN width {width}, "
                  f"no BN, seed {ctx.seeds[0]}")
    # claim: the last layer's step moves more than the first layer's (paired over seeds)
    first, last = {}, {}
    for r in runs:
        for seed, res in r["results"].items():
            d = drift(res)
            if not d:
                continue
            names = list(d)
            first.setdefault(seed, []).append(d[names[0]]["max"])
            last.setdefault(seed, []).append(d[names[-1]]["max"])
    seeds = sorted(set(first) & set(last))
    lines = ["![Fig. 2](repro_002_fig2.png)", ""] if curves else []
    if seeds:
        f = [mean(first[s]) for s in seeds]
        la = [mean(last[s]) for s in seeds]
        t = paired_t(la, f)
        claims.add("Fig. 2", "the output layer's step moves much more than the first layer's",
                   "large vs almost constant", t, None, digits=1)
        lines += [f"Largest step change during retraining (mean over seeds and {'/'.join(map(str, ctx.plan.t1_bits))} bits), width "
                  f"{width}, no BN: first layer {mean(f):.1f} %, output layer {mean(la):.1f} %; "
                  f"output − first {t.text(1)} points of percent. Per layer, seed and bit width: "
                  "`repro_002_steps.csv`.", ""]
    return lines


def section_table3(ctx: Context, records: List[dict], claims: Claims) -> List[str]:
    where = lambda r: f"{r['network']}"  # noqa: E731
    nets = list(ctx.plan.cnns)
    lines = ["### CNNs (test error %)", ""]
    lines += pivot(records, "network", nets, row_label, header="network") + [""]
    gap_lines, gap = gap_block(records, CONV, where)
    untestable = (None if gap is None or gap >= MIN_GAP else
                  f"2-bit Conventional loses only {gap:.2f} points against float here")
    precondition(claims, "Table 3", records, where)
    lines += ["### Loss of 2-bit Conventional against the float model", ""] + gap_lines + [""]
    lines += ["### Comparisons", ""]
    bits = "/".join(map(str, ctx.plan.t3_bits))
    lines += compare_block(records, "Adaptive", CONV, where, claims, "Table 3",
                           f"Adaptive (1 epoch update & fix) beats Conventional, network "
                           f"{', '.join(nets)}, {bits} bits",
                           with_drift=True, untestable=untestable, selected_too=True)
    lines += compare_block(records, "Adaptive", SEARCH, where, claims, "Table 3",
                           "Adaptive beats Conventional with step search", untestable=untestable)
    if ctx.both_adaptive:
        lines += compare_block(records, "Adaptive", EPOCH, where, claims, "Table 3", None, with_drift=True)
    return lines


def section_table4(ctx: Context, records: List[dict], claims: Claims) -> List[str]:
    where = lambda r: f"size {r['hidden']}"  # noqa: E731
    lines = ["### Character LSTM (test bits per character)", ""]
    lines += pivot(records, "hidden", list(ctx.plan.lstm_sizes), row_label, digits=3,
                   header="size of the LSTM layer") + [""]
    gap_lines, _ = gap_block(records, CONV, where, digits=3)
    precondition(claims, "Table 4", records, where, digits=3, unit="BPC", needed=None)
    lines += ["### Loss of 2-bit Conventional against the float model (BPC)", ""] + gap_lines + [""]
    lines += ["### Comparisons", ""]
    bits = "/".join(map(str, ctx.plan.t4_bits))
    lines += compare_block(records, "Adaptive", CONV, where, claims, "Table 4",
                           f"Adaptive (1 epoch update & fix) beats Conventional, {bits} bits",
                           digits=3, with_drift=True, selected_too=True)
    lines += compare_block(records, "Adaptive", SEARCH, where, claims, "Table 4",
                           "Adaptive beats Conventional with step search", digits=3)
    if ctx.both_adaptive:
        lines += compare_block(records, "Adaptive", EPOCH, where, claims, "Table 4", None, digits=3)
    return lines


SECTIONS = {1: ("Table 1: FFDNN, widths and BN", section_table1, ["batch_norm", "width"]),
            2: ("Table 2: gradual quantization", section_table2, ["width"]),
            3: ("Table 3: CNNs", section_table3, ["network"]),
            4: ("Table 4: character LSTM", section_table4, ["hidden"])}


# ---- the page ------------------------------------------------------------------------------

def protocol_text(ctx: Context) -> List[str]:
    p = ctx.plan
    f, c, t = p.ffdnn, p.cnn, p.text
    rule = lambda q: (f"lr {q.float_lr:g} halved after {q.patience} evaluations without "  # noqa: E731
                      f"improvement, down to {q.lr_floor:g}, stop after {q.patience} more at "
                      f"that floor (cap {q.max_epochs} epochs); retraining from lr {q.retrain_lr:g}, same rule")
    test = lambda q: "the 10k test images" if q.n_test is None else f"{q.n_test} test images"  # noqa: E731
    return [
        "- **Convergence rule** (paper, section 3): the validation ('development') set is "
        "evaluated after every epoch; the learning rate halves after 4 evaluations without "
        "improvement, down to a floor; training stops after 4 more evaluations without "
        "improvement at the floor. The best-validation state is kept. Float training and every "
        "retraining use this rule; retraining starts at a lower rate, as in the paper.",
        f"- **FFDNN (Tables 1-2, Fig. 2)**: Fashion-MNIST, {f.n_train} training and {f.n_val} "
        f"validation images (a fixed split of the 60k), {test(f)}; SGD with Nesterov momentum "
        f"0.9, batch {f.batch_size}; {rule(f)} (the paper's retraining rate is 4x below its float "
        "rate for the FFDNN).",
        f"- **CNN (Table 3)**: Fashion-MNIST, {c.n_train} training and {c.n_val} validation "
        f"images, {test(c)}; SGD with Nesterov momentum 0.9, batch {c.batch_size}; {rule(c)} "
        "(the paper's CNN rates).",
        f"- **LSTM (Table 4)**: fortunes corpus ({t.max_chars:,} characters, 90/5/5 % split), "
        f"{t.batch_size} streams, truncated BPTT over {t.seq_len}; Adam (the paper: AdaDelta-"
        f"based SGD), gradient-norm clipping 1; {rule(t)}.",
        "- **Quantization**: symmetric fixed point with 2^b − 1 levels, one L2-optimal step "
        "(QStep) per weight tensor; **every weight tensor is quantized, the output layer "
        "included** (and the LSTM's embedding, the paper's one-hot input layer); biases and "
        "BatchNorm stay float. No float-output column: it would double the retraining cost.",
        "- **Methods.** Direct: QStep of the float weights, no retraining. Conventional: that "
        "step, fixed during retraining. Conventional + search (ref. [4]): each layer's step "
        "searched over 9 geometric factors in [Δ/2, 2Δ] on the validation set, one layer at a "
        "time, then fixed. Adaptive: the paper's variant per table: epoch-level update (QStep "
        "after every epoch) for the FFDNNs, '1 epoch update & fix' for CNNs and LSTMs. Gradual: "
        "6 → 5 → 4 → 3 → 2 bits, each precision re-quantized from the current float weights "
        "and retrained to convergence (Adaptive & Gradual: epoch-level update within each).",
        "- **Fixed-step phase (fair evaluation of Adaptive).** The epoch-level rule "
        "re-quantizes after every epoch, so the best state of the convergence run carries a "
        "step it was never trained at. Every retraining (all methods alike) therefore ends "
        "with a fixed-step phase: steps held, a fresh optimizer at the floor rate, the same "
        "stopping rule, best state kept. **The tables report the state after this phase**; "
        "the comparisons also give Adaptive vs Conventional before it.",
        f"- **Statistics**: {len(ctx.seeds)} seeds per setting (seed = initialization and "
        "batch order; all methods of one seed start from the same float model and see the "
        "same batches). Cells: mean ± std over seeds (the paper's value in parentheses). "
        "Differences: paired t test over seeds (n − 1 degrees of freedom), mean [95 % CI] "
        "and two-sided p; † marks tests that survive Holm's correction within their comparison table. "
        "A claim's pooled test averages each seed's differences over the claim's settings "
        "and applies the same paired t test.",
        "- **Verdicts**: reproduced when the pooled 95 % CI lies on the paper's side of zero; "
        "not reproduced otherwise (saying whether the CI excludes the paper's average effect); "
        f"not testable here when the precondition fails (2-bit Conventional losing < "
        f"{MIN_GAP:g} point against float leaves nothing for Adaptive to recover).",
        f"- **Step drift**: every adaptive run logs each layer's step after every update "
        f"(`repro_002_steps.csv`); a comparison row says 'steps barely move' when the largest "
        f"final change over the layers is below {BARELY:g} %.",
    ]


def differences_text(ctx: Context) -> List[str]:
    p = ctx.plan
    return [
        "- Data: the paper's TIMIT, SVHN and English Wikipedia are not on this machine; "
        "Fashion-MNIST (28x28 grey images, 10 classes) stands in for TIMIT frames and SVHN, "
        "the fortunes corpus for Wikipedia. Absolute errors are not comparable; the "
        "comparisons between methods and the losses against float are what is tested.",
        f"- Sizes: FFDNN widths {', '.join(map(str, p.widths))} (the paper: 64-1024) with "
        f"{p.depth} hidden layers; these widths are where a Fashion-MNIST FFDNN is capacity-"
        "limited, as the paper's small networks are on TIMIT. Table 2 and Fig. 2 use width "
        f"{p.t2_width} (the paper: 512 and 256). Table 3: "
        + ", ".join(f"{k} = {v['kind']}{'' if 'width' not in v else ' width ' + str(v['width'])}"
                    for k, v in p.cnns.items())
        + f" (the paper's V network is left out), {'/'.join(map(str, p.t3_bits))} bits (the "
        f"paper: 2/3/4). Table 4: one LSTM layer of size {', '.join(map(str, p.lstm_sizes))} "
        f"(the paper: three layers of 64/128/256), {'/'.join(map(str, p.t4_bits))} bits (the "
        "paper: 2/3/4/6). These cuts keep the full run within about 5 hours on 2 cores.",
        "- Learning-rate floors: the FFDNN rate falls 64x (the paper 512x) and the LSTM's 32x "
        "(the paper 10^4x), to fit the budget; the CNN rates are the paper's.",
        "- The paper's 'conventional' column is \"the baseline [4]\", the reference that "
        "searches the step over [Δ/2, 2Δ]; the paper does not say whether its runs searched. "
        "Its conventional number therefore stands beside both Conventional and Conventional + "
        "search here.",
        "- BN vs no BN, and 'larger networks are more resilient', are shown in Table 1's cells "
        "but not tested as claims.",
    ]


def write_page(ctx: Context, args, sections: Dict[int, tuple], wall: float) -> None:
    claims = Claims()
    body: List[str] = []
    steps_rows = []
    for n in sorted(sections):
        title, fn, cols = SECTIONS[n]
        records = sections[n]
        if not any(r["values"] for r in records):  # named, so that a missing table is not silent
            body += [f"## {title}", "", "No finished units yet: the command above runs them (a run resumes "
                     "where an earlier one stopped).", ""]
            continue
        body += [f"## {title}", ""] + fn(ctx, records, claims)
        if n == 1:
            body += ["## Fig. 2: the adaptive step during retraining", ""]
            body += section_fig2(ctx, records, claims)
        summary = [float_summary(records, 3 if n == 4 else 2, " BPC" if n == 4 else " %"),
                   retrain_summary(records)]
        body += ["; ".join(x for x in summary if x) + f". Per-seed values: `repro_002_table{n}.csv`.", ""]
        atomic_write(ctx.out / f"repro_002_table{n}.csv", to_csv(records, cols))
        steps_rows += drift_rows(n, records, cols)
    units = [v for _, v in ctx.store.items()]
    compute = sum(u.get("seconds", 0) for u in units)
    # --report-only rewrites the page of a run: the page names the run's own command.
    cmd = " ".join([".venv/bin/python benchmarks/repro_002.py"]
                   + [shlex.quote(a) for a in args.argv if a != "--report-only"])
    head = ["# Paper 002: adaptive step size retraining (Tables 1-4, Fig. 2)", "",
            "Shin, Boo, Sung 2017, \"Fixed-point optimization of deep neural networks with "
            "adaptive step size retraining\".", "",
            f"- Command (from the repository root): `{cmd}`",
            f"- Date: {datetime.date.today().isoformat()}; machine: {machine()}; "
            f"{args.workers} dask worker(s) x {args.threads} thread(s)",
            f"- {len(units)} training units in `{STORE}`, {compute / 3600:.2f} h of unit compute "
            f"time; this invocation {wall / 60:.1f} min wall (units finished by an earlier "
            "invocation are read from the store). A cell shown as – has no finished units "
            "yet: the command resumes the run where it stopped.", "",
            "## Claims and verdicts", ""] + claims.markdown() + [
            "", "## Protocol", ""] + protocol_text(ctx) + ["", "## What differs from the paper", ""] \
        + differences_text(ctx) + [""]
    atomic_write(ctx.out / "repro_002.md", "\n".join(head + body) + "\n")
    if steps_rows:
        atomic_write(ctx.out / "repro_002_steps.csv", rows_to_csv(steps_rows))
    claim_rows = [{k: r[k] for k in ("where", "claim", "paper", "verdict")} for r in claims.rows]
    if claim_rows:
        atomic_write(ctx.out / "repro_002_claims.csv", rows_to_csv(claim_rows))
    if claims.comparisons:
        atomic_write(ctx.out / "repro_002_comparisons.csv", rows_to_csv(claims.comparisons))
    print(f"wrote {ctx.out / 'repro_002.md'}", flush=True)


# ---- running -------------------------------------------------------------------------------

def make_runner(store, sweep, workers: int, threads: int, log=print):
    """jobs -> results: the ones missing from the store run (serially in this process with
    one worker, else on the dask sweep) and are stored as each finishes."""
    def run(jobs: List[dict]) -> List[dict]:
        todo = [j for j in jobs if key_of(j) not in store]
        if not todo:
            return [store.get(key_of(j)) for j in jobs]
        log(f"running {len(todo)} unit(s) ({len(jobs) - len(todo)} already stored)")
        if workers == 1:
            set_threads(threads)
            for j in todo:
                if key_of(j) not in store:
                    store.put(key_of(j), T.run_job(j))
        else:
            sweep.map(T.run_job, todo, desc="repro_002")
        return [store.get(key_of(j)) for j in jobs]
    return run


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3, 4], choices=sorted(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds (for the test)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per setting (default 5)")
    ap.add_argument("--workers", type=int, default=2, help="dask worker processes (1: in this process)")
    ap.add_argument("--threads", type=int, default=1, help="torch/lowbit threads per worker (default 1)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results; --quick: a temporary folder)")
    ap.add_argument("--both-adaptive", action="store_true",
                    help="Tables 3-4: also run the epoch-level adaptive variant")
    ap.add_argument("--report-only", action="store_true", help="write the page from the store, run nothing")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.workers < 1 or args.threads < 1:
        ap.error("--seeds, --workers and --threads must be >= 1")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def print_costs(store) -> None:
    """Mean compute seconds per unit kind and network: the numbers the sizes are planned on."""
    groups: Dict[str, List[float]] = {}
    for key, res in store.items():
        import json
        j = json.loads(key)["job"]
        kind = j["kind"] if j["kind"] != "retrain" else ("direct" if j["method"] == DIRECT else "retrain")
        groups.setdefault(f"{kind} {T.net_name(j['net'])}", []).append(res.get("seconds", 0.0))
    if groups:
        print("compute per unit (all stored units):")
    for name, times in sorted(groups.items()):
        print(f"  {name:<30} {len(times):4d} unit(s), {mean(times):7.1f} s each, {sum(times):8.0f} s in all")


def main(argv=None) -> int:
    import tempfile

    import lowbit.capacity as cap
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = Path(args.out) if args.out is not None else (
        Path(tempfile.mkdtemp(prefix="repro_002_quick_")) if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    T.set_cache_dir(out / "cache")
    saved_env = os.environ.get("REPRO_002_CACHE")
    os.environ["REPRO_002_CACHE"] = str(out / "cache")   # for the dask workers
    print(f"repro_002: tables {args.tables}, {'quick' if args.quick else 'full'} sizes, "
          f"{args.seeds} seed(s), {args.workers} worker(s) x {args.threads} thread(s), out {out}",
          flush=True)
    t0 = time.perf_counter()
    try:
        with cap.Sweep(out / STORE, n_workers=args.workers, threads_per_worker=args.threads,
                       progress=False) as sweep:
            ctx = Context(plan, list(range(args.seeds)), out, sweep.store,
                          make_runner(sweep.store, sweep, args.workers, args.threads), args.both_adaptive)
            for n in sorted(set(args.tables)):
                print(f"table {n}", flush=True)
                collect(ctx, n, run=not args.report_only)
                # The page shows every table's finished units, run now or earlier.
                sections = {m: collect(ctx, m, run=False) for m in SECTIONS}
                write_page(ctx, args, sections, time.perf_counter() - t0)
        print_costs(sweep.store)
    finally:
        if saved_env is None:
            os.environ.pop("REPRO_002_CACHE", None)
        else:
            os.environ["REPRO_002_CACHE"] = saved_env
    print(f"repro_002: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
