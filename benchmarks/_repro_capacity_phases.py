"""The steps of repro_capacity.py, each a batch of dask units read from (or added to) the
run's store: capacity (searches, N scans, points), the long-budget retraining, the
quantization under capacity, the extra seeds, the loss surfaces.

Every step returns plain dicts; a network whose units are not all stored (only with
--report-only, which runs nothing) comes back with status 'missing' and the trainings it
has so far; the page marks it unfinished, and shows '–' where nothing is stored."""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import lowbit.capacity as cap
from _repro_capacity_plan import PAPER_FC_BITS, Model, Plan
from _repro_capacity_units import Missing, long_job, surface_job

SURFACE_BITS = [None, 8, 6, 4, 2]


@dataclass
class Context:
    plan: Plan
    sweep: cap.Sweep
    workers: int
    log: Callable[[str], None] = print
    cache: Optional[str] = None        # LeNet-5 weights of the surface step (None: lowbit's cache)


def map_each(ctx: Context, fn: Callable, jobs: List[Dict], desc: str) -> List[Optional[Dict]]:
    """The sweep's results of jobs, all in one batch; None for each job that is not stored
    (only a --report-only sweep raises Missing: then each job is looked up alone)."""
    try:
        return ctx.sweep.map(fn, jobs, desc=desc)
    except Missing:
        out = []
        for j in jobs:
            try:
                out.append(ctx.sweep.map(fn, [j], desc=desc)[0])
            except Missing:
                out.append(None)
        return out


# ---- networks --------------------------------------------------------------------------------

def describe(spec: Dict) -> Dict:
    """Name, family and parameter counts of a spec's network."""
    model = cap.build(spec)
    split = cap.parameter_split(model)
    return {"name": cap.spec_name(spec), "spec": spec, "family": spec["model"],
            "params": cap.count_parameters(model), "conv_params": split["conv"], "fc_params": split["fc"]}


def conv_bits(info: Dict, capacity: float) -> Optional[float]:
    """Paper 001's per-convolution-parameter capacity (2.3 bits credited per fc parameter)."""
    if not info["conv_params"]:
        return None
    return cap.conv_bits_per_parameter(capacity, info["conv_params"], info["fc_params"], PAPER_FC_BITS)


def job_for(ctx: Context, spec: Dict, n: int, hparams: Dict, seed: int) -> Dict:
    fam = ctx.plan.families[spec["model"]]
    return cap.capacity_job(spec, int(n), hparams, seed, fam.max_epochs, fam.eval_every)


def training(job: Dict, record: Dict, stage: str) -> Dict:
    """One training as the page lists it."""
    return {"seed": job["seed"], "stage": stage, "n": job["n"], "hparams": job["hparams"], **record}


def best_training(trainings: Sequence[Dict], seed: int, key: str = "mi") -> Optional[Dict]:
    own = [t for t in trainings if t["seed"] == seed]
    return max(own, key=lambda t: t[key]) if own else None


def stored_trainings(ctx: Context, spec: Dict) -> List[Dict]:
    """Seed 0's capacity-step trainings of this network already in the store: what an
    unfinished search or scan has so far."""
    import json
    fam = ctx.plan.families[spec["model"]]
    out = []
    for key, record in ctx.sweep.store.items():
        k = json.loads(key)
        job = k.get("job", {})
        if (k.get("fn", "").endswith(".memorize") and isinstance(job, dict) and job.get("spec") == spec
                and job.get("seed") == 0 and job.get("max_epochs") == fam.max_epochs
                and job.get("accuracy") == "best"):
            out.append(training(job, record, "unfinished"))
    return sorted(out, key=lambda t: t["n"])


def _missing(ctx: Context, info: Dict, why: str) -> Dict:
    """A network whose step is not finished: status 'missing', with its trainings so far."""
    return {**info, "status": "missing", "why": why, "trainings": stored_trainings(ctx, info["spec"]),
            "hparams": None}


