"""Loads lowbit._C (which registers torch.ops.lowbit.*) or explains why it cannot."""
import torch

_HOW_TO_BUILD = ("Rebuild it with `./dev setup` (or `pip install --no-build-isolation -e .` "
                 "in a venv that sees this torch) from the lowbit source tree.")

try:
    from . import _C  # noqa: F401  (importing registers the operators)
except ImportError as exc:  # pragma: no cover - exercised by hand, not in CI
    raise ImportError(
        f"lowbit's compiled extension lowbit._C could not be loaded ({exc}). "
        f"It is missing or was built for another Python/torch. {_HOW_TO_BUILD}") from exc

if _C.built_with_torch != torch.__version__:  # pragma: no cover
    raise ImportError(
        f"lowbit._C was built against torch {_C.built_with_torch} but this process runs "
        f"torch {torch.__version__}; the C++ ABI differs between versions. {_HOW_TO_BUILD}")

C = _C
