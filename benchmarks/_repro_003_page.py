"""repro_003's results page: the paper's number beside ours for every claim with a
verdict, the accuracy table (calibration and held-out side by side), the paired tests,
Figs. 6 and 8-11, why each SA run stopped, and the run's cost."""
import datetime
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

import _repro_003_plots as plots
import _repro_003_units as U
from _repro_003_results import FLOAT, Results, mcnemars, paired
from _repro_report import atomic_write, machine, md_table, rows_to_csv
from _stats import paired_t

ROOM = 5.0          # points uniform must lose at 3 bits for the setting to have room to gain
R2_GOOD = 0.9       # an Eq. 2 fit "describes" a GA codebook
NEAR = 1.0          # Fig. 9: a cell within this many points of float is "good"
DASH = "–"

# Copied from paper 003 (text and Table I).
PAPER = {
    "t1_4": ("4-bit VBQ-SA vs FP32, top-1 drop: VGG16 2.54, AlexNet 2.88 points (\"comparable "
             "to FP32\")", 2.54),
    "t1_5": ("5-bit VBQ-SA vs FP32, top-1 drop: VGG16 1.36, AlexNet 0.34 points", 1.36),
    "fig10": "accuracy improves with N and becomes comparable to FP32 at N = 16 (4 bits)",
    "fig11_200": "SA needs only 200 calibration images (held-out 5000 images)",
    "fig11_1000": "no further improvement beyond 1000 calibration images",
    "fig6": "one layer VBQ-GA (16 values, the others FP32, 200 generations): accuracy on the "
            "search images at least FP32's, in every layer",
    "fig8_r2": "the symmetric GA values follow Eq. 2 (good R^2; symmetric better than Eq. 1)",
    "fig8_a": "fitted a = 0.313 for layer 0 (a < 1: denser at the ends), 385 for layer 10",
    "fig8_acc": "values taken from the Eq. 2 fit: at most about 1.2 % below FP32 (symmetric)",
    "fig9": "heat maps over (a^(1/N), log b), 3 bits: wide good regions for FC layers, narrow "
            "for conv layers",
    "fig5": "one 16-value GA codebook for every layer: symmetric converges faster and higher "
            "than asymmetric; both below FP32",
    "uniform": "VBQ improves on fixed-point (uniform) quantization (Sec. I; Table I compares "
               "with log formats)",
}


@dataclass
class RunInfo:
    command: str
    workers: int
    threads: int
    wall: float
    plan: dict
    seeds: List[int]
    store: str


def command(argv: Sequence[str]) -> str:
    """The run's own command (--report-only rewrites the page of a run)."""
    return " ".join([".venv/bin/python benchmarks/repro_003.py"]
                    + [shlex.quote(a) for a in argv if a != "--report-only"])


def _ms(values: Dict[int, float], digits: int = 2) -> str:
    """'mean ± sd' over seeds, or – with none."""
    v = list(values.values())
    if not v:
        return DASH
    return f"{statistics.fmean(v):.{digits}f}" + (f" ± {statistics.stdev(v):.{digits}f}" if len(v) > 1 else "")


def _t(test, digits: int = 2) -> str:
    """'+0.42 [+0.10, +0.74], p 0.03 (2 df)'; – without pairs."""
    if test is None:
        return DASH
    out = test.text(digits)
    return out + (f", p {test.p:.2g} ({test.df} df)" if test.p is not None else " (one seed)")


def _mc(tests: dict) -> str:
    return "; ".join(f"s{s}: {m.text()} mid-p {m.p_mid:.2g}" for s, m in sorted(tests.items())) or DASH


# ---- verdicts ------------------------------------------------------------------------------

def drop_verdict(test, paper_drop: float) -> str:
    """test: VBQ - float (points). Comparable = a drop no larger than the paper's."""
    if test is None:
        return "not testable here: no finished units yet"
    drop = -test.mean
    if test.ci_low is None:
        return f"{'reproduced' if drop <= paper_drop else 'not reproduced'} (one seed, no interval)"
    if -test.ci_low <= paper_drop:
        return f"reproduced: the drop's 95 % CI lies below the paper's {paper_drop:g} points"
    if -test.ci_high > paper_drop:
        return f"not reproduced: the drop's 95 % CI lies above the paper's {paper_drop:g} points"
    return f"not reproduced (inconclusive): the drop's 95 % CI spans the paper's {paper_drop:g} points"


