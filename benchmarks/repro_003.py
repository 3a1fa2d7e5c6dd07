"""Reproduction of paper 003 (Nogami et al., "Optimizing weight value quantization for CNN
inference": variable bin-size quantization (VBQ), its GA, Eq. 2 and per-layer SA),
following the paper's search protocol at sizes that fit a 2-core machine.

    .venv/bin/python benchmarks/repro_003.py [--seeds 5] [--workers 2] [--quick] [--out DIR]
    .venv/bin/python benchmarks/repro_003.py --report-only      # the page from the stored units

Setting: LeNet-5 on Fashion-MNIST, every weight layer quantized per tensor, at 2 and 3 bits
(where uniform quantization loses about 5 points or more: room for VBQ to gain), 4 bits
(the paper's "4-bit VBQ is comparable to FP32") and 5 bits (SA only, Table I). Per seed: a float
model trained on the first 55k training images, 1000 calibration images drawn from the
other 5k (images the model never saw), the 10k test images held out. VBQ-SA: Eq. 2 with
the paper's SA constants, run until its own rule stops it (no (a, b) changed for 30
iterations; the cap, 100k iterations, is recorded if it is ever hit). VBQ-GA: the paper's
symmetric GA, population 50, 200 generations, one layer after another. Baselines:
Lloyd-Max, uniform symmetric (L2-optimal step), power of two, float. Paired tests: McNemar
per seed on the 10k test images, and a paired t over seeds (n - 1 df) with 95 % CIs.

Each unit (a float model with its baselines, one search, the heat map) is one dask job,
appended to <out>/repro_003_runs.jsonl as it finishes: running the same command again
resumes. Writes <out>/repro_003.md (the paper's number beside ours, a verdict per claim)
and repro_003_{table,tests,sa_runs,claims}.csv.

Cost: the page prints the measured CPU time per unit class and the estimate of what is
left (UNIT_SECONDS holds the priors for a class with no finished unit yet). At 5 seeds the
run is 57 units, about 5.5 CPU hours, most of it the 15 GA searches.
"""
import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _repro_003_page as page  # noqa: E402
import _repro_003_units as U  # noqa: E402
from _timing import set_threads  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
STORE = "repro_003_runs.jsonl"


@dataclass(frozen=True)
class Plan:
    model: str
    train_size: int               # the float model's training images; calibration from the rest
    epochs: int
    n_test: object                # held-out test images (None: all 10k)
    batch: int                    # evaluation batch (250 is ~4x faster than 1000 on 2 cores)
    n_calib: int                  # the calibration set of every table (paper: 1000)
    calib_sizes: Sequence[int]    # Fig. 11 (SA at fig11_bits)
    fig11_bits: int
    sa_bits: Sequence[int]        # Table I, Fig. 10
    ga_bits: Sequence[int]
    population: int
    generations: int
    sa_patience: int
    sa_cap: int
    heat_grid: int                # Fig. 9: points per axis (0: no heat map)
    heat_bits: int
    fig5_seeds: int               # Fig. 5 (one codebook for the network) on the first seeds
    fig5_bits: int

    def setting(self) -> dict:
        return {"model": self.model, "train_size": self.train_size, "epochs": self.epochs,
                "n_test": self.n_test, "batch": self.batch}

    @property
    def bits(self) -> List[int]:
        return sorted(set(self.sa_bits) | set(self.ga_bits) | {self.fig11_bits})


FULL = Plan(model="lenet5", train_size=55000, epochs=8, n_test=None, batch=250, n_calib=1000,
            calib_sizes=(200, 1000, 2000), fig11_bits=4, sa_bits=(2, 3, 4, 5), ga_bits=(2, 3, 4),
            population=50, generations=200, sa_patience=30, sa_cap=100_000, heat_grid=12, heat_bits=3,
            fig5_seeds=3, fig5_bits=4)
# Seconds: a float model trained in seconds (2000 images, 1 epoch; kept in the lowbit model
# cache like every float model, so later quick runs load it), searches of a few evaluations.
QUICK = Plan(model="lenet5", train_size=2000, epochs=1, n_test=500, batch=250, n_calib=100,
             calib_sizes=(50, 100), fig11_bits=4, sa_bits=(3, 4), ga_bits=(3,),
             population=6, generations=1, sa_patience=2, sa_cap=6, heat_grid=3, heat_bits=3,
             fig5_seeds=1, fig5_bits=4)
# CPU seconds per unit measured on the project's VM (1 thread; searches at 1000
# calibration images, the others scale with it): the estimate for a unit class the store
# has no CPU time of yet. The float unit is the time to train its model.
UNIT_SECONDS = {"float": 90, "heatmap": 60, "SA": 200, "GA": 700, "network_ga": 360}
HEAT_A_TILDE, HEAT_BETA = (0.8, 1.6), (0.05, 30.0)


def search_params(plan: Plan, method: str) -> dict:
    if method == U.SA:   # the paper's SA constants are lb.vbq.sa's defaults
        return {"patience": plan.sa_patience, "max_iterations": plan.sa_cap}
    return {"population": plan.population, "generations": plan.generations, "rates": [0.3, 0.5, 0.2]}


