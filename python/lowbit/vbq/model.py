"""VBQ on a model: which layers, their accuracy under given codebooks, and the quantized copy.

`ModelEvaluator` computes top-1 accuracy (a fraction in [0, 1], the paper's fitness) of
a model whose layers use given codebooks. When the model runs as a plain chain of its
leaf modules (checked on a sample, as for LeNet-5), it caches each layer's input for the
current codebooks of the layers before it, so a candidate for layer l only reruns the
network from layer l on.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..devices import check_device
from ..layers import layers_of
from ..qrecord import record_qparams
from ..quant import codebook, fake_quantize
from ._checks import check_codebook, int_in

Codebooks = Sequence[Optional[np.ndarray]]


def quantizable_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(name, module) of every layer whose kind VBQ serves (lowbit.layers.KINDS: Linear,
    Conv1d/2d/3d, Embedding), with a weight, in registration order. VBQ searches one
    codebook per layer `weight`."""
    return [(n, m) for n, m, kind in layers_of(model)
            if "vbq" in kind.purposes and isinstance(getattr(m, "weight", None), nn.Parameter)]


def _bits_for(k: int) -> int:
    return max(1, (k - 1).bit_length())


def codebook_tensor(values, dtype: torch.dtype) -> torch.Tensor:
    """values as a strictly increasing tensor of dtype: values that the cast to float32
    merges are moved apart by one ulp each (float64 searches, float32 models)."""
    t = torch.as_tensor(np.asarray(values, np.float64), dtype=dtype)
    for i in range(1, len(t)):
        if not t[i] > t[i - 1]:
            t[i] = torch.nextafter(t[i - 1], torch.tensor(float("inf"), dtype=dtype))
    return t


@torch.no_grad()
def _leaf_chain(model: nn.Module, sample: torch.Tensor) -> Optional[List[nn.Module]]:
    """The leaf modules in call order if running them one after the other (flattening
    before a Linear) reproduces the model; None otherwise."""
    order: List[nn.Module] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in leaves]
    try:
        expected = model(sample)
    finally:
        for h in hooks:
            h.remove()
    try:
        out = _run(order, sample)
    except Exception:  # not a chain (branches, functional ops with shapes we cannot guess)
        return None
    return order if out.shape == expected.shape and torch.allclose(out, expected, atol=1e-6) else None


def _run(chain: Sequence[nn.Module], h: torch.Tensor) -> torch.Tensor:
    for m in chain:
        if isinstance(m, nn.Linear) and h.dim() > 2:
            h = torch.flatten(h, 1)
        h = m(h)
    return h