def gain_verdict(test, claim_positive: bool = True) -> str:
    """test: a - b; the claim is a > b (claim_positive) or 'no gain' (not claim_positive)."""
    if test is None:
        return "not testable here: no finished units yet"
    if test.ci_low is None:
        return "not testable here: one seed, no interval"
    above, below = test.ci_low > 0, test.ci_high < 0
    if claim_positive:
        return ("reproduced: 95 % CI above 0" if above else
                "not reproduced: 95 % CI below 0" if below else "not reproduced: 95 % CI spans 0")
    return ("not reproduced: significant gain (95 % CI above 0)" if above else
            "reproduced: no significant gain (95 % CI " + ("below 0)" if below else "spans 0)"))


# ---- sections ------------------------------------------------------------------------------

class Page:
    def __init__(self, res: Results, seeds: List[int]):
        self.res, self.seeds, self.p = res, seeds, res.plan
        self.claims: List[dict] = []
        self.tests: List[dict] = []           # one row per comparison (Markdown)
        self.csv_tests: List[dict] = []       # one row per comparison and seed (McNemar)
        self.csv_table: List[dict] = []
        self.csv_sa: List[dict] = []

    def claim(self, where: str, claim: str, ours: str, verdict: str) -> None:
        self.claims.append({"where": where, "paper": claim, "ours": ours, "verdict": verdict})

    def compare(self, a: tuple, b: tuple, label: str) -> object:
        """Paired t (and McNemar per seed) of held-out a - b, logged for the tests table."""
        t = paired(self.res, a, b, self.seeds)
        mc = mcnemars(self.res, a, b, self.seeds)
        self.tests.append({"comparison": label, "paired t over seeds": _t(t),
                           "McNemar per seed (points [95 % CI], mid-p)": _mc(mc)})
        for s, m in sorted(mc.items()):
            self.csv_tests.append({"comparison": label, "seed": s, "diff_points": 100 * m.diff,
                                    "ci_low": 100 * m.ci_low, "ci_high": 100 * m.ci_high, "b": m.b,
                                    "c": m.c, "p_exact": m.p_exact, "p_mid": m.p_mid})
        return t

    def methods(self, bits: int) -> List[str]:
        out = [U.SA] if bits in self.p.sa_bits else []
        return out + ([U.GA] if bits in self.p.ga_bits else []) + list(U.BASELINES)

    def table(self) -> List[str]:
        rows, csv = [], []
        for bits in self.p.bits:
            for m in self.methods(bits):
                held = self.res.values(m, bits, self.seeds)
                row = {"bits": bits, "method": m,
                       "calibration %": _ms(self.res.values(m, bits, self.seeds, "calib")),
                       "held-out %": _ms(held),
                       "held-out − float": _t(paired(self.res, (m, bits), (FLOAT, None), self.seeds)),
                       "seeds": len(held)}
                rows.append(row)
                csv += [{"bits": bits, "method": m, "seed": s,
                         "calib": self.res.unit(m, bits, s)["calib"], "held_out": v} for s, v in held.items()]
        held = self.res.values(FLOAT, None, self.seeds)
        rows.append({"bits": "float", "method": "float",
                     "calibration %": _ms(self.res.values(FLOAT, None, self.seeds, "calib")),
                     "held-out %": _ms(held), "held-out − float": "", "seeds": len(held)})
        self.csv_table = csv
        return [md_table(rows), ""]

    def room(self) -> List[str]:
        """Does uniform symmetric lose at least ROOM points (mean over seeds) at 2 or 3 bits?"""
        lines = []
        for bits in [b for b in (2, 3) if b in self.p.bits]:
            t = paired(self.res, ("uniform symmetric", bits), (FLOAT, None), self.seeds)
            if t is None:
                lines.append(f"- {bits} bits: {DASH} (no finished float unit yet).")
                continue
            uni = self.res.values("uniform symmetric", bits, self.seeds)
            flt = self.res.values(FLOAT, None, self.seeds)
            per = ", ".join(f"{flt[s] - uni[s]:.2f}" for s in sorted(set(uni) & set(flt)))
            lines.append(f"- {bits} bits: uniform symmetric loses {-t.mean:.2f} points on average "
                         f"(per seed {per}; uniform − float {_t(t)}): "
                         + ("**at least** " if -t.mean >= ROOM else "**less than** ") + f"{ROOM:g}.")
        return [f"Room to gain: the comparisons need a setting where uniform quantization loses at "
                f"least {ROOM:g} points against float on the held-out images.", "", *lines, ""]

    def comparisons(self) -> None:
        for bits in self.p.bits:
            for m in self.methods(bits)[:2]:
                if m not in (U.SA, U.GA):
                    continue
                for base in (FLOAT, "Lloyd-Max", "uniform symmetric"):
                    self.compare((m, bits), (base, None if base == FLOAT else bits),
                                 f"{bits}-bit {m} − {base if base == FLOAT else f'{bits}-bit {base}'}")

    def claims_main(self) -> None:
        for bits, key in ((4, "t1_4"), (5, "t1_5")):
            if bits not in self.p.sa_bits:
                continue
            t = paired(self.res, (U.SA, bits), (FLOAT, None), self.seeds)
            self.claim(f"Table I, {bits} bits", PAPER[key][0],
                       DASH if t is None else f"{bits}-bit VBQ-SA − float: {_t(t)}",
                       drop_verdict(t, PAPER[key][1]))
        for bits in [b for b in (2, 3) if b in self.p.sa_bits]:
            t = paired(self.res, (U.SA, bits), ("uniform symmetric", bits), self.seeds)
            self.claim(f"Sec. I, {bits} bits", PAPER["uniform"],
                       DASH if t is None else f"{bits}-bit VBQ-SA − uniform: {_t(t)}", gain_verdict(t))
        for bits in [b for b in (2, 3, 4) if b in self.p.bits]:
            for m in [m for m in self.methods(bits) if m in (U.SA, U.GA)]:
                t = paired(self.res, (m, bits), ("Lloyd-Max", bits), self.seeds)
                self.claim(f"(no claim), {bits} bits", "the paper never compares VBQ with Lloyd-Max",
                           DASH if t is None else f"{bits}-bit {m} − Lloyd-Max: {_t(t)}",
                           "comparison only: " + ("no finished units" if t is None else
                                                  _direction(t, m, "Lloyd-Max")))

    def fig10(self) -> List[str]:
        rows = []
        for bits in self.p.sa_bits:
            rows.append({"N": 2 ** bits, "bits": bits,
                         "SA calibration %": _ms(self.res.values(U.SA, bits, self.seeds, "calib")),
                         "SA held-out %": _ms(self.res.values(U.SA, bits, self.seeds)),
                         "Lloyd-Max held-out %": _ms(self.res.values("Lloyd-Max", bits, self.seeds)),
                         "float held-out %": _ms(self.res.values(FLOAT, None, self.seeds))})
        steps = [paired(self.res, (U.SA, b), (U.SA, a), self.seeds)
                 for a, b in zip(self.p.sa_bits, self.p.sa_bits[1:])]
        text = "; ".join(f"N {2 ** b} − N {2 ** a}: {_t(t)}"
                         for (a, b), t in zip(zip(self.p.sa_bits, self.p.sa_bits[1:]), steps))
        pairs = list(zip(self.p.sa_bits, self.p.sa_bits[1:]))
        k = next((i for i, (a, b) in enumerate(pairs) if b == 4), 0)   # the step into N = 16
        if steps and steps[k] is not None:
            a, b = pairs[k]
            self.claim("Figs. 10, 12, 13", PAPER["fig10"], text,
                       gain_verdict(steps[k]).replace("95 % CI", f"N {2 ** b} − N {2 ** a}: 95 % CI"))
        else:
            self.claim("Figs. 10, 12, 13", PAPER["fig10"], DASH, "not testable here: no finished units yet")
        return [md_table(rows), "", f"Held-out differences between neighbouring N: {text or DASH}.", ""]

    def fig11(self) -> List[str]:
        b, main = self.p.fig11_bits, self.p.n_calib
        rows = []
        for n in self.p.calib_sizes:
            t = None if n == main else paired(self.res, (U.SA, b, n), (U.SA, b, main), self.seeds)
            rows.append({"calibration images": n,
                         "SA calibration %": _ms(self.res.values(U.SA, b, self.seeds, "calib", n)),
                         "SA held-out %": _ms(self.res.values(U.SA, b, self.seeds, "held_out", n)),
                         f"held-out − (n = {main})": "" if n == main else _t(t)})
        small, large = min(self.p.calib_sizes), max(self.p.calib_sizes)
        t_small = paired(self.res, (U.SA, b, main), (U.SA, b, small), self.seeds)
        t_large = paired(self.res, (U.SA, b, large), (U.SA, b, main), self.seeds)
        self.claim("Fig. 11", PAPER["fig11_200"], f"n = {main} − n = {small}: {_t(t_small)}",
                   gain_verdict(t_small, claim_positive=False).replace("gain", f"gain from {small} to {main}"))
        if large > main:
            self.claim("Fig. 11", PAPER["fig11_1000"], f"n = {large} − n = {main}: {_t(t_large)}",
                       gain_verdict(t_large, claim_positive=False).replace("gain", f"gain from {main} to {large}"))
        else:
            self.claim("Fig. 11", PAPER["fig11_1000"], DASH,
                       f"not testable here: no calibration set larger than {main} in this plan")
        return [md_table(rows), ""]

    def sa_runs(self) -> List[str]:
        runs = self.res.sa_runs()
        self.csv_sa = [{k: v for k, v in r.items() if k not in ("best_state", "a_below_1")}
                       | {"layers_a_below_1": sum(r["a_below_1"]),
                          "best_state": ";".join(f"{a:.4g}/{b:.4g}" for a, b in r["best_state"])} for r in runs]
        if not runs:
            return [f"No finished SA run yet ({DASH}).", ""]
        capped = [r for r in runs if r["stop"] != "patience"]
        rows = [{"bits": r["bits"], "calibration images": r["n_calib"], "seed": r["seed"],
                 "iterations": r["iterations"], "stopped by": r["stop"],
                 "final T": f"{r['final_temperature']:.1e}", "evaluations": r["evaluations"],
                 "layers with a < 1": f"{sum(r['a_below_1'])}/{len(r['a_below_1'])}",
                 "CPU min": r.get("cpu_seconds", float("nan")) / 60} for r in runs]
        return [f"{len(runs)} SA run(s): {len(runs) - len(capped)} stopped by the paper's rule "
                f"(no (a, b) changed for {self.p.sa_patience} iterations), {len(capped)} by the cap "
                f"of {self.p.sa_cap} iterations" + (" (**the cap was hit**)." if capped else
                                                     " (never hit)."), "", md_table(rows, float_format=".1f"), ""]

    def ga(self) -> List[str]:
        runs = self.res.ga_runs()
        if not runs:
            self.claim("Fig. 6", PAPER["fig6"], DASH, "not testable here: no finished GA unit yet")
            for k in ("fig8_r2", "fig8_a", "fig8_acc"):
                self.claim("Fig. 8", PAPER[k], DASH, "not testable here: no finished GA unit yet")
            return [f"No finished GA run yet ({DASH}).", ""]
        rows = []
        for r in runs:
            L = r["layers"]
            rows.append({"bits": r["bits"], "seed": r["seed"],
                         "Eq. 2 R^2 per layer": " ".join(f"{x['fit_r2']:.3f}" for x in L),
                         "fitted a per layer": " ".join(f"{x['fit_a']:.3g}" for x in L),
                         "GA held-out %": r["held_out"],
                         "Eq. 2 fit held-out %": r["fitted"]["held_out"] if "fitted" in r else
                         "no increasing fit in " + ", ".join(r.get("fitted_unusable", ["a layer"])),
                         "layer 0 alone: search calib % / held-out %":
                             f"{L[0]['search_calib']:.2f} / {r['layer0_alone']['held_out']:.2f}",
                         "CPU min": r.get("cpu_seconds", float("nan")) / 60})
        # Fig. 6 in its own setting: layer 0 searched with the others float (4 bits = 16 values)
        b6 = 4 if 4 in self.p.ga_bits else self.p.ga_bits[0]
        six = [(r, self.res.unit(FLOAT, None, r["seed"])) for r in runs if r["bits"] == b6]
        six = [(r, f) for r, f in six if f is not None]
        if six:
            ge = sum(r["layers"][0]["search_calib"] >= f["calib"] for r, f in six)
            self.claim("Fig. 6", PAPER["fig6"],
                       f"layer 0, {2 ** b6} values: search accuracy ≥ float's on the calibration set in "
                       f"{ge}/{len(six)} seeds; the other layers are searched with the earlier ones "
                       "quantized, not the paper's setting",
                       ("reproduced" if ge == len(six) else "not reproduced") + " for layer 0; other layers "
                       "not testable here (the progressive GA)")
        else:
            self.claim("Fig. 6", PAPER["fig6"], DASH, f"not testable here: no finished {b6}-bit GA unit yet")
        r2 = [x["fit_r2"] for r in runs for x in r["layers"]]
        self.claim("Fig. 8", PAPER["fig8_r2"], f"R^2 {min(r2):.3f}-{max(r2):.3f} over every layer and run "
                   "(symmetric fits only)",
                   ("reproduced" if min(r2) >= R2_GOOD else "not reproduced") + f": R^2 ≥ {R2_GOOD:g} "
                   + ("in every layer" if min(r2) >= R2_GOOD else "fails in some layer")
                   + "; symmetric vs Eq. 1 not compared (the GA runs symmetric only)")
        below = sum(r["layers"][0]["fit_a"] < 1 for r in runs)
        first_a = ", ".join(f"{r['layers'][0]['fit_a']:.3g}" for r in runs)
        self.claim("Fig. 8", PAPER["fig8_a"], f"layer 0's fitted a < 1 in {below}/{len(runs)} runs "
                   f"(a = {first_a})", "reproduced: a < 1 for layer 0" if below == len(runs) else
                   f"not reproduced: a ≥ 1 for layer 0 in {len(runs) - below}/{len(runs)} runs")
        fits = [(r, self.res.unit(FLOAT, None, r["seed"])) for r in runs if "fitted" in r]
        fits = [(r, f) for r, f in fits if f is not None and r["bits"] == b6]
        if fits:
            worst = max(f["held_out"] - r["fitted"]["held_out"] for r, f in fits)
            self.claim("Fig. 8", PAPER["fig8_acc"], f"{2 ** b6} values, every layer at its Eq. 2 fit at "
                       f"once: at most {worst:.2f} points below float (held-out)",
                       ("reproduced" if worst <= 1.2 else "not reproduced") + " (the paper fits one layer "
                       "at a time, the others FP32)")
        else:
            self.claim("Fig. 8", PAPER["fig8_acc"], DASH, f"not testable here: no finished {b6}-bit GA unit yet")
        return [md_table(rows), ""]

    def fig5(self) -> List[str]:
        """One GA codebook for every layer: symmetric vs asymmetric, against float."""
        net, early = self.res.network, 50
        at = lambda mode, s, g: net[(mode, s)]["best_history"][min(g, len(net[(mode, s)]["best_history"]) - 1)]  # noqa: E731
        if not net:
            self.claim("Fig. 5", PAPER["fig5"], DASH, "not testable here: no finished Fig. 5 unit yet")
            return [f"No finished Fig. 5 unit yet ({DASH}).", ""]
        rows = []
        for mode, seed in sorted(net, key=lambda k: (k[1], k[0])):
            f, last = self.res.unit(FLOAT, None, seed), len(net[(mode, seed)]["best_history"]) - 1
            rows.append({"seed": seed, "mode": mode, f"best calib % at generation {early}": at(mode, seed, early),
                         f"at {last}": at(mode, seed, last), "float calib %": f["calib"] if f else DASH,
                         "held-out %": net[(mode, seed)]["held_out"],
                         "float held-out %": f["held_out"] if f else DASH})
        both = sorted(s for m, s in net if m == "symmetric" and ("asymmetric", s) in net
                      and self.res.unit(FLOAT, None, s) is not None)
        if not both:
            self.claim("Fig. 5", PAPER["fig5"], DASH, "not testable here: no seed with both modes yet")
            return [md_table(rows), ""]
        end_ = 10 ** 9   # the last generation
        t_early = paired_t([at("symmetric", s, early) for s in both], [at("asymmetric", s, early) for s in both])
        t_end = paired_t([at("symmetric", s, end_) for s in both], [at("asymmetric", s, end_) for s in both])
        below = sum(max(at(m, s, end_) for m in ("symmetric", "asymmetric")) < self.res.unit(FLOAT, None, s)["calib"]
                    for s in both)
        self.claim("Fig. 5", PAPER["fig5"],
                   f"symmetric − asymmetric best calibration accuracy at generation {early}: {_t(t_early)}; "
                   f"at the end: {_t(t_end)}; both below float in {below}/{len(both)} seeds",
                   gain_verdict(t_end).replace("95 % CI", "symmetric higher at the end: 95 % CI")
                   + f"; both below float: {'reproduced' if below == len(both) else 'not reproduced'}")
        return [md_table(rows), ""]

    def fig9(self) -> List[str]:
        h = self.res.heatmap
        if h is None:
            self.claim("Fig. 9", PAPER["fig9"], DASH, "not testable here: the heat-map unit has not finished")
            return [f"The heat-map unit has not finished ({DASH}).", ""]
        rows, conv, fc = [], [], []
        for L in h["layers"]:
            g = np.array(L["grid"], dtype=float)
            ok = g[np.isfinite(g)]
            share = float(np.mean(ok >= h["float_calib"] - NEAR)) if ok.size else float("nan")
            (fc if L["name"].startswith("classifier") else conv).append(share)
            i, j = np.unravel_index(np.nanargmax(g), g.shape)
            rows.append({"layer": L["name"], f"cells within {NEAR:g} point of float": f"{100 * share:.0f} %",
                         "best calib %": float(np.nanmax(g)), "at a": h["a_tilde"][i] ** (2 ** self.p.heat_bits),
                         "|b| / max|w|": h["beta"][j]})
        wide = statistics.fmean(fc) > statistics.fmean(conv)
        self.claim("Fig. 9", PAPER["fig9"], f"good cells: FC layers {statistics.fmean(fc) * 100:.0f} %, conv "
                   f"layers {statistics.fmean(conv) * 100:.0f} % (mean share)",
                   "reproduced" if wide else "not reproduced")
        return [f"Seed {self.seeds[0]}, {2 ** self.p.heat_bits} values, one layer on Eq. 2 at each of "
                f"{len(h['a_tilde'])} x {len(h['beta'])} grid points (a^(1/N) from {h['a_tilde'][0]:g} to "
                f"{h['a_tilde'][-1]:g}, both families; |b| from {h['beta'][0]:g} to {h['beta'][-1]:g} "
                f"times the layer's max |w|), the others float; calibration accuracy (float "
                f"{h['float_calib']:.2f} %).", "", md_table(rows, float_format=".3g"), ""]