# ---- capacity, seed 0 ------------------------------------------------------------------------

def search(ctx: Context, model: Model) -> Dict:
    """The family's tuned network: lowbit's capacity_search (coarse and fine N, a grid and
    TPE over the hyper-parameters, a last N refinement), every training a unit."""
    info = {**describe(model.spec), "role": model.role}
    fam = ctx.plan.families[info["family"]]
    ctx.log(f"capacity search: {info['name']}")
    try:
        res = cap.measure_capacity(model.spec, ctx.sweep, max_epochs=fam.max_epochs,
                                   batch_size=int(fam.defaults["batch_size"]), fine_points=fam.fine_points,
                                   grid_points=fam.grid_points, trials=fam.trials, seed=0, batch=ctx.workers,
                                   defaults={k: v for k, v in fam.defaults.items() if k != "batch_size"},
                                   eval_every=fam.eval_every, fine_range=fam.fine_range)
    except Missing:
        return _missing(ctx, info, "search not finished")
    trainings = []
    for e in res.evaluations:
        job = job_for(ctx, model.spec, e["n"], e["hparams"], 0)
        trainings.append(training(job, ctx.sweep.store.get(ctx.sweep.key(cap.memorize, job)), e["stage"]))
    return {**info, "status": "done", "hparams": res.hparams, "trainings": trainings}


def _grow(t: Dict, step: float) -> bool:
    """A scan whose best N is its smallest or largest grows one point that way."""
    if t["extend"] <= 0 or step <= 1:
        return False
    by_n = sorted(t["done"].items())
    best = max(by_n, key=lambda kv: kv[1]["mi"])[0]
    lo, hi = by_n[0][0], by_n[-1][0]
    new = None
    if best == lo and lo > 16:
        new = max(16, int(round(lo / step)))
    elif best == hi:
        new = int(round(hi * step))
        if t["limit"] is not None:
            new = min(new, t["limit"])
    if new is None or new in t["done"]:
        return False
    t["ns"].append(new)
    t["extend"] -= 1
    return True


def run_scans(ctx: Context, tasks: List[Dict], stage: str) -> None:
    """N scans: each task {"spec", "seed", "hparams", "ns", "extend", "step"} trains its
    N values (all tasks' units in one batch), then grows at the edge where its best N lies.
    Fills task["done"] (N -> record) and task["status"]."""
    for t in tasks:
        t.setdefault("done", {})
        t["limit"] = cap.input_limit(t["spec"])
        t["ns"] = sorted({min(n, t["limit"]) if t["limit"] else n for n in t["ns"]})
    pending = list(tasks)
    while pending:
        batch = []
        for t in pending:
            for n in t["ns"]:
                if n not in t["done"]:
                    batch.append((t, n, job_for(ctx, t["spec"], n, t["hparams"], t["seed"])))
        records = map_each(ctx, cap.memorize, [j for _, _, j in batch], stage)
        for (t, n, j), r in zip(batch, records):
            if r is None:
                t["status"] = "missing"
            else:
                t["done"][n] = training(j, r, stage)
        pending = [t for t in pending if t.get("status") != "missing" and _grow(t, t["step"])]
    for t in tasks:
        t.setdefault("status", "done")


def _step(factors: Sequence[float]) -> float:
    return max(b / a for a, b in zip(factors, factors[1:])) if len(factors) > 1 else 1.0


