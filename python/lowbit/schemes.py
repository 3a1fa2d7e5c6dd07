"""The scheme table: every fact about a quantization scheme, in one record per scheme.

Code that needs a scheme fact (its code dtype, its level count, the name of p0, its
default step rule, which packed kernel serves it) reads `SCHEMES[name]`; it does not
branch on the name. The C++ side has the same table (cpp/include/lowbit/schemes.h);
tests/test_schemes.py checks that the two agree.

    import lowbit as lb
    spec = lb.schemes.get("symmetric")
    spec.levels(3), spec.param_names, spec.retrain_step, spec.ptq_step   # 7, ('step',), 'l2', 'maxabs'
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

from .reference import grids

MAX_BITS = 8


@dataclass(frozen=True)
class Param:
    """One quantizer parameter tensor: p0 or p1 of QParams."""
    name: str
    meaning: str
    dtype: str          # 'weight' (the weight's float dtype) or 'int32'
    shape: str          # '[G]' or '[G, K]'
    rule: str           # 'positive', 'power_of_two', 'increasing' (sorted values), 'code' (a valid code)
                        # or 'finite' (any finite value)


@dataclass(frozen=True)
class SchemeSpec:
    """One quantization scheme.

    levels(bits): how many values b bits give (a codebook: at most that many).
    step_rules: the rules that compute p0 from the weights (lowbit.calibrate's `step`);
        empty when the parameters are given, as a codebook's values are.
    retrain_step / ptq_step: the default rule for straight-through retraining
        (lb.attach, lb.retrain) and for data-free post-training quantization (lb.ptq);
        `step_note` says why they differ where they do.
    kernels: the packed inference kernels that can run these codes, preferred first
        (lb.inference.convert's mode='auto' takes the first): 'int' (int8 activations
        per row, integer sums), 'shift' (integer activations, power-of-two products),
        'vlut' (float activations, bit-plane codes, in-register tables) or 'lut' (float
        activations, tables).
    quantize_ref / dequantize_ref: the reference math (lowbit.reference.grids) on
        grouped inputs; the native kernels must reproduce it.
    """
    name: str
    label: str
    signed: bool
    min_bits: int
    params: Tuple[Param, ...]
    levels: Callable[[int], int]
    step_rules: Tuple[str, ...]
    retrain_step: Optional[str]
    ptq_step: Optional[str]
    step_note: str
    kernels: Tuple[str, ...]
    quantize_ref: Callable
    dequantize_ref: Callable
    max_bits: int = MAX_BITS

    @property
    def code_dtype(self) -> torch.dtype:
        return torch.int8 if self.signed else torch.uint8

    @property
    def param_names(self) -> Tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def p0_name(self) -> str:
        return self.params[0].name

    @property
    def has_zero_point(self) -> bool:
        """True when the scheme has a p1: an int32 zero point (asymmetric) or a float offset
        (range); params[1].dtype says which."""
        return len(self.params) > 1

    @property
    def calibrated(self) -> bool:
        """True when lowbit computes the parameters from the weights (a step rule exists)."""
        return bool(self.step_rules)

    def field_offset(self, bits: int) -> int:
        """Packed files and rows store code c as the unsigned field c + offset."""
        return 2 ** (bits - 1) if self.signed else 0

    def code_range(self, bits: int, values: Optional[int] = None) -> Tuple[int, int]:
        """The smallest and largest valid code (values: a codebook's K)."""
        if self.signed:
            return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
        return 0, (values if values is not None else 2 ** bits) - 1

    def default_step(self, purpose: str) -> Optional[str]:
        """The default step rule for 'retrain' or 'ptq'."""
        if purpose not in ("retrain", "ptq"):
            raise ValueError(f"purpose must be 'retrain' or 'ptq', got {purpose!r}")
        return self.retrain_step if purpose == "retrain" else self.ptq_step


_SYMMETRIC_NOTE = ("retraining uses paper 002's L2-optimal step (QStep); data-free PTQ uses "
                   "paper 004's max-abs rule round(w (2^(b-1) - 1) / max|w|), which keeps the "
                   "largest weight on the grid")

_RANGE_NOTE = ("one rule: paper 004's uniform-ASYMM formula, code = round((w - min)(2^b - 1) / (max - min)), "
               "value = min + code (max - min) / (2^b - 1), on the range as it is (not widened to contain 0). "
               "It is its own scheme, not a step rule of 'asymmetric', because its offset min is a float: "
               "asymmetric's int32 zero point (value = (code - z) scale) can hold it only by rounding it "
               "and widening the range to 0. 0 is then usually not a level, so the integer kernels "
               "(which need an integer zero field) do not serve it; the table kernels do")

SCHEMES: Dict[str, SchemeSpec] = {s.name: s for s in (
    SchemeSpec(
        name="symmetric", label="symmetric", signed=True, min_bits=2,
        params=(Param("step", "the distance D between levels: value = code * D", "weight", "[G]", "positive"),),
        levels=lambda b: 2 ** b - 1, step_rules=("l2", "maxabs", "meanstd"),
        retrain_step="l2", ptq_step="maxabs", step_note=_SYMMETRIC_NOTE, kernels=("int", "vlut", "lut"),
        quantize_ref=grids.symmetric_quantize, dequantize_ref=grids.symmetric_dequantize),
    SchemeSpec(
        name="asymmetric", label="asymmetric", signed=False, min_bits=2,
        params=(Param("scale", "the distance between levels: value = (code - zero_point) * scale",
                      "weight", "[G]", "positive"),
                Param("zero_point", "the code that stands for 0", "int32", "[G]", "code")),
        levels=lambda b: 2 ** b, step_rules=("minmax",), retrain_step="minmax", ptq_step="minmax",
        step_note="one rule: the min/max range widened to contain 0", kernels=("int", "vlut", "lut"),
        quantize_ref=grids.asymmetric_quantize, dequantize_ref=grids.asymmetric_dequantize),
    SchemeSpec(
        name="pow2", label="power of two", signed=True, min_bits=2,
        params=(Param("max_level", "the largest magnitude, a power of two; code c stands for "
                      "sign(c) max_level 2^(|c| - (2^(b-1) - 1)), code 0 for 0", "weight", "[G]",
                      "power_of_two"),),
        levels=lambda b: 2 ** b - 1, step_rules=("maxabs",), retrain_step="maxabs", ptq_step="maxabs",
        step_note="one rule: the largest level is 2^round(log2 max|w|)", kernels=("shift", "vlut", "lut"),
        quantize_ref=grids.pow2_quantize, dequantize_ref=grids.pow2_dequantize),
    SchemeSpec(
        name="codebook", label="codebook", signed=False, min_bits=1,
        params=(Param("codebook", "the sorted representative values; code c stands for value c",
                      "weight", "[G, K]", "increasing"),),
        levels=lambda b: 2 ** b, step_rules=(), retrain_step=None, ptq_step=None,
        # Kernels fastest first (convert(mode="auto") takes the first): 'vlut' (bit-plane
        # codes, in-register tables, 2..8 bits) before 'lut' (any width, float buffers).
        # Every scheme lists 'vlut' and 'lut': the float-activation kernels, which read the
        # values from lookup_tables and so serve any scheme.
        step_note="no rule: the values are given (VBQ, Lloyd-Max or your own)", kernels=("vlut", "lut"),
        quantize_ref=grids.codebook_quantize, dequantize_ref=grids.codebook_dequantize),
    SchemeSpec(
        name="range", label="min-max range", signed=False, min_bits=2,
        params=(Param("scale", "the distance between levels: value = offset + code * scale",
                      "weight", "[G]", "positive"),
                Param("offset", "the value of code 0 (the group's minimum)", "weight", "[G]", "finite")),
        levels=lambda b: 2 ** b, step_rules=("minmax",), retrain_step="minmax", ptq_step="minmax",
        step_note=_RANGE_NOTE, kernels=("vlut", "lut"),
        quantize_ref=grids.range_quantize, dequantize_ref=grids.range_dequantize),
)}
NAMES: Tuple[str, ...] = tuple(SCHEMES)
CALIBRATED: Tuple[str, ...] = tuple(n for n, s in SCHEMES.items() if s.calibrated)


def get(name: str) -> SchemeSpec:
    """The record of scheme `name`, or a ValueError listing the schemes."""
    spec = SCHEMES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"scheme must be one of {NAMES}, got {name!r}")
    return spec


def check_bits(name: str, bits, where: str = "") -> None:
    """bits must be an int in the scheme's range."""
    spec = get(name)
    if isinstance(bits, bool) or not isinstance(bits, int) or not spec.min_bits <= bits <= spec.max_bits:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}bits must be in [{spec.min_bits}, {spec.max_bits}] for the {name} "
                         f"scheme, got {bits!r}")


def check_step(name: str, step, where: str = "", field: str = "step") -> None:
    """step (None: the default) must be one of the scheme's rules; `field` names the argument."""
    spec = get(name)
    if step is not None and step not in spec.step_rules:
        prefix = f"{where}: " if where else ""
        if not spec.step_rules:
            raise ValueError(f"{prefix}the {name} scheme takes no {field} rule ({spec.step_note}), "
                             f"got {step!r}")
        raise ValueError(f"{prefix}{field} for the {name} scheme must be one of {spec.step_rules}, "
                         f"got {step!r}")