def _direction(t, a: str, b: str) -> str:
    if t.ci_low is None:
        return f"{a} {'above' if t.mean > 0 else 'below'} {b} (one seed, no interval)"
    if t.ci_low > 0:
        return f"{a} above {b} (95 % CI above 0)"
    if t.ci_high < 0:
        return f"{a} below {b} (95 % CI below 0)"
    return "no difference detected (95 % CI spans 0)"


def cost_lines(res: Results, phases, stored, key_of, estimate: Callable, cost_class: Callable,
               workers: int) -> List[str]:
    """Measured CPU and wall time per unit class, and the estimate for the whole run and for
    the units still missing (CPU time: what other jobs on the machine do not change)."""
    cpu: Dict[str, List[float]] = {}
    wall: Dict[str, List[float]] = {}
    for j in (j for js in phases.values() for j in js):
        r = stored.get(key_of(j))
        if r is not None:
            scale = j.get("n_calib", res.plan.n_calib) / res.plan.n_calib if j["kind"] == "search" else 1
            wall.setdefault(cost_class(j), []).append(r["seconds"] / scale)
            if "cpu_seconds" in r:
                cpu.setdefault(cost_class(j), []).append(r["cpu_seconds"] / scale)
    means = {k: statistics.fmean(v) for k, v in cpu.items()}
    missing = [j for js in phases.values() for j in js if stored.get(key_of(j)) is None]
    left = sum(estimate(j, means) for j in missing)
    total = sum(estimate(j, means) for js in phases.values() for j in js)
    per = ", ".join(f"{k} {statistics.fmean(wall[k]) / 60:.1f} min wall"
                    + (f" / {means[k] / 60:.1f} min CPU" if k in means else "") + f" ({len(wall[k])})"
                    for k in sorted(wall))
    return [f"- Measured per unit (searches scaled to {res.plan.n_calib} calibration images; unit "
            f"count in parentheses): {per or DASH}. Wall time grows with what else runs on the "
            "machine; CPU time does not.",
            f"- Estimate from the measured CPU times (the script's priors where none is measured): "
            f"the whole run {total / 3600:.1f} CPU hours, about {total / 3600 / workers:.1f} h on "
            f"{workers} free core(s); still to run: {len(missing)} unit(s), about "
            f"{left / 3600 / workers:.1f} h."]


