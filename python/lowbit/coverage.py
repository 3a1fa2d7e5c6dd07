"""lowbit.coverage: one row per parameter of a model, quantized or float, and why.

    import lowbit as lb
    print(lb.coverage(model))                        # the plan attach would make
    print(lb.coverage(model, purpose="ptq"))         # ... or ptq
    lb.coverage(frozen_or_ptq_model).rows            # what convert will pack, as data

The model's state decides what is reported: with attach's hooks on, what they quantize;
with recorded quantizers (after freeze, ptq or load_quantized), what those are and the
packed kernel `convert` will use; otherwise the plan `config` (default QuantConfig())
would give for `purpose`.
"""
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

from torch import nn

from .config import QuantConfig
from .hooks import _STATE_ATTR
from .inference.convert import packing_of
from .layers import FLOAT_BY_DESIGN, KINDS, layers_of, output_layer
from .plan import SHADOW, PlanEntry, _entries, plan
from .qrecord import QPARAMS_ATTR
from .quant import QParams


@dataclass(frozen=True)
class CoverageRow:
    """One parameter. kind: its layer kind, or the module type when no kind covers it;
    kernel: the packed kernel convert uses ('int', 'shift', 'lut'), None when the layer stays float
    after convert (`reason` then says why)."""
    name: str
    layer: str
    kind: str
    numel: int
    quantized: bool
    scheme: Optional[str] = None
    bits: Optional[int] = None
    granularity: Optional[str] = None
    groups: Optional[int] = None
    kernel: Optional[str] = None
    reason: Optional[str] = None


class Coverage:
    """The rows, printable as a table (str) and HTML (Jupyter), and as dicts."""

    def __init__(self, rows: List[CoverageRow], source: str):
        self.rows = rows
        self.source = source

    def as_dicts(self) -> List[Dict]:
        return [asdict(r) for r in self.rows]

    @property
    def quantized_fraction(self) -> float:
        """Share of the model's parameter values that are quantized."""
        total = sum(r.numel for r in self.rows)
        return sum(r.numel for r in self.rows if r.quantized) / total if total else 0.0

    def float_rows(self) -> List[CoverageRow]:
        return [r for r in self.rows if not r.quantized]

    def _cells(self) -> List[List[str]]:
        out = []
        for r in self.rows:
            groups = f"({r.groups})" if r.granularity == "group" else ""
            quant = f"{r.scheme} {r.bits}b {r.granularity}{groups}" if r.quantized else "float"
            after = r.kernel or ""
            out.append([r.name, r.kind, str(r.numel), quant, after, r.reason or ""])
        return out

    HEADER = ["parameter", "kind", "values", "quantizer", "kernel", "why float"]

    def __str__(self) -> str:
        cells = [self.HEADER] + self._cells()
        widths = [max(len(c[i]) for c in cells) for i in range(len(self.HEADER))]
        lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(c))).rstrip() for c in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"{self.quantized_fraction:.1%} of {sum(r.numel for r in self.rows)} parameter values "
                     f"quantized ({self.source})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape
        head = "".join(f"<th>{escape(h)}</th>" for h in self.HEADER)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in self._cells())
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{self.quantized_fraction:.1%} of the parameter values quantized ({escape(self.source)})</p>")

    __repr__ = __str__


def _granularity(qp: QParams, rows: int) -> str:
    return "tensor" if qp.groups == 1 else "channel" if qp.groups == rows else "group"


def _float_row(e: PlanEntry, numel: int, reason: str) -> CoverageRow:
    return CoverageRow(e.name, e.layer, e.kind, numel, False, reason=reason)


def _recorded(model: nn.Module) -> bool:
    return any(getattr(m, QPARAMS_ATTR, None) for m in model.modules())


def coverage(model: nn.Module, config: Optional[QuantConfig] = None, purpose: str = "retrain",
             mode: str = "auto") -> Coverage:
    """Every parameter of `model`: quantized (scheme, bits, granularity, and the packed kernel
    `lb.inference.convert(mode=mode)` will use) or float with the reason (bias, output layer,
    skipped by a pattern, kind not supported, ...). See the module docstring for which state
    is reported."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    layers = {name: (layer, kind) for name, layer, kind in layers_of(model)}
    state = getattr(model, _STATE_ATTR, None)
    recorded = state is None and _recorded(model)
    if state is not None:
        entries, source = plan(model, state.config, "retrain", check_patterns=False), "attach's hooks"
    elif recorded:
        entries, source = _entries(model), "recorded quantizers"
    else:
        entries = plan(model, config, purpose)
        source = f"the plan for {purpose}" + ("" if config is not None else " with QuantConfig()")
    covered, rows = [], []
    output = output_layer(model)
    for e in entries:
        owner = modules[e.owner]
        held = e.param if e.param in owner._parameters else e.param + SHADOW
        covered.append(f"{e.owner}.{held}" if e.owner else held)
        numel = owner._parameters[held].numel()
        layer, kind = layers[e.layer]
        if recorded:
            qp = (getattr(owner, QPARAMS_ATTR, None) or {}).get(e.param)
            if qp is None:
                why = ("bias" if e.role == "bias" else "output layer" if e.layer == output
                       else "not quantized (skipped, or outside `layers`)")
                rows.append(_float_row(e, numel, why))
                continue
            kernel, why = packing_of(layer, kind, qp.scheme, mode)
            g = qp.groups if qp.groups > 1 else None
            rows.append(CoverageRow(e.name, e.layer, e.kind, numel, True, qp.scheme, qp.bits,
                                    _granularity(qp, owner._parameters[held].shape[0]), g, kernel,
                                    None if kernel else f"float after convert: {why}"))
            continue
        if not e.quantized:
            rows.append(_float_row(e, numel, e.reason))
            continue
        c = e.config
        kernel, why = packing_of(layer, kind, c.scheme, mode)
        rows.append(CoverageRow(e.name, e.layer, e.kind, numel, True, c.scheme, c.bits, c.granularity,
                                c.groups, kernel, None if kernel else f"float after convert: {why}"))
    by_held = dict(zip(covered, rows))
    ordered = []
    for name, p in model.named_parameters():   # module order (attach's shadows shown by their real name)
        if name in by_held:
            ordered.append(by_held.pop(name))
            continue
        owner_name = name.rpartition(".")[0]
        owner = modules[owner_name]
        what = type(owner).__name__
        why = (f"{what} parameter: float by design" if isinstance(owner, FLOAT_BY_DESIGN)
               else f"kind not supported: {what} is not in lowbit.layers.KINDS ({', '.join(KINDS)})")
        ordered.append(CoverageRow(name, owner_name, what, p.numel(), False, reason=why))
    return Coverage(ordered + list(by_held.values()), source)

