"""Accuracy and model size over bit widths for each scheme (paper 004, Table 1), and
the "knee": the lowest bit width before accuracy falls away (paper 004, Fig. 4)."""
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

from torch import nn

from ..progress import progress_bar
from ..ptq import ptq
from ._plot import PathLike, pyplot, save_png
from .sizes import ModelSizes, model_sizes

FLOAT = "float32"


@dataclass(frozen=True)
class SweepRow:
    """One model of the sweep: scheme ('float32' for the float model), bits (32 for
    float), accuracy (whatever `evaluate` returns, e.g. top-1 %) and its sizes."""
    scheme: str
    bits: int
    accuracy: float
    sizes: ModelSizes

    def as_dict(self) -> Dict:
        out = {"scheme": self.scheme, "bits": self.bits, "accuracy": self.accuracy}
        out.update({f"{k}_bytes": v for k, v in asdict(self.sizes).items()})
        return out


def accuracy_size_table(model: nn.Module, evaluate: Callable[[nn.Module], float],
                        schemes: Sequence[str] = ("asymmetric", "symmetric", "pow2"),
                        bits: Sequence[int] = (8, 7, 6, 5, 4, 3, 2), png: Optional[PathLike] = None,
                        progress: bool = True, **ptq_kwargs) -> List[SweepRow]:
    """Quantize `model` with `lowbit.ptq(model, scheme, b, **ptq_kwargs)` for every scheme
    and bit width, and measure `evaluate(quantized)` and the real sizes. The first row is
    the float model. png: also draw accuracy and size against bits."""
    if not callable(evaluate):
        raise TypeError(f"evaluate must be a function model -> accuracy, got {type(evaluate).__name__}")
    rows = [SweepRow(FLOAT, 32, float(evaluate(model)), model_sizes(model))]
    settings = [(s, b) for s in schemes for b in bits]
    for scheme, b in progress_bar(settings, desc="ptq sweep", disable=not progress):
        q = ptq(model, scheme, b, **ptq_kwargs)
        rows.append(SweepRow(scheme, b, float(evaluate(q)), model_sizes(q, float_model=model)))
    if png is not None:
        plot_sweep(rows, png)
    return rows


def knee_bits(rows: Sequence[SweepRow], scheme: str, max_drop: float = 1.0) -> Optional[int]:
    """The lowest bit width of `scheme` whose accuracy, and that of every wider bit width,
    stays within `max_drop` of the float model's: below it accuracy falls away. None if
    even the widest one loses more."""
    base = next(r.accuracy for r in rows if r.scheme == FLOAT)
    knee = None
    for r in sorted((r for r in rows if r.scheme == scheme), key=lambda r: -r.bits):
        if base - r.accuracy > max_drop:
            break
        knee = r.bits
    return knee


def plot_sweep(rows: Sequence[SweepRow], png: PathLike, title: str = "") -> None:
    plt = pyplot()
    fig, (acc_ax, size_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    base = next(r for r in rows if r.scheme == FLOAT)
    schemes = list(dict.fromkeys(r.scheme for r in rows if r.scheme != FLOAT))
    for scheme in schemes:
        rs = sorted((r for r in rows if r.scheme == scheme), key=lambda r: r.bits)
        b = [r.bits for r in rs]
        line, = acc_ax.plot(b, [r.accuracy for r in rs], marker="o", label=scheme)
        size_ax.plot(b, [r.sizes.packed / 1024 for r in rs], marker="o", color=line.get_color(),
                     label=f"{scheme} packed")
        size_ax.plot(b, [r.sizes.packed_lzma / 1024 for r in rs], marker="x", linestyle="--",
                     color=line.get_color(), label=f"{scheme} packed + LZMA")
    acc_ax.axhline(base.accuracy, color="k", linestyle=":", label="float32")
    size_ax.axhline(base.sizes.float32 / 1024, color="k", linestyle=":", label="float32")
    acc_ax.set(xlabel="bits", ylabel="accuracy", title="accuracy after PTQ")
    size_ax.set(xlabel="bits", ylabel="KiB", yscale="log", title="model file size")
    for ax in (acc_ax, size_ax):
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, png)
