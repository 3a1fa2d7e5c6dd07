"""What repro_capacity.py runs: the networks, the training budgets, the seeds, and the
numbers of papers 000/001 they are compared with (copied by hand from
/work/shared/papers/000_*.txt and 001_*.txt)."""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

# ---- the papers ------------------------------------------------------------------------------

# Paper 001, sections 4.1-4.3 and 6; Table 1 (appendix) for the CNN models.
PAPER_FCDNN_RANGE = (1.7, 2.5)      # bits/param, widths 32-256 and depths 1-4
PAPER_FCDNN_MEAN = 2.3
PAPER_CNN_CONV = {"A": 2.483, "B": 3.09, "C": 2.99, "D": 3.00, "E": 2.86, "F": 2.96}  # per conv param
PAPER_CNN_MEAN = 3.0
PAPER_CNN_CAPACITY = {"A": 4916.6, "B": 13944.8, "C": 38674.5, "D": 14878.0, "E": 53920.5, "F": 91712.9}
PAPER_FC_BITS = 2.3                 # what paper 001 credits each fully connected parameter of a CNN
PAPER_LSTM = {"hidden": 32, "params": 8386, "n": 32768, "accuracy": 0.9952, "bits": 3.7}
PAPER_THRESHOLD = {"fcdnn": 6, "cnn": 8, "lstm": 10}   # full capacity: no drop down to these bits
PAPER_DROP_AT_6 = {"fcdnn": 0.0, "cnn": 5.0, "lstm": 18.0}  # points lost at 6 bits, full capacity
PAPER_HALF_FCDNN_BITS = 4           # FCDNN(128)x3 at half capacity stores everything at 4 bits

FAMILIES = ("fcdnn", "cnn", "lstm")
TOLERANCE = 0.10   # a single measured number "reproduces" the paper's within 10 %
DROP_TOLERANCE = 0.01  # quantization: accuracy within 1 point of float counts as no drop
RISING = 0.002     # long phase: a best accuracy that gains >= 0.2 points in the last half still rises


# ---- the plan --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """How one family's networks are trained and searched."""
    max_epochs: int                 # the epoch cap of every training of the capacity phases
    eval_every: int                 # best accuracy: evaluated every this many epochs
    defaults: Dict[str, float]      # the starting hyper-parameters (batch size included)
    fine_points: int                # capacity_search of the tuned network
    grid_points: int
    trials: int
    scan: Tuple[float, ...]         # N scan of the other networks: factors of the tuned N/params
    seed_scan: Tuple[float, ...]    # seeds > 0: factors of seed 0's best N
    max_extend: int = 2             # a scan whose best N is at its edge grows this many times
    long_factor: int = 5            # long phase: this many times max_epochs, no plateau stop
    fine_range: Tuple[float, float] = (0.5, 4.0)   # capacity_search's fine N grid (factors)


@dataclass(frozen=True)
class Model:
    spec: Dict
    role: str                       # 'search' (tuned: the family's hyper-parameters), 'scan', 'points'
    seeds: int = 1
    long: bool = False              # retrained at its best N with the long budget
    points: Tuple[int, ...] = ()    # role 'points': the N values trained (seed 0)


@dataclass(frozen=True)
class QuantModel:
    spec: Dict
    # None: the network is in the capacity table and is quantized at its best N; else the
    # name of the family's tuned network its N is scaled from (see phases.quant_n).
    n_from: Optional[str] = None


@dataclass(frozen=True)
class Plan:
    families: Dict[str, Family]
    models: Sequence[Model]
    quant: Sequence[QuantModel]
    bits: Sequence[int] = (8, 6, 5, 4, 3, 2)
    retrain_epochs: int = 5
    surface: Dict = field(default_factory=dict)


def fcdnn(width, depth):
    return {"model": "fcdnn", "width": width, "depth": depth}


def cnn(name, size=32):
    return {"model": "cnn", "name": name, "input_size": size}


def lstm(hidden):
    return {"model": "lstm", "hidden": hidden, "n_in": hidden, "n_seq": 5}


_SEARCH = dict(fine_points=4, grid_points=0, trials=2, scan=(0.7, 1.0, 1.4), seed_scan=(0.85, 1.0, 1.18))

