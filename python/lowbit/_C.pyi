"""Type stubs for lowbit._C, the compiled pybind11 module (cpp/bindings.cpp and
cpp/vbq_bindings.cpp). Tensor ops are not here: they are registered with TORCH_LIBRARY
and reached through torch.ops.lowbit.

The submodule lowbit._C.vbq is written as the class `vbq` with static methods, so that
this one file types `lowbit._C.vbq.ga_run(...)`; tests/test_stubs.py keeps the names and
parameters here equal to those of the built module. Parameters that the bindings leave
unnamed (pybind11's arg0, arg1, ...) are positional-only (before `/`).
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Version string of the torch the module was compiled against.
built_with_torch: str

def num_threads() -> int:
    """Threads used by lowbit's native kernels."""

def set_num_threads(n: int) -> None:
    """Set the thread count (n <= 0 restores the default: OMP_NUM_THREADS, else the CPUs
    this process may use)."""

def cpu_has_avx2() -> bool: ...

def cpu_has_avx512() -> bool:
    """True when the CPU and OS run the avx512 build (AVX-512 F/BW/VL/DQ, VNNI, VBMI)."""

def isa() -> str:
    """Instruction set of the kernels in use: 'avx512', 'avx2' or 'generic'."""

def set_isa(name: str) -> None:
    """Force 'generic', 'avx2' or 'avx512' kernels, or 'auto' to pick by CPU."""

def scheme_traits() -> List[Dict[str, Any]]:
    """The C++ scheme table: one dict per scheme (name, is_signed, min_bits, max_bits, p0,
    p0_rule, has_zero_point, p1, step_rules)."""

# (generation or iteration, best fitness, mean or current fitness) -> None / True to go on,
# False to stop.
_Progress = Callable[[int, float, float], Optional[bool]]

class vbq:
    """Variable bin-size quantization (paper 003): the submodule lowbit._C.vbq."""

    class Objective:
        """A native objective (lower is better) over codebooks."""

        def evaluate(self, genomes: ArrayLike) -> NDArray[np.float64]:
            """Objective of each row of genomes [n, K] -> [n]."""
        @property
        def energy(self) -> float: ...

    @staticmethod
    def weight_mse(w: ArrayLike) -> "vbq.Objective": ...
    @staticmethod
    def layer_output_mse(weight: ArrayLike, x: ArrayLike) -> "vbq.Objective":
        """weight [out, in] (float64) and activations x [rows, in] (float32)."""
    @staticmethod
    def ga_run(fitness: Union["vbq.Objective", Callable[[NDArray[np.float64]], ArrayLike]],
               bins: int, population: int, generations: int, lo: float, hi: float,
               symmetric: bool, rates: Sequence[float], seed: int,
               init: Optional[ArrayLike] = None, progress: Optional[_Progress] = None) -> Dict[str, Any]:
        """Genetic algorithm; rates = (reproduce, crossover, mutate). Returns best,
        best_fitness, best_history, mean_history, population, fitness, evaluations."""
    @staticmethod
    def ga_repair(u: ArrayLike, lo: float, hi: float, strict_lo: bool, /) -> NDArray[np.float64]: ...
    @staticmethod
    def ga_crossover(p1: ArrayLike, p2: ArrayLike, center: float, count: int, lo: float, hi: float,
                     strict_lo: bool, /) -> Tuple[NDArray[np.float64], NDArray[np.float64]]: ...
    @staticmethod
    def ga_mutate(u: ArrayLike, index: int, r: float, lo: float, hi: float, strict_lo: bool,
                  /) -> NDArray[np.float64]: ...
    @staticmethod
    def roulette_weights(fitness: ArrayLike, /) -> NDArray[np.float64]: ...
    @staticmethod
    def sa_run(fitness: Union[Sequence["vbq.Objective"],
                              Callable[[int, NDArray[np.float64], NDArray[np.float64]], ArrayLike]],
               layers: int, bins: int, a0: Sequence[float], b0: Sequence[float], t0: float,
               cooling: float, scale: float, patience: int, max_iterations: int, seed: int,
               progress: Optional[_Progress] = None) -> Dict[str, Any]:
        """Simulated annealing on (a, b) per layer. Returns state, best_state, fitness,
        best_fitness, fitness_history, temperature_history, trace, iterations,
        evaluations, converged."""
    @staticmethod
    def sa_acceptance(e: float, e_new: float, temperature: float, scale: float, /) -> float: ...
    @staticmethod
    def formula_values(a: float, b: float, c: float, d: float, n: int, /) -> NDArray[np.float64]: ...
    @staticmethod
    def fit_formula(values: ArrayLike, symmetric: bool,
                    /) -> Tuple[float, float, float, float, float, float]:
        """(a, b, c, d, r2, sse)."""
    @staticmethod
    def lloyd_max(w: ArrayLike, bins: int, max_iter: int, tol: float, init: Optional[ArrayLike],
                  /) -> Tuple[NDArray[np.float64], int]:
        """(codebook [bins], iterations)."""
