"""lowbit study: the main job."""
import shlex

from ..study import (DEFAULT_MODELS, DEFAULT_PTQ_SCHEMES, PTQ_SCHEMES, SCHEDULES, SKIPPABLE, StudySettings,
                     run_study, study_models)
from ._common import DATA_HELP, MODEL_HELP, bits_list, names, positive

NAME = "study"
HELP = "how few bits can a model take, and with which method? (writes an HTML report)"
DESCRIPTION = (
    "Measure the float baseline; sweep data-free PTQ (asymmetric, symmetric, power of two) over "
    "8..2 bits; retrain with the direct / conventional / adaptive / gradual schedules at the low "
    "bit widths; search VBQ codebooks with per-layer simulated annealing; convert the best result "
    "to packed bit-shift / LUT inference and time it against float. Writes OUT/index.html with the "
    "plots, every table as CSV and Markdown (OUT/report.md) and the packed model (OUT/<model>/best.lbq). "
    "Finished steps and units are cached in OUT/steps: rerunning the same command resumes where it "
    "stopped. --workers N or --scheduler ADDRESS runs the independent units (PTQ widths, retrainings, "
    "VBQ searches) as dask tasks, with the same results as the serial study.")
EPILOG = """examples:
  lowbit study --quick                      # LeNet-5 and FFDNN, a few minutes on 2 cores
  lowbit study                              # the full study (resumable)
  lowbit study --model lenet5 --out report-lenet --retrain-bits 3,2 --epochs 5
  lowbit study --model mymodels:trained_cnn --data mydata:load --quick
  lowbit study --quick --device cuda        # trainings on a GPU, inference timed on the CPU
  lowbit study --quick --workers 2          # the units on a LocalCluster of 2 processes
  lowbit study --scheduler tcp://host:8786  # the units on a running dask cluster
"""


def add_arguments(p):
    p.add_argument("--model", action="append", default=None,
                   help=f"{MODEL_HELP}; repeat or comma-separate for several (default: lenet5,ffdnn)")
    p.add_argument("--data", default=None, help=DATA_HELP)
    p.add_argument("--out", default="lowbit-report", help="report folder (default lowbit-report)")
    p.add_argument("--quick", action="store_true", help="small budgets: a few minutes on 2 cores")
    p.add_argument("--fresh", action="store_true", help="recompute every step and unit, ignoring the cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or step messages")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N: where the retrainings, VBQ fitness evaluations and accuracy "
                        "measurements run (default cpu; packed-inference timing always runs on the CPU; not "
                        "part of the cache keys: results agree across devices up to float rounding)")
    where = p.add_argument_group("where the units run (default: here, one after another)")
    one = where.add_mutually_exclusive_group()
    one.add_argument("--workers", type=positive, default=None, metavar="N",
                     help="start a dask LocalCluster of N worker processes for the units")
    one.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="address of a running dask scheduler (tcp://host:8786); its workers must import "
                          "lowbit and any 'module:function' model or data")
    g = p.add_argument_group("what to try (defaults: the --quick or full preset)")
    g.add_argument("--ptq-bits", type=bits_list, help="PTQ bit widths, e.g. 8-2 (default 8-2)")
    g.add_argument("--ptq-schemes", type=names(PTQ_SCHEMES),
                   help=f"from {','.join(PTQ_SCHEMES)} (default {','.join(DEFAULT_PTQ_SCHEMES)})")
    g.add_argument("--retrain-bits", type=bits_list, help="retraining bit widths (full 4,3,2; quick 4,2)")
    g.add_argument("--retrain-scheme", choices=PTQ_SCHEMES, help="quantizer for retraining (symmetric, L2 step)")
    g.add_argument("--schedules", type=names(SCHEDULES), help=f"from {','.join(SCHEDULES)}")
    g.add_argument("--vbq-bits", type=bits_list, help="VBQ bit widths (full 4,3; quick 4)")
    g.add_argument("--skip", type=names(SKIPPABLE), help=f"steps to leave out, from {','.join(SKIPPABLE)}")
    g.add_argument("--max-drop", type=float, help="accuracy points below float that still count (default 1)")
    b = p.add_argument_group("budget")
    b.add_argument("--epochs", type=positive, help="retraining epochs per run (full 3, quick 1)")
    b.add_argument("--lr", type=float, help="retraining learning rate, Adam (default 3e-4)")
    b.add_argument("--train-size", type=positive, help="retraining images (full 20000, quick 5000)")
    b.add_argument("--calib-size", type=positive, help="VBQ calibration images (full 1000, quick 300)")
    b.add_argument("--vbq-iterations", type=positive, help="SA iterations (full 60, quick 12)")
    b.add_argument("--val-size", type=positive, help="held-out images that choose (full 5000, quick 1000)")
    b.add_argument("--eval-size", type=positive, help="held-out images quoted (full 5000, quick 2000)")
    b.add_argument("--timing-images", type=positive, help="batch-1 timing images (full 500, quick 200)")
    b.add_argument("--float-train-size", type=positive,
                   help="shipped models only: float training images (default: all 60000)")
    b.add_argument("--float-epochs", type=positive, help="shipped models only: float training epochs")
    b.add_argument("--seed", type=int, default=None, help="seed of every stochastic step (default 0)")


FIELDS = ("ptq_bits", "ptq_schemes", "retrain_bits", "retrain_scheme", "schedules", "vbq_bits", "skip",
          "max_drop", "epochs", "lr", "train_size", "calib_size", "vbq_iterations", "val_size", "eval_size",
          "timing_images", "float_train_size", "float_epochs", "seed", "device")


def settings_from(args) -> StudySettings:
    overrides = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}  # lists become tuples there
    return StudySettings.quick(**overrides) if args.quick else StudySettings.full(**overrides)


def run(args) -> int:
    settings = settings_from(args)
    models = study_models(args.model) if args.model else list(DEFAULT_MODELS)
    command = "lowbit " + " ".join(shlex.quote(a) for a in args.argv)
    index = run_study(models, data=args.data, out=args.out, settings=settings, fresh=args.fresh,
                      progress=not args.no_progress, command=command, scheduler=args.scheduler,
                      workers=args.workers)
    print(f"report: {index}")
    print((index.parent / "report.md").read_text().split("\n## ")[0].strip())
    return 0