def capacity(ctx: Context) -> Dict[str, Dict]:
    """Seed 0 of every network of the plan: the tuned searches first (one after another),
    then the other networks' N scans at their family's tuned hyper-parameters, and the
    fixed points (all in one batch)."""
    plan = ctx.plan
    results: Dict[str, Dict] = {}
    tuned: Dict[str, Dict] = {}
    for m in plan.models:
        if m.role == "search":
            r = search(ctx, m)
            results[r["name"]] = r
            tuned.setdefault(r["family"], r)
    tasks = []
    for m in plan.models:
        if m.role == "search":
            continue
        info = {**describe(m.spec), "role": m.role}
        fam = plan.families[info["family"]]
        ref = tuned.get(info["family"])
        if ref is None or ref["status"] != "done":
            results[info["name"]] = _missing(ctx, info, "its family's search is not finished")
            continue
        if m.role == "points":
            ns = list(m.points)
            extend = 0
        else:
            best = best_training(ref["trainings"], 0)
            ratio = best["n"] / ref["params"]
            ns = [max(16, int(round(f * ratio * info["params"]))) for f in fam.scan]
            extend = fam.max_extend
        results[info["name"]] = info
        tasks.append({"name": info["name"], "spec": m.spec, "seed": 0, "hparams": ref["hparams"], "ns": ns,
                      "extend": extend, "step": _step(fam.scan)})
    if tasks:
        ctx.log(f"capacity scans: {', '.join(t['name'] for t in tasks)}")
        run_scans(ctx, tasks, "scan")
    for t in tasks:
        info = results[t["name"]]
        if t["status"] == "missing":
            results[t["name"]] = _missing(ctx, info, "scan not finished")
        else:
            results[t["name"]] = {**info, "status": "done", "hparams": t["hparams"],
                                  "trainings": sorted(t["done"].values(), key=lambda r: r["n"])}
    return results


# ---- extra seeds -----------------------------------------------------------------------------

def seeds(ctx: Context, results: Dict[str, Dict]) -> None:
    """Seeds 1.. of each network that asks for them: an N scan around seed 0's best N at
    seed 0's hyper-parameters (new data, new initialization, new batch order). Adds the
    trainings to results[name]["trainings"]; a network lacking some sets "seeds_missing"."""
    tasks = []
    for m in ctx.plan.models:
        name = cap.spec_name(m.spec)
        r = results[name]
        if m.seeds < 2 or r["status"] != "done":
            continue
        fam = ctx.plan.families[r["family"]]
        n0 = best_training(r["trainings"], 0)["n"]
        for s in range(1, m.seeds):
            tasks.append({"name": name, "spec": m.spec, "seed": s, "hparams": r["hparams"],
                          "ns": [int(round(f * n0)) for f in fam.seed_scan], "extend": 0, "step": 1.0})
    if not tasks:
        return
    ctx.log(f"seeds: {len(tasks)} scan(s)")
    run_scans(ctx, tasks, "seed")
    for t in tasks:
        r = results[t["name"]]
        if t["status"] == "missing":
            r.setdefault("seeds_missing", []).append(t["seed"])
        r["trainings"] = r["trainings"] + sorted(t["done"].values(), key=lambda x: x["n"])


def seed_summary(r: Dict) -> Dict[int, Dict]:
    """Per seed: the best training (capacity = its mutual information) and the capacity the
    same trainings give with the last epoch's accuracy instead of the best."""
    out = {}
    for s in sorted({t["seed"] for t in r["trainings"]}):
        if s in r.get("seeds_missing", []):
            continue
        best = best_training(r["trainings"], s)
        last = max(cap.mutual_information(t["last_accuracy"], t["n"]) for t in r["trainings"] if t["seed"] == s)
        out[s] = {"capacity": best["mi"], "n": best["n"], "accuracy": best["accuracy"],
                  "last_capacity": last, "hit_cap": best["hit_cap"], "epochs": best["epochs"]}
    return out


# ---- long budget -----------------------------------------------------------------------------

