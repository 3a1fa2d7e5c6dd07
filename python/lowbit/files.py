"""Writing user files atomically: a temporary file in the same folder, flushed to disk,
then renamed over the target, so a failure never leaves a half-written file."""
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Union


def write_bytes_atomically(path: Union[str, Path], data: bytes) -> None:
    """The file gets the permissions a plain open() would give it: those of the file it
    replaces, else 0o666 less the umask (tempfile.mkstemp would leave it at 0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the OS applies the umask
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass
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


def write_json_atomically(path: Union[str, Path], obj) -> None:
    write_text_atomically(path, json.dumps(obj, indent=1, allow_nan=True) + "\n")
