"""User code named by `module:function` (or `path/to/file.py:function`) entry points
(the study and the command line load models and data this way)."""
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable


def load_entry_point(spec: str, what: str = "entry point") -> Callable:
    """The function named by `spec`: 'package.module:function' (imported with the current
    folder on sys.path) or 'path/to/file.py:function'. `what` names the option in errors."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"{what} must look like 'module:function' or 'file.py:function', got {spec!r}")
    module_name, func_name = spec.split(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: no such file {module_name!r}")
        mod_spec = importlib.util.spec_from_file_location(f"_lowbit_user_{path.stem}", path)
        module = importlib.util.module_from_spec(mod_spec)
        try:
            mod_spec.loader.exec_module(module)
        except Exception as exc:
            raise ValueError(f"{what}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    else:
        if os.getcwd() not in sys.path:     # a console script does not have the current folder
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ValueError(f"{what}: cannot import module {module_name!r} ({exc})") from exc
        except Exception as exc:
            raise ValueError(f"{what}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise ValueError(f"{what}: module {module_name!r} has no attribute {func_name!r}")
    if not callable(func):
        raise ValueError(f"{what}: {spec} is not callable")
    return func


def is_entry_point(spec: str) -> bool:
    return isinstance(spec, str) and ":" in spec