def protocol(plan, seeds) -> List[str]:
    p = plan
    return [
        f"- **Model and data**: LeNet-5 (2 conv + 3 FC weight layers), one float model per seed "
        f"({len(seeds)} seeds), trained by `lb.models.pretrained('lenet5', seed=s, train_size="
        f"{p['train_size']}, epochs={p['epochs']})` (SGD + Nesterov, cosine rate). Calibration "
        f"images (the SA/GA fitness): {p['n_calib']} drawn per seed from the "
        f"{60000 - p['train_size']} training images the model was not trained on. Held-out: "
        f"{'the 10k' if p['n_test'] is None else p['n_test']} Fashion-MNIST test images.",
        "- **Quantization**: every weight layer (output layer included) per tensor, biases and "
        "activations float, as in the paper. VBQ: 2^b representative values per layer, bins "
        "at the midpoints. Lloyd-Max: the 2^b-value MSE-optimal codebook per layer. Uniform "
        "symmetric: 2^b − 1 levels, L2-optimal step per layer. Power of two: sign + 2^(b−1) − 1 "
        "exponents.",
        f"- **VBQ-SA** (the paper's final method): `lb.vbq.sa_layers`, Eq. 2 per layer, start a = 1.25 "
        "and b spanning ±max|w| (the paper's b = 0.05 fits VGG16's weights), T0 = 1, cooling 0.95, "
        "neighbours (a+Δa, b), (a, b+Δb), (a+Δa, b+Δb) with Δ uniform in ±aT/2, ±|b|T/2, "
        f"P = exp(100 (e' − e) / T). A neighbour whose a crosses 1 takes b's other sign (Eq. 2 is "
        "odd: the same values), so each layer can reach the a < 1 family. Stop: no layer's (a, b) "
        f"changed for {p['sa_patience']} iterations (the paper's rule); cap {p['sa_cap']} "
        "iterations, recorded when hit. The best state seen is evaluated.",
        f"- **VBQ-GA**: the paper's GA in symmetric mode (after Fig. 8), population "
        f"{p['population']}, {p['generations']} generations, R_r / 2R_c / R_m = 30 / 50 / 20 %, "
        "random initial genomes. One layer after another from the input: layer l's fitness has "
        "the earlier layers at their GA codebooks and the later ones float (for layer 0 this is "
        "Fig. 6's setting); then every layer at its codebook. Fig. 5: the same GA with one "
        f"codebook shared by every layer, symmetric and asymmetric, on the first {p['fig5_seeds']} "
        "seed(s).",
        "- **Statistics**: each method's calibration and held-out accuracy side by side. "
        "Differences of held-out accuracy: a paired t over seeds (n − 1 df) with its 95 % CI, "
        "and McNemar's test per seed on the held-out images (the difference with its 95 % Wald "
        "interval for paired proportions, and the mid-p value).",
        "- **Verdicts**: Table I: reproduced when the upper end of the 95 % CI of the drop "
        "against float is at most the paper's VGG16 drop (4 bits 2.54, 5 bits 1.36 points: what "
        "the paper calls comparable); not reproduced when its lower end is above; inconclusive "
        "between. A claimed gain: reproduced when the 95 % CI of the difference lies above 0. A "
        "claimed absence of gain (Fig. 11): reproduced unless the CI lies above 0. "
        f"Fig. 8: R^2 ≥ {R2_GOOD:g} in every layer. Fig. 9: a larger share of cells within "
        f"{NEAR:g} point of float in FC layers than in conv layers.",
    ]


