"""Reproduction of papers 000/001 (Boo, Shin, Sung: memorization capacity of DNNs under
parameter quantization): bits per parameter of FCDNNs (widths 32 and 64, depths 1-4),
CNN models A and B of Table 1 at 32 x 32 and LSTM(16) / LSTM(32); a long-budget
retraining that shows whether those capacities are still limited by the epoch cap; the
precision below which memorization drops at full and half capacity (FCDNNs, the
6-convolution CNN model D, LSTM(16)); loss surfaces of float and quantized LeNet-5.

    OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/repro_capacity.py [--workers 2]
        [--scheduler tcp://host:8786] [--out DIR] [--report-only] [--quick]

Every training is one unit on lowbit.capacity's dask Sweep (--workers local processes,
one torch thread each, or a running scheduler) and is appended to
<out>/repro_capacity_units.jsonl as it finishes: running the same command again resumes
where an interrupted run stopped. --report-only runs nothing and rewrites the page from
the store (units not there show as '–'). The page is also rewritten after every step.
Writes <out>/repro_capacity.md with repro_capacity_{capacity,trainings,long,quantization,
surface,claims}.csv and repro_capacity_{curves,bits,long,quantization,surface}.png.

Budget. Unit costs measured on this 2-core AMD EPYC VM with other jobs sharing it (load
average 6-19, so CPU times run high), CPU seconds per epoch per 1,000 samples, training
plus the best-accuracy evaluation: FCDNN(32)x1-x4 0.006-0.010, FCDNN(64)x1-x2
0.013-0.016; CNN model A 0.16-0.26, B 0.19, D 0.31 (32 x 32 inputs, evaluated every 5th
epoch); LSTM(16) 0.03-0.05, LSTM(32) 0.035-0.12. The first 19 units of the searches (in
repro_capacity_units.jsonl) took 1-235 CPU s each: FCDNN(32)x2 58 s on average (400
epochs), CNN model A 138 s (220 epochs; N = 4036 hit the 300-epoch cap), LSTM(16) 103 s
(N = 8584: 682 epochs, 334 s). With the N the searches find (about 4 samples per
parameter for the FCDNN, 2 for CNN model A, 4 for LSTM(16)) the plan
(_repro_capacity_plan.FULL) adds up to about 8 CPU hours: FCDNN 2.2, CNN 2.7, LSTM 3.1
(LSTM(32)'s single training at N = 32K alone 0.5-1.3), the loss surfaces 0.25. That is 4-5
hours on 2 cores with 2 workers (the searches keep only part of the second worker busy).
Start it, from the repository root, with

    OMP_WAIT_POLICY=passive nohup .venv/bin/python benchmarks/repro_capacity.py --workers 2 \\
        > /tmp/repro_capacity.log 2>&1 &

and run the same command again to resume it after an interruption.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import _repro_capacity_page as page  # noqa: E402
import _repro_capacity_phases as phases  # noqa: E402
import lowbit.capacity as cap  # noqa: E402
from _repro_capacity_plan import FULL, QUICK  # noqa: E402
from _repro_capacity_units import StoreOnly  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
STORE = "repro_capacity_units.jsonl"
ESTIMATE = ("about 8 CPU hours of units (FCDNN 2.2, CNN 2.7, LSTM 3.1, loss surfaces 0.25), 4-5 hours on 2 cores "
            "with 2 workers, estimated from measured unit costs (see Unit costs)")
QUICK_ESTIMATE = "under a minute (--quick)"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in under a minute")
    ap.add_argument("--workers", type=int, default=2, help="dask worker processes (default 2)")
    ap.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    ap.add_argument("--threads", action="store_true", help="dask workers as threads of this process (tests)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results; --quick: a temporary folder)")
    ap.add_argument("--report-only", action="store_true", help="write the page from the store, train nothing")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be >= 1")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    out_dir = args.out if args.out is not None else (
        Path(tempfile.mkdtemp(prefix="repro_capacity_quick_")) if args.quick else DEFAULT_OUT)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    start = time.perf_counter()
    kind = StoreOnly if args.report_only else cap.Sweep
    meta = {"argv": args.argv, "workers": args.workers, "store": STORE, "quick": args.quick,
            "estimate": QUICK_ESTIMATE if args.quick else ESTIMATE}
    print(f"repro_capacity: {'quick' if args.quick else 'full'} plan, {args.workers} worker(s), out {out_dir}"
          + (", report only" if args.report_only else ""), flush=True)
    with kind(out_dir / STORE, scheduler=args.scheduler, n_workers=args.workers, processes=not args.threads) as sweep:
        ctx = phases.Context(plan, sweep, args.workers, cache=str(out_dir / "cache") if args.quick else None)
        state = {"results": {}, "long": [], "quant": [], "surface": None}
        stored = len(sweep.store)

        def write():
            return page.write(out_dir, plan, state["results"], state["long"], state["quant"], state["surface"],
                              sweep.store, meta)
        steps = (("results", lambda: phases.capacity(ctx)), ("long", lambda: phases.long_phase(ctx, state["results"])),
                 ("quant", lambda: phases.quantization(ctx, state["results"])),
                 (None, lambda: phases.seeds(ctx, state["results"])), ("surface", lambda: phases.surface(ctx)))
        for name, run in steps:
            value = run()
            if name is not None:
                state[name] = value
            if len(sweep.store) > stored:   # the page after every step that trained something
                stored = len(sweep.store)
                write()
        path = write()
    print(f"wrote {path} ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
