"""Progress bars (tqdm), imported only when a bar is shown: `import lowbit` does not need tqdm."""


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress bars need tqdm: apt-get install python3-tqdm (Debian) or "
                          "pip install tqdm, or pass progress=False") from None
    return tqdm


def progress_bar(iterable=None, desc: str = "", disable: bool = False, **kwargs):
    """tqdm(iterable, desc=..., **kwargs), or the iterable itself when disabled."""
    if disable:
        return iterable
    return _tqdm()(iterable, desc=desc, **kwargs)