DIFFERENCES = [
    "- The paper's VGG16 and AlexNet on ImageNet (5000 validation images) are replaced by "
    "LeNet-5 on Fashion-MNIST (10 classes; top-5 is not reported). Absolute accuracies are not "
    "comparable; drops against float and differences between methods are what is tested.",
    "- Bits: the issue's example, 3 bits, and 2 bits both run, so that at least one of them "
    "gives uniform quantization 5 points or more to lose; 'The setting' shows which. N runs "
    "from 4 to 32 values (Fig. 10); the paper's Table I has 4 and 5 bits.",
    "- SmallVGG does not give the room the setting needs: with `lb.models.pretrained('vgg', "
    "width=8)` uniform symmetric at 3 bits loses 3.45 points (91.54 → 88.09 % on the 10k test "
    "images), and one of its evaluations costs about 2.5x LeNet-5's. LeNet-5 is used instead.",
    "- The paper evaluates the GA per layer with the other layers FP32 (Fig. 6) and never "
    "quantizes every layer with GA codebooks; the progressive GA here is lowbit's extension, "
    "so that VBQ-GA can be compared with the other methods on a fully quantized model.",
    "- With an accuracy fitness, a neighbour of equal accuracy is always accepted (P = 1 for "
    "e' ≥ e), so the paper's stopping rule fires only when the temperature has shrunk the "
    "moves below float64 resolution (T ≈ 1e-16, about 700 iterations): that is when the runs "
    "here stop.",
]