def long_phase(ctx: Context, results: Dict[str, Dict]) -> List[Dict]:
    """Each network marked `long`: seed 0's best (N, hyper-parameters) trained again with
    long_factor times the epoch cap and no plateau stop; the best accuracy so far is read
    at every multiple of the cap."""
    rows, jobs = [], []
    for m in ctx.plan.models:
        if not m.long:
            continue
        name = cap.spec_name(m.spec)
        r = results[name]
        fam = ctx.plan.families[r["family"]]
        row = {"name": name, "family": r["family"], "params": r["params"], "cap": fam.max_epochs,
               "factor": fam.long_factor, "status": "missing"}
        rows.append(row)
        if r["status"] != "done":
            continue
        best = best_training(r["trainings"], 0)
        job = {**job_for(ctx, m.spec, best["n"], r["hparams"], 0),
               "max_epochs": fam.max_epochs * fam.long_factor, "stop_on_plateau": False,
               "checkpoints": [fam.max_epochs * k for k in range(1, fam.long_factor + 1)]}
        row.update(n=best["n"], search=best)
        jobs.append((row, job))
    if not jobs:
        return rows
    ctx.log(f"long budget: {', '.join(row['name'] for row, _ in jobs)}")
    for (row, _), rec in zip(jobs, map_each(ctx, long_job, [j for _, j in jobs], "long")):
        if rec is not None:
            row.update(status="done", record=rec)
    return rows


# ---- quantization under capacity -------------------------------------------------------------

def quant_n(ctx: Context, results: Dict[str, Dict], info: Dict, ref_name: str) -> Optional[int]:
    """N at full capacity for a network without its own capacity measurement: the reference
    network's best N times the capacity the network should have (its parameters times the
    mean bits per parameter its family's measured networks store) over the reference's."""
    ref = results.get(ref_name)
    family = [r for r in results.values() if r["family"] == info["family"] and r["role"] != "points"]
    if ref is None or any(r["status"] != "done" for r in family):
        return None
    best_ref = best_training(ref["trainings"], 0)
    per_param = [best_training(r["trainings"], 0)["mi"] / r["params"] for r in family]
    estimate = sum(per_param) / len(per_param) * info["params"]
    return max(16, int(round(best_ref["n"] * estimate / best_ref["mi"])))


def quantization(ctx: Context, results: Dict[str, Dict]) -> List[Dict]:
    """Each quantized network at full capacity (its best N, seed 0) and half (N / 2):
    trained, then quantized 8 -> 6 -> 5 -> 4 -> 3 -> 2 bits with retraining after each."""
    plan = ctx.plan
    rows, jobs = [], []
    for q in plan.quant:
        info = describe(q.spec)
        fam = plan.families[info["family"]]
        ref = results.get(info["name"] if q.n_from is None else q.n_from)
        n_full, hparams = None, None
        if ref is not None and ref["status"] == "done":
            hparams = ref["hparams"]
            n_full = (best_training(ref["trainings"], 0)["n"] if q.n_from is None
                      else quant_n(ctx, results, info, q.n_from))
        for regime in ("full", "half"):
            row = {**info, "regime": regime, "status": "missing", "n_from": q.n_from}
            rows.append(row)
            if n_full is None:
                continue
            n = n_full if regime == "full" else max(n_full // 2, 1)
            job = {"spec": q.spec, "n": n, "hparams": hparams, "seed": 0, "max_epochs": fam.max_epochs,
                   "eval_every": fam.eval_every, "bits": list(plan.bits),
                   "retrain_epochs": plan.retrain_epochs, "keep_direct": True}
            row["n"] = n
            jobs.append((row, job))
    if not jobs:
        return rows
    ctx.log(f"quantization: {len(jobs)} unit(s)")
    for (row, _), rec in zip(jobs, map_each(ctx, cap.quantize_job, [j for _, j in jobs], "quantization")):
        if rec is not None:
            row.update(status="done", record=rec)
    return rows


# ---- loss surfaces ---------------------------------------------------------------------------

def surface(ctx: Context) -> Optional[List[Dict]]:
    """The loss-surface rows (None when not stored)."""
    job = {**ctx.plan.surface, "bits": SURFACE_BITS}
    if ctx.cache:
        job["cache"] = ctx.cache
    ctx.log("loss surfaces")
    try:
        return ctx.sweep.map(surface_job, [job], desc="surface")[0]["rows"]
    except Missing:
        return None


def safe_mean(values: Sequence[float]) -> Optional[float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None
