"""lowbit capacity: memorization capacity of a small network (measure) and the bit-width
advisor (advise), papers 000/001."""
import argparse
import json
from pathlib import Path

from .. import capacity as cap
from ..files import write_json_atomically
from ..study import load_architecture
from ._common import MODEL_HELP, add_device, device, existing_file, positive

NAME = "capacity"
HELP = "memorization capacity of an FCDNN (measure) and the weight bits a model needs (advise)"
DESCRIPTION = (
    "measure: train an FCDNN on random binary labels of N distinct random bit vectors for many N "
    "and training settings (coarse and fine N, a hyper-parameter grid, optuna TPE), each training a "
    "dask job; the capacity is the most information stored, I = N (1 - H(p)) bits, and bits per "
    "parameter follow (paper 001 reports about 2.3 for FCDNNs). Writes OUT/capacity_runs.jsonl (a rerun "
    "resumes from it), OUT/capacity_curve.png, OUT/capacity.json and OUT/evidence.json. "
    "advise: the weight bits each layer kind of a model needs for a task of --n-samples examples, "
    "from its capacity utilization (paper 001's numbers, or --evidence from `measure`). No training.")
EPILOG = """examples:
  lowbit capacity measure                          # FCDNN(10)x1, under a minute on 2 cores
  lowbit capacity measure --width 16 --depth 2 --workers 2 --out cap-16x2
  lowbit capacity measure --scheduler tcp://host:8786 --trials 20 --max-epochs 300
  lowbit capacity measure --device cuda            # trainings on the GPU of each worker
  lowbit capacity advise --model lenet5 --n-samples 60000
  lowbit capacity advise --model mymodels:make_net --n-samples 5000 --classes 4 --evidence cap-16x2/evidence.json
"""


