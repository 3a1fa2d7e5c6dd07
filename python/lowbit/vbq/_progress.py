"""tqdm progress for the native loops (called back once per generation / iteration)."""
from typing import Callable, Optional

from ..optional import tqdm


def progress_callback(enabled: bool, total: int, desc: str) -> "tuple[Optional[Callable], Callable]":
    """(callback for the C++ loop or None, close())."""
    if not enabled:
        return None, lambda: None
    bar = tqdm(total=total, desc=desc, leave=False)

    def step(i, best, current):
        bar.update(1)
        bar.set_postfix(best=f"{best:.4g}", now=f"{current:.4g}", refresh=False)
        return True

    return step, bar.close
