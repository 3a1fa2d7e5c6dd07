"""The packed kernels convert can build: one record per kernel, registered by the module
file that runs it (modules.py, int_modules.py).

A scheme names the kernels that serve it, fastest first (lowbit.schemes, `kernels`); a
record here says what convert needs to build a kernel's modules: the module for a Linear and
for each convolution, which of convert's options it takes, the weights it fits (others go to
its fallback, which computes the same arithmetic), and the CPUs it is fast on.

    from lowbit.inference.kernel_table import KERNELS
    KERNELS["vlut"].activations, KERNELS["int"].options     # 'float', ('act_bits',)
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

from torch import nn

ACTIVATIONS = {
    "integer": "rounds activations to integers on the fly (outputs differ from the frozen model by "
               "that rounding)",
    "float": "keeps float activations (the frozen model's outputs up to summation order)",
}
OPTIONS = ("act_bits", "x_scale", "method")  # convert's kernel options


def _always(qp, features: int) -> bool:
    return True


@dataclass(frozen=True)
class PackedKernel:
    """One packed kernel as convert builds it.

    summary: what it computes and how, for the docs' kernel table;
    linear(weight, qp, bias, **options) and convs[type](conv, qp, **options) make its modules;
    options: which of convert's OPTIONS the modules take; fits(qp, in_features): whether it
    runs these weights (else `fallback` does); fast_on: the ISAs (lb.kernel_isa()) where
    mode='auto' picks it, None for all; ops: the torch.ops.lowbit operators its modules call
    (tests/test_kernel_table.py checks each against its reference, bench_inference.py times
    every registered kernel).
    """
    name: str
    activations: str
    summary: str
    linear: Callable
    convs: Dict[type, Callable] = field(default_factory=dict)
    options: Tuple[str, ...] = ()
    fits: Callable = _always
    fallback: Optional[str] = None
    fast_on: Optional[Tuple[str, ...]] = None
    ops: Tuple[str, ...] = ()

    def __post_init__(self):
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {tuple(ACTIVATIONS)}, got {self.activations!r}")
        unknown = set(self.options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"kernel {self.name!r}: unknown options {sorted(unknown)}; convert has {OPTIONS}")

    def conv_module(self, conv: nn.Module) -> Optional[Callable]:
        """The module class for this convolution (its exact type, else a base it extends)."""
        return self.convs.get(type(conv)) or next((c for t, c in self.convs.items() if isinstance(conv, t)), None)


KERNELS: Dict[str, PackedKernel] = {}


def register(kernel: PackedKernel) -> PackedKernel:
    if kernel.name in KERNELS:
        raise ValueError(f"kernel {kernel.name!r} is registered twice")
    KERNELS[kernel.name] = kernel
    return kernel


__all__ = ["ACTIVATIONS", "KERNELS", "OPTIONS", "PackedKernel", "register"]
