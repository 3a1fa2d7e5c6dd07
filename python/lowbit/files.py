"""Writing user files atomically: a temporary file in the same folder, flushed to disk,
then renamed over the target, so a failure never leaves a half-written file."""
import os
import tempfile
from pathlib import Path
from typing import Union


def write_bytes_atomically(path: Union[str, Path], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomically(path: Union[str, Path], text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))
