"""QuantConfig: what `lowbit.attach` quantizes and how, with per-layer overrides."""
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from . import schemes
from .quant import GRANULARITIES
_OVERRIDABLE = ("bits", "scheme", "granularity", "groups", "step", "codebook", "clip_grad")


@dataclass(frozen=True)
class LayerConfig:
    """The resolved quantizer of one weight tensor."""
    bits: int
    scheme: str
    granularity: str
    groups: Optional[int]
    step: str
    codebook: Optional[Tuple[float, ...]]
    clip_grad: bool


@dataclass
class QuantConfig:
    """How to quantize a model's weights.

    bits, scheme, granularity, groups, step: the quantizer of every weight (see
        `lowbit.calibrate`); step is the step-size rule ('l2', 'maxabs', 'meanstd' for
        symmetric; defaults to the scheme's usual rule).
    codebook: sorted values for scheme='codebook'.
    clip_grad: zero the straight-through gradient where the quantizer saturates.
    quantize_output: also quantize the output layer (the last Linear / Conv / RNN in
        the model's module order). Off by default, as in papers 000-002.
    quantize_bias: also quantize biases (per tensor, same scheme). Off by default.
    overrides: {pattern: {field: value}} for weights whose module name, or
        'module.param' name (e.g. 'lstm.weight_hh_l0'), matches the glob pattern.
        Later patterns win. Each pattern must match something.
    skip: glob patterns of modules or weights left float. Each must match something.
    """
    bits: int = 4
    scheme: str = "symmetric"
    granularity: str = "tensor"
    groups: Optional[int] = None
    step: Optional[str] = None
    codebook: Optional[Sequence[float]] = None
    clip_grad: bool = False
    quantize_output: bool = False
    quantize_bias: bool = False
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    skip: Sequence[str] = ()

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        _check_layer_fields(self.bits, self.scheme, self.granularity, self.groups, self.step,
                            self.codebook, "QuantConfig")
        if not isinstance(self.overrides, dict):
            raise TypeError(f"overrides must be a dict of pattern -> fields, got {type(self.overrides).__name__}")
        for pattern, values in self.overrides.items():
            check_override_fields(pattern, values, _OVERRIDABLE)
            merged = self._base()
            merged.update(values)
            _check_layer_fields(merged["bits"], merged["scheme"], merged["granularity"],
                                merged["groups"], merged["step"], merged["codebook"],
                                f"overrides[{pattern!r}]")
        if isinstance(self.skip, str):
            raise TypeError("skip must be a list of patterns, not a single string")

    def _base(self) -> Dict[str, Any]:
        return {"bits": self.bits, "scheme": self.scheme, "granularity": self.granularity,
                "groups": self.groups, "step": self.step, "codebook": self.codebook,
                "clip_grad": self.clip_grad}

    def skips(self, module_name: str, param: str) -> bool:
        return any(matches(p, module_name, param) for p in self.skip)

    def resolve(self, module_name: str, param: str) -> LayerConfig:
        """The quantizer of `module_name.param`, overrides applied."""
        values = self._base()
        for pattern, override in self.overrides.items():
            if matches(pattern, module_name, param):
                values.update(override)
        if values["step"] is None:
            values["step"] = schemes.get(values["scheme"]).retrain_step or ""
        if values["codebook"] is not None:
            values["codebook"] = tuple(float(v) for v in values["codebook"])
        return LayerConfig(**values)

    def with_bits(self, bits: int) -> "QuantConfig":
        return replace(self, bits=bits)


def check_override_fields(pattern: str, values, allowed: Sequence[str]) -> None:
    """overrides[pattern] must be a dict whose keys are all in `allowed`."""
    if not isinstance(values, dict):
        raise TypeError(f"overrides[{pattern!r}] must be a dict of fields, got {type(values).__name__}")
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"overrides[{pattern!r}] has unknown fields {sorted(unknown)}; "
                         f"allowed: {list(allowed)}")


def last_module_of(model, types) -> Optional[str]:
    """Name of the last module (in definition order) that is an instance of `types`: the
    output layer, which the papers keep in float by default."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, types):
            last = name
    return last


def matches(pattern: str, module_name: str, param: str) -> bool:
    return fnmatch.fnmatchcase(module_name, pattern) or fnmatch.fnmatchcase(f"{module_name}.{param}", pattern)


def _check_layer_fields(bits, scheme, granularity, groups, step, codebook, where) -> None:
    if not isinstance(scheme, str) or scheme not in schemes.SCHEMES:
        raise ValueError(f"{where}: scheme must be one of {schemes.NAMES}, got {scheme!r}")
    schemes.check_bits(scheme, bits, where)
    spec = schemes.get(scheme)
    if granularity not in GRANULARITIES:
        raise ValueError(f"{where}: granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if granularity == "group" and (not isinstance(groups, int) or groups < 1):
        raise ValueError(f"{where}: granularity='group' needs groups >= 1, got {groups!r}")
    schemes.check_step(scheme, step, where)
    if not spec.calibrated:
        if codebook is None or len(codebook) < 2 or len(codebook) > 2 ** bits:
            raise ValueError(f"{where}: scheme='codebook' needs 2..2^bits sorted values in codebook=")
        if any(b <= a for a, b in zip(codebook, list(codebook)[1:])):
            raise ValueError(f"{where}: codebook must be strictly increasing")

