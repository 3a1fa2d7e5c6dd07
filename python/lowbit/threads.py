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


ISAS = ("generic", "avx2", "avx512")


def kernel_isa() -> str:
    """'avx512', 'avx2' or 'generic': which build of the kernels runs."""
    return C.isa()


def set_kernel_isa(name: str) -> None:
    """Force 'generic', 'avx2' or 'avx512' kernels, or 'auto' (the widest this CPU runs;
    for tests and benchmarks). A build the CPU cannot run is a ValueError."""
    C.set_isa(name)


def supported_isas() -> tuple:
    """The kernel builds this CPU can run, narrowest first (a subset of ISAS)."""
    has = {"generic": True, "avx2": C.cpu_has_avx2(), "avx512": C.cpu_has_avx512()}
    return tuple(n for n in ISAS if has[n])


def missing_isa_reason(name: str) -> str:
    """Why this CPU cannot run build `name` ('' when it can)."""
    if name == "avx2" and not C.cpu_has_avx2():
        return "this CPU has no AVX2/FMA"
    if name == "avx512" and not C.cpu_has_avx512():
        return "this CPU (or OS) lacks AVX-512 F/BW/VL/DQ with VNNI and VBMI"
    return ""
