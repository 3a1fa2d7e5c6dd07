"""QuantConfig: what a model's quantization covers and how, for every front end.

`lowbit.attach` (retraining), `lowbit.ptq` and `lowbit.coverage` take the same config and
turn it into one plan (`lowbit.plan`). Fields left at None take the front end's default
(`PURPOSE_DEFAULTS`): retraining leaves the output layer float and uses each scheme's
retraining step rule; PTQ quantizes the output layer and BatchNorm, per output channel,
with each scheme's PTQ rule, as the papers do.
"""
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch

from . import schemes
from .quant import GRANULARITIES

# A codebook: sorted values, or a function (weight, bits) -> values [K] or [groups, K]
# computed from each tensor (e.g. Lloyd-Max per layer).
CodebookSpec = Union[Sequence[float], torch.Tensor, Callable[[torch.Tensor, int], Any], None]
OVERRIDABLE = ("bits", "scheme", "granularity", "groups", "step", "codebook", "clip_grad")

# The defaults of each front end, and why they differ (papers 000-002 retrain with a float
# output layer; paper 004 quantizes every layer, BatchNorm included, per output channel).
PURPOSE_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "retrain": {"granularity": "tensor", "quantize_output": False, "batchnorm": False},
    "ptq": {"granularity": "channel", "quantize_output": True, "batchnorm": True},
    "vbq": {"granularity": "tensor", "quantize_output": True, "batchnorm": False},
}


@dataclass(frozen=True)
class LayerConfig:
    """The resolved quantizer of one tensor (groups: the number of row groups for
    granularity='group'; codebook: the values, or the function that computes them)."""
    bits: int
    scheme: str
    granularity: str
    groups: Optional[int]
    step: Optional[str]
    codebook: CodebookSpec
    clip_grad: bool


@dataclass
class QuantConfig:
    """How to quantize a model's weights.

    bits, scheme, granularity, groups, step: the quantizer of every weight (see
        `lowbit.calibrate`). step is the step-size rule (`lowbit.schemes.get(scheme).step_rules`;
        None: the scheme's rule for this front end). granularity None: 'tensor' for
        retraining, 'channel' for PTQ; 'group' with groups=None uses each layer's natural
        row blocks (LSTM 4 gates, GRU 3, attention's q, k, v).
    codebook: scheme='codebook' values, sorted, or a function (weight, bits) -> values.
    clip_grad: zero the straight-through gradient where the quantizer saturates.
    quantize_output: also quantize the output layer (the last Linear / Conv / RNN in
        module order). None: off for retraining (papers 000-002), on for PTQ (paper 004).
    quantize_bias: also quantize biases (per tensor, same scheme). Off by default.
    batchnorm: quantize BatchNorm gamma / beta (PTQ only). None: on for PTQ.
    layers: glob patterns of the layers or tensors to quantize (default: all).
    overrides: {pattern: {field: value}} for tensors whose layer name, or tensor name
        (e.g. 'lstm.weight_hh_l0'), matches the glob pattern. Later patterns win. An
        override that changes the scheme starts from that scheme's default step rule.
    skip: glob patterns of layers or tensors left float.
    Every pattern must match something.
    """
    bits: int = 4
    scheme: str = "symmetric"
    granularity: Optional[str] = None
    groups: Optional[int] = None
    step: Optional[str] = None
    codebook: CodebookSpec = None
    clip_grad: bool = False
    quantize_output: Optional[bool] = None
    quantize_bias: bool = False
    batchnorm: Optional[bool] = None
    layers: Optional[Sequence[str]] = None
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    skip: Sequence[str] = ()

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        check_layer_fields(self._base(), "QuantConfig")
        if schemes.get(self.scheme).calibrated and self.codebook is not None:
            raise ValueError(f"codebook= is only used with scheme='codebook', got scheme={self.scheme!r}")
        if not isinstance(self.overrides, dict):
            raise TypeError(f"overrides must be a dict of pattern -> fields, got {type(self.overrides).__name__}")
        for pattern, values in self.overrides.items():
            check_override_fields(pattern, values)
            check_layer_fields(merge_override(self._base(), values), f"overrides[{pattern!r}]")
        self.skip = check_patterns(self.skip, "skip")
        if self.layers is not None:
            self.layers = check_patterns(self.layers, "layers")

    def _base(self) -> Dict[str, Any]:
        return {"bits": self.bits, "scheme": self.scheme, "granularity": self.granularity,
                "groups": self.groups, "step": self.step, "codebook": self.codebook,
                "clip_grad": self.clip_grad}

    def default(self, name: str, purpose: str):
        """The field's value, or the front end's default where it is None."""
        value = getattr(self, name)
        return PURPOSE_DEFAULTS[purpose][name] if value is None else value

    def with_bits(self, bits: int) -> "QuantConfig":
        return replace(self, bits=bits)


