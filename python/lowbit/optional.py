"""Optional third-party packages, imported where a feature needs them.

`import lowbit` needs only torch and numpy. Progress bars (tqdm), figures (matplotlib)
and capacity sweeps (distributed, optuna) import their package when they are used,
through `require`, so that a missing one fails with an error that names it and says
how to install it:

    auto = require("tqdm.auto", debian="python3-tqdm", pip="tqdm", purpose="progress bars",
                   hint="or pass progress=False")

The pip extras of pyproject.toml group them: lowbit[study] (tqdm, matplotlib, distributed),
lowbit[capacity] (distributed, optuna, and those two), lowbit[notebooks].
"""
import importlib
from types import ModuleType


def require(module: str, debian: str, pip: str, purpose: str, hint: str = "") -> ModuleType:
    """Import and return `module` (a dotted name, e.g. "tqdm.auto").

    If it cannot be imported, raise an ImportError saying that `purpose` needs it, with
    its Debian package (`debian`, for apt-get install) and its pip name (`pip`); `hint`
    (e.g. "or pass progress=False") is appended. The original error is chained."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        message = f"{pip} is needed for {purpose}: apt-get install {debian} (Debian) or pip install {pip}"
        if hint:
            message += f", {hint}"
        raise ImportError(message, name=module.split(".")[0]) from err


def tqdm(*args, **kwargs):
    """A progress bar: tqdm.auto.tqdm(*args, **kwargs)."""
    auto = require("tqdm.auto", "python3-tqdm", "tqdm", "progress bars", "or pass progress=False")
    return auto.tqdm(*args, **kwargs)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    matplotlib = require("matplotlib", "python3-matplotlib", "matplotlib", "figures")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "python3-matplotlib", "matplotlib", "figures")
