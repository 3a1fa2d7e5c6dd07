"""Progress bars (tqdm), imported only when a bar is shown: `import lowbit` does not need tqdm."""
from .optional import tqdm


def progress_bar(iterable=None, desc: str = "", disable: bool = False, **kwargs):
    """tqdm(iterable, desc=..., **kwargs), or the iterable itself when disabled."""
    if disable:
        return iterable
    return tqdm(iterable, desc=desc, **kwargs)