def _add_measure(p):
    p.add_argument("--width", type=positive, default=10, help="hidden units per layer (default 10)")
    p.add_argument("--depth", type=positive, default=1, help="hidden layers (default 1)")
    p.add_argument("--n-in", type=positive, default=None,
                   help="input bits (default: the width); N is at most 2^n-in distinct inputs")
    p.add_argument("--max-epochs", type=positive, default=100,
                   help="epochs per training at most (default 100; the paper trains to convergence)")
    p.add_argument("--lr", type=float, default=0.05,
                   help="SGD learning rate of the N stages; the grid and TPE stages tune it (default 0.05)")
    p.add_argument("--batch-size", type=positive, default=16, help="default 16")
    p.add_argument("--fine-points", type=positive, default=3, help="N values in the fine stage (default 3)")
    p.add_argument("--grid-points", type=int, default=2,
                   help="values per hyper-parameter in the grid stage, 0 skips it (default 2: 8 trainings)")
    p.add_argument("--trials", type=int, default=2, help="optuna TPE trainings, 0 skips them (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the init and the search")
    p.add_argument("--workers", type=positive, default=1,
                   help="dask worker processes of a local cluster, one torch thread each (default 1)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running dask scheduler (tcp://host:8786) instead of a local cluster")
    p.add_argument("--out", default="lowbit-capacity", help="output folder (default lowbit-capacity)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(p, "the trainings (on every worker)")


def _add_advise(p):
    p.add_argument("--model", default="lenet5", help=f"{MODEL_HELP} (default lenet5); only its layers "
                                                      "count, shipped models are not trained")
    p.add_argument("--n-samples", type=positive, required=True, help="training examples of the task")
    p.add_argument("--classes", type=int, default=None,
                   help="labels of the task (default: the output layer's out_features)")
    p.add_argument("--evidence", default=None,
                   help="JSON {kind: {bits_per_param, full_bits, half_bits}} for kinds fc / conv / rnn, "
                        "e.g. the evidence.json `lowbit capacity measure` writes (default: paper 001)")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext, add in (("measure", "capacity of an FCDNN by memorization trainings", _add_measure),
                                ("advise", "recommended weight bits per layer kind of a model", _add_advise)):
        a = sub.add_parser(name, help=helptext, description=helptext, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add(a)


def _check_counts(args):
    if args.grid_points < 0:
        raise ValueError(f"--grid-points must be an integer >= 0, got {args.grid_points}")
    if args.trials < 0:
        raise ValueError(f"--trials must be an integer >= 0, got {args.trials}")
    if not 0 < args.lr < 10:
        raise ValueError(f"--lr must be in (0, 10), got {args.lr}")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"--seed must be in [0, 2^32), got {args.seed}")
    n_in = args.n_in or args.width
    if n_in > 62:
        raise ValueError(f"--n-in must be in [1, 62] (inputs are bit vectors), got {n_in}")


def _output_folder(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, but {path!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _stopped_at_budget(sweep, spec, max_epochs, seed, device="cpu") -> int:
    """Trainings of this search (on this device) that used every epoch allowed (not converged)."""
    count = 0
    for key, result in sweep.store.items():
        job = json.loads(key).get("job", {})
        if (isinstance(job, dict) and job.get("spec") == spec and job.get("max_epochs") == max_epochs
                and job.get("device", "cpu") == device
                and job.get("seed") == seed and result.get("epochs", 0) >= max_epochs and result["accuracy"] < 1):
            count += 1
    return count


def measure(args) -> int:
    dev = device(args)
    _check_counts(args)
    out = _output_folder(args.out)
    spec = {"model": "fcdnn", "width": args.width, "depth": args.depth}
    if args.n_in and args.n_in != args.width:
        spec["n_in"] = args.n_in
    params = cap.count_parameters(cap.build(spec))
    name = cap.spec_name(spec)
    with cap.Sweep(out / "capacity_runs.jsonl", scheduler=args.scheduler, n_workers=args.workers,
                   progress=not args.no_progress) as sweep:
        done_before = len(sweep.store)
        result = cap.measure_capacity(spec, sweep, max_epochs=args.max_epochs, batch_size=args.batch_size,
                                      fine_points=args.fine_points, grid_points=args.grid_points,
                                      trials=args.trials, seed=args.seed, batch=args.workers,
                                      defaults={"lr": args.lr}, device=dev)
        trained = len(sweep.store) - done_before
        capped = _stopped_at_budget(sweep, spec, args.max_epochs, args.seed, str(dev))
    per_param = result.capacity / params
    cap.plot_capacity_curve(result, out / "capacity_curve.png", title=f"{name}, {params} parameters",
                            params=params)
    summary = {"spec": spec, "name": name, "params": params, "capacity_bits": result.capacity,
               "bits_per_param": per_param, "n": result.n, "accuracy": result.accuracy,
               "hparams": result.hparams, "paper_bits_per_param": cap.PAPER_EVIDENCE["fc"]["bits_per_param"],
               "evaluations": result.evaluations}
    write_json_atomically(out / "capacity.json", summary)
    # What `advise --evidence` reads: the measured bits/param replace paper 001's for fc layers.
    write_json_atomically(out / "evidence.json", {"fc": {"bits_per_param": round(per_param, 4),
                                                         "source": f"measured: {name}"}})
    print(f"{name}: {params} parameters; capacity {result.capacity:.0f} bits at N = {result.n} "
          f"(accuracy {result.accuracy:.4f}) = {per_param:.2f} bits/param (paper 001: about 2.3 for FCDNNs)")
    print(f"{len(result.evaluations)} trainings ({trained} run now, the rest from {out / 'capacity_runs.jsonl'}); "
          f"best lr {result.hparams['lr']:.3g}, momentum {result.hparams['momentum']:.3g}, "
          f"decay {result.hparams['decay']:.3g}")
    if capped:
        print(f"{capped} of {len(result.evaluations)} trainings stopped at --max-epochs {args.max_epochs} before "
              "converging: the capacity is a lower bound that rises with the budget")
    print(f"wrote {out / 'capacity_curve.png'}, {out / 'capacity.json'}, {out / 'evidence.json'}")
    return 0


def _classes(model, given):
    if given is not None:
        if given < 2:
            raise ValueError(f"--classes must be an integer >= 2, got {given}")
        return given
    from ..layers import output_layer
    name = output_layer(model)
    last = dict(model.named_modules()).get(name) if name is not None else None
    classes = getattr(last, "out_features", None) or getattr(last, "out_channels", None)
    if not classes or classes < 2:
        raise ValueError("cannot tell the number of classes from the model's output layer; give --classes")
    return int(classes)


def _evidence(path):
    if path is None:
        return None
    p = existing_file(path, "--evidence")
    try:
        value = json.loads(p.read_text())
    except ValueError as exc:
        raise ValueError(f"--evidence: {path!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"--evidence: {path!r} must hold {{kind: {{field: value}}}} for kinds fc, conv, rnn")
    return value


def advise(args) -> int:
    model = load_architecture(args.model)
    evidence = _evidence(args.evidence)
    try:
        advice = cap.advise_bits(model, args.n_samples, _classes(model, args.classes), evidence=evidence)
    except ValueError as exc:
        raise ValueError(f"--evidence: {exc}" if evidence and "evidence" in str(exc) else str(exc)) from None
    bits = ", ".join(f"{k} {v} bits" for k, v in advice.bits.items())
    print(f"{args.model}, {args.n_samples} examples: {bits} (output layer and biases float)")
    print(advice)
    return 0


def run(args) -> int:
    return measure(args) if args.action == "measure" else advise(args)