def write(out: Path, plan, phases, stored, key_of, info: RunInfo, estimate, cost_class) -> None:
    res = Results(plan, phases, stored, key_of)
    pg = Page(res, info.seeds)
    table = pg.table()
    room = pg.room()
    pg.comparisons()
    pg.claims_main()
    fig10, fig11, sa, ga, fig9 = pg.fig10(), pg.fig11(), pg.sa_runs(), pg.ga(), pg.fig9()
    fig5 = pg.fig5()
    plots.accuracy(res, pg.methods, plan.bits, info.seeds, out / plots.ACCURACY_PNG)
    plots.calibration(res, plan.fig11_bits, plan.calib_sizes, info.seeds, out / plots.CALIBRATION_PNG)
    compute = sum(r["seconds"] for r in stored.values() if r is not None)
    head = [
        "# Paper 003: variable bin-size quantization (VBQ)", "",
        "Nogami et al., \"Optimizing weight value quantization for CNN inference\": VBQ codebooks "
        "searched by a genetic algorithm, the formula V(x) = sign(x) b (a^|x| − 1) (Eq. 2) and "
        "per-layer simulated annealing on its (a, b).", "",
        f"- Command (from the repository root): `{info.command}`",
        f"- Date: {datetime.date.today().isoformat()}; machine: {machine()}; {info.workers} dask "
        f"worker(s) x {info.threads} thread(s)",
        f"- {res.done} of {res.total} units in `{info.store}`, {compute / 3600:.2f} h of unit compute; "
        f"this invocation {info.wall / 60:.1f} min wall (finished units are read from the store). "
        + (f"A cell shown as {DASH} has no finished units yet: the same command resumes the run."
           if res.done < res.total else "Every unit has finished."),
        *cost_lines(res, phases, stored, key_of, estimate, cost_class, info.workers), "",
        "## Claims and verdicts", "", md_table(pg.claims), "",
        "## The setting", "", *room,
        "## Accuracy: every layer quantized, calibration and held-out side by side", "",
        "Top-1 %, mean ± sd over seeds; held-out − float: paired t over seeds, mean [95 % CI] "
        "in points. Per-seed values: `repro_003_table.csv`.", "", *table,
        f"![Accuracy against bits]({plots.ACCURACY_PNG})", "",
        "## Paired tests on the held-out images", "",
        "Held-out accuracy differences in points. Per-seed McNemar counts: `repro_003_tests.csv`.", "",
        md_table(pg.tests) if pg.tests else DASH, "",
        "## Figs. 10, 12, 13: SA against the number of values N", "", *fig10,
        f"## Fig. 11: SA against the number of calibration images ({2 ** plan.fig11_bits} values)", "", *fig11,
        f"![Fig. 11]({plots.CALIBRATION_PNG})", "",
        "## The SA runs: why each stopped", "", *sa,
        "## VBQ-GA: Eq. 2 fits of its codebooks (Fig. 8), layer 0 alone (Fig. 6)", "", *ga,
        "## Fig. 9: heat map of one layer over (a^(1/N), b)", "", *fig9,
        f"## Fig. 5: one {2 ** plan.fig5_bits}-value GA codebook for every layer", "",
        f"Population {info.plan['population']}, {info.plan['generations']} generations, on the first "
        f"{plan.fig5_seeds} seed(s); best calibration accuracy of the population.", "", *fig5,
        "## Protocol", "", *protocol(info.plan, info.seeds), "",
        "## What differs from the paper", "", *DIFFERENCES, ""]
    atomic_write(out / "repro_003.md", "\n".join(head))
    for name, rows in (("table", pg.csv_table), ("tests", pg.csv_tests), ("sa_runs", pg.csv_sa),
                       ("claims", pg.claims)):
        if rows:
            atomic_write(out / f"repro_003_{name}.csv", rows_to_csv(rows))
    print(f"wrote {out / 'repro_003.md'}", flush=True)
