"""Bit-width advisor: the weight precision each layer type needs, from measured capacity
and the model's parameter/data ratio (papers 000/001, sections 4 and 5.1).

The information a task asks a model to store is at most N log2(classes) bits; the model
can store about sum(params of a kind x bits/param of that kind). Their ratio is the
capacity utilization u. At u >= 1 (full capacity) a layer kind needs its full-capacity
precision (paper: 6 / 8 / 10 bits for fc / conv / rnn); at u <= 1/2 the half-capacity
precision (paper: 4 bits for FCDNNs; CNNs and RNNs "less sensitive", no number, so the
full-capacity value is kept unless measured); in between, a linear interpolation rounded
up. The output layer and biases stay float (they are not what was measured). Memorization
is the worst case: a generalization task tolerates fewer bits (paper 001, section 5.2).
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from torch import nn

from ..layers import layers_of, output_layer
from ..models._checks import positive_int

KINDS = ("fc", "conv", "rnn")
# Paper 001's numbers: capacity (section 4), precision with no accuracy drop at full and at
# half capacity (section 5.1). None: the paper gives no number.
PAPER_EVIDENCE = {
    "fc": {"bits_per_param": 2.3, "full_bits": 6, "half_bits": 4, "source": "paper 001"},
    "conv": {"bits_per_param": 3.0, "full_bits": 8, "half_bits": None, "source": "paper 001"},
    "rnn": {"bits_per_param": 3.7, "full_bits": 10, "half_bits": None, "source": "paper 001"},
}


@dataclass
class BitAdvice:
    utilization: float            # information demanded / model capacity
    demand_bits: float
    capacity_bits: float
    bits: Dict[str, int]          # layer kind -> recommended weight bits
    layers: List[Dict] = field(default_factory=list)   # name, kind, weights, bits ('float')
    evidence: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"capacity utilization {self.utilization:.2f} "
                 f"({self.demand_bits:.0f} bits demanded / {self.capacity_bits:.0f} bits capacity)",
                 f"{'layer':<28} {'kind':<5} {'weights':>9}  bits"]
        for l in self.layers:
            lines.append(f"{l['name']:<28} {l['kind']:<5} {l['weights']:>9}  {l['bits']}")
        lines.append("evidence:")
        lines += [f"  - {e}" for e in self.evidence]
        return "\n".join(lines)


def _merge_evidence(evidence: Optional[Dict]) -> Dict[str, Dict]:
    merged = {k: dict(v) for k, v in PAPER_EVIDENCE.items()}
    for kind, values in (evidence or {}).items():
        if kind not in KINDS:
            raise ValueError(f"evidence keys must be among {KINDS}, got {kind!r}")
        unknown = set(values) - set(PAPER_EVIDENCE["fc"])
        if unknown:
            raise ValueError(f"evidence[{kind!r}] has unknown fields {sorted(unknown)}; "
                             f"allowed: {sorted(PAPER_EVIDENCE['fc'])}")
        merged[kind].update(values)
        merged[kind].setdefault("source", "measured")
        if "source" not in values:
            merged[kind]["source"] = "measured"
    for kind, e in merged.items():
        if not (isinstance(e["bits_per_param"], (int, float)) and e["bits_per_param"] > 0):
            raise ValueError(f"evidence[{kind!r}]['bits_per_param'] must be > 0, got {e['bits_per_param']!r}")
        for f in ("full_bits", "half_bits"):
            v = e[f]
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 32):
                raise ValueError(f"evidence[{kind!r}][{f!r}] must be an integer in [1, 32] or None, got {v!r}")
        if e["full_bits"] is None:
            raise ValueError(f"evidence[{kind!r}]['full_bits'] is required")
    return merged


def advise_bits(model: nn.Module, n_samples: int, num_classes: int = 2,
                evidence: Optional[Dict[str, Dict]] = None) -> BitAdvice:
    """Recommend weight bits per layer of `model` for a task of n_samples examples with
    num_classes labels. evidence: per kind ('fc', 'conv', 'rnn'), measured
    bits_per_param / full_bits / half_bits that replace paper 001's numbers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    positive_int("n_samples", n_samples)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    ev = _merge_evidence(evidence)
    output = output_layer(model)
    layers, weights_by_kind, capacity = [], {k: 0 for k in KINDS}, 0.0
    for name, m, layer_kind in layers_of(model):
        kind = layer_kind.family   # the measured kind of the layer-kind table (None: not measured)
        if kind is None:
            continue
        # a layer's own tensors, claimed children included (attention's out_proj)
        params = sum(p.numel() for p in m.parameters() if p.requires_grad)
        weights = sum(p.numel() for n, p in m.named_parameters()
                      if p.requires_grad and "weight" in n.rpartition(".")[2])
        capacity += params * ev[kind]["bits_per_param"]
        layers.append({"name": name or "(model)", "kind": kind, "weights": weights, "output": name == output})
        if name != output:
            weights_by_kind[kind] += weights
    if not layers:
        raise ValueError("model has no layer of a kind with measured capacity (Linear, attention, "
                         "convolution or RNN) to advise on")
    demand = n_samples * math.log2(num_classes)
    u = demand / capacity
    bits, evidence_lines = {}, []
    for kind in KINDS:
        if not weights_by_kind[kind]:
            continue
        e = ev[kind]
        full = e["full_bits"]
        half = e["half_bits"] if e["half_bits"] is not None else full
        if u >= 1:
            b, why = full, "at or above capacity: the full-capacity precision"
        elif u <= 0.5:
            b, why = half, "at most half capacity: the half-capacity precision"
        else:
            b = math.ceil(half + (full - half) * (u - 0.5) / 0.5)
            why = "between half and full capacity: interpolated, rounded up"
        bits[kind] = b
        half_txt = (f"{e['half_bits']} bits at half capacity" if e["half_bits"] is not None
                    else "no half-capacity number (full-capacity value kept)")
        evidence_lines.append(f"{kind}: {e['bits_per_param']} bits/param, no accuracy drop down to "
                              f"{full} bits at full capacity, {half_txt} [{e['source']}]; "
                              f"u = {u:.2f}, {why} -> {b} bits")
    evidence_lines.append("memorization is the worst case: generalization tasks keep their test "
                          "accuracy at fewer bits (paper 001, section 5.2), so these are safe upper bounds")
    for l in layers:
        l["bits"] = "float" if l.pop("output") else bits[l["kind"]]
    return BitAdvice(u, demand, capacity, bits, layers, evidence_lines)