def jobs(plan: Plan, seeds: Sequence[int]) -> Dict[str, List[dict]]:
    """Every unit of the run, by phase: the float models first (the searches load them)."""
    s = plan.setting()
    search = lambda seed, method, bits, n: U.job(  # noqa: E731
        "search", s, seed, method=method, bits=bits, n_calib=n, search=search_params(plan, method))
    floats = [U.job("float", s, seed, bits=plan.bits, n_calib=plan.n_calib) for seed in seeds]
    searches = [search(seed, U.GA, b, plan.n_calib) for seed in seeds for b in plan.ga_bits]
    searches += [search(seed, U.SA, b, plan.n_calib) for seed in seeds for b in plan.sa_bits]
    searches += [search(seed, U.SA, plan.fig11_bits, n) for seed in seeds for n in plan.calib_sizes
                 if n != plan.n_calib]
    if plan.heat_grid:
        searches.append(U.job("heatmap", s, seeds[0], bits=plan.heat_bits, n_calib=plan.n_calib,
                              grid=plan.heat_grid, a_tilde=list(HEAT_A_TILDE), beta=list(HEAT_BETA)))
    searches += [U.job("network_ga", s, seed, bits=plan.fig5_bits, mode=mode, n_calib=plan.n_calib,
                       search=search_params(plan, U.GA))
                 for seed in seeds[:plan.fig5_seeds] for mode in ("symmetric", "asymmetric")]
    return {"float": floats, "search": sorted(searches, key=lambda j: -estimated_seconds(j, plan))}


def cost_class(j: dict) -> str:
    return j["kind"] if j["kind"] != "search" else j["method"].split("-")[1]


def estimated_seconds(j: dict, plan: Plan, measured: Dict[str, float] = None) -> float:
    """A unit's expected cost: the measured mean of its class, scaled by its calibration
    set (searches) or the prior UNIT_SECONDS."""
    per = dict(UNIT_SECONDS, **(measured or {}))[cost_class(j)]
    return per * (j["n_calib"] / plan.n_calib if j["kind"] in ("search", "network_ga") else 1)


def engine():
    """lowbit's sweep engine (Sweep, job_key): lowbit.cluster, or lowbit.capacity in trees
    from before it moved there."""
    try:
        import lowbit.cluster as eng
    except ImportError:
        import lowbit.capacity as eng
    return eng


def key_of(j: dict) -> str:
    return engine().job_key({"fn": "_repro_003_units.run_job", "job": j})


def selected(j: dict, only: Sequence[str]) -> bool:
    """--only CLASS[:BITS[:SEED]] (CLASS: float, SA, GA, heatmap, network_ga); no filter:
    every unit."""
    if not only:
        return True
    for spec in only:
        cls, *rest = spec.split(":")
        if cls == cost_class(j) and (not rest or not rest[0] or int(rest[0]) == j.get("bits")) \
                and (len(rest) < 2 or int(rest[1]) == j["seed"]):
            return True
    return False


def make_runner(store, sweep, workers: int, threads: int, log=print):
    """jobs -> None: the ones missing from the store run (serially in this process with
    one worker, else on the dask sweep) and are stored as each finishes."""
    def run(todo_jobs: List[dict]) -> None:
        todo = [j for j in todo_jobs if key_of(j) not in store]
        log(f"running {len(todo)} unit(s) ({len(todo_jobs) - len(todo)} already stored)", flush=True)
        if not todo:
            return
        if workers == 1:
            set_threads(threads)
            for j in todo:
                store.put(key_of(j), U.run_job(j))
        else:
            sweep.map(U.run_job, todo, desc="repro_003")
    return run


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds (for the test)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    ap.add_argument("--workers", type=int, default=2, help="dask worker processes (1: in this process)")
    ap.add_argument("--threads", type=int, default=1, help="torch/lowbit threads per worker (default 1)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results; --quick: a temporary folder)")
    ap.add_argument("--report-only", action="store_true", help="write the page from the store, run nothing")
    ap.add_argument("--only", action="append", default=[], metavar="CLASS[:BITS[:SEED]]",
                    help="run only these units (float, SA, GA, heatmap, network_ga; repeatable), e.g. to "
                         "measure unit costs: --only float --only SA:4:0; the page shows every stored unit")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.workers < 1 or args.threads < 1:
        ap.error("--seeds, --workers and --threads must be >= 1")
    for spec in args.only:
        cls, *rest = spec.split(":")
        if cls not in UNIT_SECONDS or len(rest) > 2 or not all(r == "" or r.isdigit() for r in rest):
            ap.error(f"--only {spec!r}: expected CLASS[:BITS[:SEED]] with CLASS in {sorted(UNIT_SECONDS)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = Path(args.out) if args.out is not None else (
        Path(tempfile.mkdtemp(prefix="repro_003_quick_")) if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    phases = jobs(plan, seeds)
    print(f"repro_003: {'quick' if args.quick else 'full'} sizes, {len(seeds)} seed(s), "
          f"{args.workers} worker(s) x {args.threads} thread(s), out {out}", flush=True)
    t0 = time.perf_counter()
    with engine().Sweep(out / STORE, n_workers=args.workers, threads_per_worker=args.threads,
                        progress=False) as sweep:
        if not args.report_only:
            run = make_runner(sweep.store, sweep, args.workers, args.threads)
            for name in ("float", "search"):
                print(f"phase {name}", flush=True)
                run([j for j in phases[name] if selected(j, args.only)])
        stored = {key_of(j): sweep.store.get(key_of(j)) for js in phases.values() for j in js}
        run_info = page.RunInfo(command=page.command(args.argv), workers=args.workers,
                                threads=args.threads, wall=time.perf_counter() - t0,
                                plan=asdict(plan), seeds=seeds, store=STORE)
        page.write(out, plan, phases, stored, key_of, run_info,
                   lambda j, measured: estimated_seconds(j, plan, measured), cost_class)
    print(f"repro_003: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