def merge_override(values: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """values with one override applied; a new scheme starts from its own default step rule."""
    out = dict(values)
    if "scheme" in override and "step" not in override:
        out["step"] = None
    out.update(override)
    return out


def check_override_fields(pattern: str, values) -> None:
    """overrides[pattern] must be a dict of QuantConfig layer fields."""
    if not isinstance(values, dict):
        raise TypeError(f"overrides[{pattern!r}] must be a dict of fields, got {type(values).__name__}")
    unknown = set(values) - set(OVERRIDABLE)
    if unknown:
        raise ValueError(f"overrides[{pattern!r}] has unknown fields {sorted(unknown)}; "
                         f"allowed: {list(OVERRIDABLE)}")


def check_patterns(patterns, what: str) -> Tuple[str, ...]:
    if isinstance(patterns, str):
        raise TypeError(f"{what} must be a list of glob patterns, not a single string")
    patterns = tuple(patterns)
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"{what} must hold glob pattern strings, got {type(p).__name__}")
    return patterns


def matches(pattern: str, *names: str) -> bool:
    """The glob pattern matches one of the names (a layer, its tensor's owner, the tensor)."""
    return any(fnmatch.fnmatchcase(n, pattern) for n in names)


def check_codebook_values(codebook, bits: int, where: str) -> None:
    """A fixed codebook: 1-D, 2..2^bits strictly increasing values."""
    values = torch.as_tensor(codebook, dtype=torch.float64)
    if values.dim() != 1:
        raise ValueError(f"{where}: codebook must be a 1-D list of values (or a function), "
                         f"got shape {tuple(values.shape)}")
    if not 2 <= values.numel() <= 2 ** bits:
        raise ValueError(f"{where}: scheme='codebook' needs 2..2^bits sorted values in codebook=")
    if not bool((values[1:] > values[:-1]).all()):
        raise ValueError(f"{where}: codebook must be strictly increasing")


def check_layer_fields(values: Dict[str, Any], where: str) -> None:
    """One layer's quantizer fields (granularity None: the front end's default)."""
    scheme, bits, granularity, groups = values["scheme"], values["bits"], values["granularity"], values["groups"]
    if not isinstance(scheme, str) or scheme not in schemes.SCHEMES:
        raise ValueError(f"{where}: scheme must be one of {schemes.NAMES}, got {scheme!r}")
    schemes.check_bits(scheme, bits, where)
    if granularity is not None and granularity not in GRANULARITIES:
        raise ValueError(f"{where}: granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if groups is not None and (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1):
        raise ValueError(f"{where}: granularity='group' needs groups >= 1, got {groups!r}")
    schemes.check_step(scheme, values["step"], where)
    if not schemes.get(scheme).calibrated:
        codebook = values["codebook"]
        if codebook is None:
            raise ValueError(f"{where}: scheme='codebook' needs codebook= (sorted values, or a "
                             "function (weight, bits) -> values)")
        if not callable(codebook):
            check_codebook_values(codebook, bits, where)