class ModelEvaluator:
    """Accuracy of `model` on (x, y) with codebooks on its quantizable layers.

    codebooks: one entry per layer of `self.names`, each a sorted array or None (float).
    device: where the evaluations run ("cpu", "cuda", "cuda:N"; None: where the model is).
        The evaluator's copy of the model and (x, y) move there once; `float_weights`
        stay on the CPU for the searches that read them (bounds, Lloyd-Max), and the
        codebooks' quantized weights are computed on the device.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 layers: Optional[Sequence[str]] = None, batch_size: int = 1000,
                 device=None):
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"need as many labels as inputs (> 0), got {len(x)} and {len(y)}")
        self.model = copy.deepcopy(model).eval()
        if device is not None:
            dev = check_device(device)
            self.model.to(dev)
            x, y = x.to(dev), y.to(dev)
        available = dict(quantizable_layers(self.model))
        self.names = list(layers) if layers is not None else list(available)
        unknown = [n for n in self.names if n not in available]
        if unknown or not self.names:
            raise ValueError(f"layers must name Linear/Conv layers of the model {list(available)}, got {unknown or self.names}")
        self.modules = [available[n] for n in self.names]
        self._device_weights = [m.weight.detach().clone() for m in self.modules]
        self.float_weights = [w.cpu() for w in self._device_weights]
        self.x, self.y = x, y
        self.batch_size = int_in("batch_size", batch_size, 1, 10 ** 9)
        self.evaluations = 0
        self._chain = _leaf_chain(self.model, x[:4])
        self._pos = [self._chain.index(m) for m in self.modules] if self._chain else None
        self._inputs: Dict[int, tuple] = {}
        self._wcache: Dict[tuple, torch.Tensor] = {}

    @property
    def layers(self) -> int:
        return len(self.names)

    def quantized_weight(self, layer: int, values) -> torch.Tensor:
        if values is None:
            return self._device_weights[layer]
        values = np.asarray(values, dtype=np.float64)
        key = (layer, values.tobytes())
        w = self._wcache.get(key)
        if w is None:
            if len(self._wcache) > 4096:
                self._wcache.clear()
            shadow = self._device_weights[layer]
            qp = codebook(codebook_tensor(values, shadow.dtype).to(shadow.device), _bits_for(values.size))
            w = self._wcache[key] = fake_quantize(shadow, qp)
        return w

    @torch.no_grad()
    def _set(self, codebooks: Codebooks) -> None:
        if len(codebooks) != self.layers:
            raise ValueError(f"need {self.layers} codebooks (None = float), got {len(codebooks)}")
        for l, m in enumerate(self.modules):
            m.weight.copy_(self.quantized_weight(l, codebooks[l]))

    @torch.no_grad()
    def _correct(self, chain, h: torch.Tensor) -> float:
        correct = 0
        for s in range(0, len(self.y), self.batch_size):
            out = _run(chain, h[s:s + self.batch_size]) if chain is not None else self.model(h[s:s + self.batch_size])
            correct += int((out.argmax(1) == self.y[s:s + self.batch_size]).sum())
        self.evaluations += 1
        return correct / len(self.y)

    def accuracy(self, codebooks: Codebooks) -> float:
        """Top-1 accuracy in [0, 1] with every layer at its codebook (None = float)."""
        self._set(codebooks)
        return self._correct(self._chain, self.x)

    @torch.no_grad()
    def _input_of(self, layer: int, codebooks: Codebooks) -> torch.Tensor:
        key = tuple(None if c is None else np.asarray(c, np.float64).tobytes() for c in codebooks[:layer])
        hit = self._inputs.get(layer)
        if hit is not None and hit[0] == key:
            return hit[1]
        if layer == 0:
            start, h = 0, self.x
        else:
            start, h = self._pos[layer - 1], self._input_of(layer - 1, codebooks)
        self._set(codebooks)
        h = torch.cat([_run(self._chain[start:self._pos[layer]], h[s:s + self.batch_size])
                       for s in range(0, len(h), self.batch_size)])
        self._inputs[layer] = (key, h)
        return h

    def accuracy_with(self, layer: int, values, codebooks: Codebooks) -> float:
        """Accuracy with `layer` at `values` and the other layers at `codebooks`."""
        cbs = list(codebooks)
        cbs[layer] = values
        if self._chain is None:
            return self.accuracy(cbs)
        h = self._input_of(layer, cbs)
        self._set(cbs)
        return self._correct(self._chain[self._pos[layer]:], h)

    def layer_fitness(self, layer: int, codebooks: Optional[Codebooks] = None):
        """fitness(pop [n, K]) for a GA on one layer, the others at `codebooks` (float)."""
        base = list(codebooks) if codebooks is not None else [None] * self.layers
        return lambda pop: [self.accuracy_with(layer, g, base) for g in pop]

    def network_fitness(self):
        """fitness(pop [n, K]) for a GA with one codebook shared by every layer."""
        return lambda pop: [self.accuracy([g] * self.layers) for g in pop]

    def sa_fitness(self, bins: int):
        """fitness(layer, ab [n, 2], state [L, 2]) for `sa`: Eq. 2 codebooks on every layer."""
        from .formula import formula

        def fit(layer, ab, state):
            cbs = [formula(a, b, bins) for a, b in state]
            return [self.accuracy_with(layer, formula(a, b, bins), cbs) for a, b in ab]
        return fit


def apply(model: nn.Module, codebooks: Union[Dict[str, object], Sequence, np.ndarray],
          layers: Optional[Sequence[str]] = None) -> nn.Module:
    """A copy of model whose weights hold their codebook-quantized values, each recorded
    with `lowbit.qrecord.record_qparams` (scheme 'codebook').

    codebooks: {layer name: values}, or a sequence aligned with `layers` (default: every
    quantizable layer), or one array used for every layer. None entries stay float.
    """
    out = copy.deepcopy(model)
    available = dict(quantizable_layers(out))
    if isinstance(codebooks, dict):
        table = dict(codebooks)
    else:
        names = list(layers) if layers is not None else list(available)
        if isinstance(codebooks, np.ndarray) and codebooks.ndim == 1 or isinstance(codebooks, torch.Tensor):
            codebooks = [codebooks] * len(names)
        if len(codebooks) != len(names):
            raise ValueError(f"need one codebook per layer ({len(names)}), got {len(codebooks)}")
        table = dict(zip(names, codebooks))
    for name, values in table.items():
        if name not in available:
            raise ValueError(f"{name!r} is not a Linear/Conv layer of the model; layers: {list(available)}")
        if values is None:
            continue
        m = available[name]
        cb = check_codebook(f"codebooks[{name!r}]", values)
        qp = codebook(codebook_tensor(cb, m.weight.dtype), _bits_for(cb.size))
        with torch.no_grad():
            m.weight.copy_(fake_quantize(m.weight.detach(), qp))
        record_qparams(m, "weight", qp)
    return out