# Sized from measured unit costs (the page and repro_capacity.py's docstring give them):
# about 8 CPU hours of units, 4-5 hours on 2 cores. What was cut to fit is on the page.
FULL = Plan(
    families={
        "fcdnn": Family(max_epochs=1000, eval_every=1,
                        defaults={"lr": 0.02, "momentum": 0.9, "decay": 0.3, "batch_size": 32},
                        **{**_SEARCH, "grid_points": 2, "trials": 4}, long_factor=3),
        # lr 0.02 leaves CNN model A at 32 x 32 on its chance plateau for tens of epochs (the
        # plateau stop then ends it at 52 % of N = 1009), 0.05 never leaves it; 0.005 stores
        # all of N = 2000 in 160 epochs.
        "cnn": Family(max_epochs=300, eval_every=5,
                      defaults={"lr": 0.005, "momentum": 0.9, "decay": 0.3, "batch_size": 32},
                      **_SEARCH, long_factor=5, fine_range=(0.5, 2.0)),
        "lstm": Family(max_epochs=1500, eval_every=1,
                       defaults={"lr": 0.05, "momentum": 0.9, "decay": 0.3, "batch_size": 32},
                       **{**_SEARCH, "fine_points": 3}, long_factor=3, fine_range=(0.5, 2.0)),
    },
    models=(
        Model(fcdnn(32, 2), "search", seeds=3, long=True),
        Model(fcdnn(32, 1), "scan", seeds=3),
        Model(fcdnn(32, 3), "scan"),
        Model(fcdnn(32, 4), "scan"),
        Model(fcdnn(64, 1), "scan"),
        Model(fcdnn(64, 2), "scan", long=True),
        Model(cnn("A"), "search", seeds=3, long=True),
        Model(cnn("B"), "scan"),
        Model(lstm(16), "search", seeds=3, long=True),
        Model(lstm(32), "points", points=(PAPER_LSTM["n"],)),
    ),
    quant=(QuantModel(fcdnn(32, 2)), QuantModel(fcdnn(64, 2)), QuantModel(cnn("D"), n_from="CNN model A"),
           QuantModel(lstm(16))),
    surface={"train": 2000, "retrain": 5000, "draws": 10, "alphas": 11, "lenet_epochs": 8, "lenet_train": None},
)

QUICK = Plan(
    families={
        "fcdnn": Family(max_epochs=15, eval_every=1, defaults={"lr": 0.05, "momentum": 0.9, "decay": 0.3,
                                                               "batch_size": 32},
                        fine_points=2, grid_points=0, trials=1, scan=(0.8, 1.25), seed_scan=(1.0,),
                        max_extend=1, long_factor=2),
        "cnn": Family(max_epochs=3, eval_every=2, defaults={"lr": 0.05, "momentum": 0.9, "decay": 0.3,
                                                            "batch_size": 32},
                      fine_points=2, grid_points=0, trials=0, scan=(1.0,), seed_scan=(1.0,),
                      max_extend=0, long_factor=2),
        "lstm": Family(max_epochs=4, eval_every=1, defaults={"lr": 0.05, "momentum": 0.9, "decay": 0.3,
                                                             "batch_size": 32},
                       fine_points=2, grid_points=0, trials=0, scan=(1.0,), seed_scan=(1.0,),
                       max_extend=0, long_factor=2),
    },
    models=(
        Model(fcdnn(12, 1), "search", seeds=2, long=True),
        Model(fcdnn(12, 2), "scan"),
        Model(cnn("A", 8), "search", long=True),
        Model(cnn("B", 8), "scan"),
        Model(lstm(4), "search", long=True),
        Model(lstm(6), "points", points=(200,)),
    ),
    quant=(QuantModel(fcdnn(12, 1)), QuantModel(cnn("D", 8), n_from="CNN model A (8x8)"),
           QuantModel(lstm(4))),
    bits=(8, 6, 5, 4, 3, 2), retrain_epochs=1,
    surface={"train": 200, "retrain": 300, "draws": 2, "alphas": 3, "lenet_epochs": 1, "lenet_train": 1000},
)
