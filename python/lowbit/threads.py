"""Threads and instruction set of the native kernels."""
from ._native import C


def get_num_threads() -> int:
    """Threads lowbit's kernels use: OMP_NUM_THREADS if set, else the CPUs this process
    may run on (Debian's torch defaults to one thread; lowbit does not follow it)."""
    return C.num_threads()


def set_num_threads(n: int) -> None:
    """Use n threads in lowbit's kernels (n <= 0 restores the default)."""
    if not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    C.set_num_threads(n)


def kernel_isa() -> str:
    """'avx2' or 'generic': which build of the kernels runs."""
    return C.isa()


def set_kernel_isa(name: str) -> None:
    """Force 'generic' or 'avx2' kernels, or 'auto' (for tests and benchmarks)."""
    C.set_isa(name)
