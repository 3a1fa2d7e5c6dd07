"""What a study does and how much it spends: one dataclass, two presets (quick, full)."""
import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from .. import schemes
from ..devices import device_name
from ..schedules import SCHEDULES

# The schemes whose parameters lowbit computes from the weights; the sweep's default order
# is the report's column order.
_ORDER = ("asymmetric", "symmetric", "pow2")   # schemes not named here follow, in table order
PTQ_SCHEMES = tuple(sorted(schemes.CALIBRATED, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER)))
# The default sweep: lowbit's three packed families. 'range' (paper 004's min-max formula)
# is chosen with ptq_schemes / --ptq-schemes; it runs on the look-up-table kernels only.
DEFAULT_PTQ_SCHEMES = _ORDER
SKIPPABLE = ("retrain", "vbq", "inference", "analysis", "advisor")


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _bits(name: str, values, lo: int = 2, hi: int = 8) -> Tuple[int, ...]:
    values = tuple(values)
    for b in values:
        _int(f"{name} (each)", b, lo, hi)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a bit width, got {list(values)}")
    return tuple(sorted(values, reverse=True))


def _names(name: str, values, accepted) -> Tuple[str, ...]:
    values = tuple(values)
    unknown = [v for v in values if v not in accepted]
    if unknown:
        raise ValueError(f"{name}: unknown {unknown}; accepted: {', '.join(accepted)}")
    return values


@dataclass(frozen=True)
class StudySettings:
    """Everything a study run depends on (the step cache keys on these fields).

    Sizes are numbers of images: `train_size` for retraining (the first images of the
    training split), `calib_size` for the VBQ search (also from the training split),
    `val_size` and `eval_size` two disjoint parts of the held-out test split: the first
    picks the best result and stops retraining early, the second is what the report
    quotes. `max_drop`: how many accuracy points below float still count as "takes it".

    `device` ("cpu", "cuda", "cuda:N"): where the retrainings, the VBQ fitness evaluations
    and the accuracy measurements (float baseline, PTQ rows, every result row) run; the
    packed-inference timing always runs on the CPU, which it measures. It is the one field
    no step's cache key includes: the same seeds and the same data give the same results
    on any device up to float rounding (CUDA's convolutions and reductions sum in another
    order), so a step finished on a GPU is reused by a CPU rerun and vice versa. The
    quantizers are the same math everywhere (native kernels on CPU, the registered
    references elsewhere, both rounding half away from zero), but a value within rounding
    of a bin edge can land in the other bin, and retraining amplifies such differences:
    accuracies may differ by a few tenths of a point between devices, not by a method.
    """
    ptq_bits: Tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2)
    ptq_schemes: Tuple[str, ...] = DEFAULT_PTQ_SCHEMES
    retrain_bits: Tuple[int, ...] = (4, 3, 2)
    retrain_scheme: str = "symmetric"
    schedules: Tuple[str, ...] = ("direct", "conventional", "adaptive", "gradual")
    epochs: int = 3
    lr: float = 3e-4
    batch_size: int = 128
    train_size: int = 20000
    vbq_bits: Tuple[int, ...] = (4, 3)
    vbq_iterations: int = 60
    calib_size: int = 1000
    val_size: int = 5000
    eval_size: int = 5000
    max_drop: float = 1.0
    timing_images: int = 500
    seed: int = 0
    skip: Tuple[str, ...] = ()
    # The shipped models' float training recipe (None: lowbit.models.pretrained's default).
    float_train_size: Optional[int] = None
    float_epochs: Optional[int] = None
    extra: Dict = field(default_factory=dict)   # room for later steps' settings (e.g. capacity)
    device: str = "cpu"    # not in any step's cache key (see above)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("ptq_bits", _bits("ptq_bits", self.ptq_bits))
        set_("ptq_schemes", _names("ptq_schemes", self.ptq_schemes, PTQ_SCHEMES))
        set_("retrain_bits", _bits("retrain_bits", self.retrain_bits))
        if self.retrain_scheme not in PTQ_SCHEMES:
            raise ValueError(f"retrain_scheme must be one of {', '.join(PTQ_SCHEMES)}, "
                             f"got {self.retrain_scheme!r}")
        set_("schedules", _names("schedules", self.schedules, SCHEDULES))
        set_("vbq_bits", _bits("vbq_bits", self.vbq_bits, 2, 8))
        set_("skip", _names("skip", self.skip, SKIPPABLE))
        set_("device", device_name(self.device, "device (--device)", allow_meta=False))
        _int("epochs", self.epochs, 1, 1000)
        _int("batch_size", self.batch_size, 1, 1 << 20)
        _int("train_size", self.train_size, 1, 1 << 30)
        _int("vbq_iterations", self.vbq_iterations, 1, 100000)
        _int("calib_size", self.calib_size, 1, 1 << 30)
        _int("val_size", self.val_size, 1, 1 << 30)
        _int("eval_size", self.eval_size, 1, 1 << 30)
        _int("timing_images", self.timing_images, 1, 1 << 20)
        _int("seed", self.seed, 0, 2 ** 63 - 1)
        if self.float_train_size is not None:
            _int("float_train_size", self.float_train_size, 1, 1 << 30)
        if self.float_epochs is not None:
            _int("float_epochs", self.float_epochs, 1, 1000)
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ValueError(f"lr must be a number in (0, 10), got {self.lr!r}")
        if not (isinstance(self.max_drop, (int, float)) and 0 <= self.max_drop <= 100):
            raise ValueError(f"max_drop must be accuracy points in [0, 100], got {self.max_drop!r}")

    @classmethod
    def quick(cls, **overrides) -> "StudySettings":
        """A few minutes on 2 cores for both shipped models (after their float training)."""
        base = dict(retrain_bits=(4, 2), epochs=1, train_size=5000, vbq_bits=(4,), vbq_iterations=12,
                    calib_size=300, val_size=1000, eval_size=2000, timing_images=200)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def full(cls, **overrides) -> "StudySettings":
        return cls(**overrides)

    def replace(self, **changes) -> "StudySettings":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> Dict:
        return dataclasses.asdict(self)
