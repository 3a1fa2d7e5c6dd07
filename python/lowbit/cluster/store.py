"""A JSON-lines file of finished results, so an interrupted sweep resumes where it stopped.

Each result is one line written with a single append (O_APPEND) and fsync'ed: a crash can
leave at most a partial last line, which the next open cuts off (that job runs again).
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple, Union


def job_key(job: Any) -> str:
    """Canonical JSON of a job: the same job always gets the same key."""
    try:
        return json.dumps(job, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise TypeError(f"job must be JSON-serializable (dicts, lists, numbers, strings): {exc}") from None


class ResultStore:
    """Results keyed by job, kept in `path` (created on the first put)."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)
        self._results: Dict[str, Any] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a partial line from an interrupted write: drop it
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for number, line in enumerate(raw[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self._results[entry["key"]] = entry["result"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path}, line {number}: not a result record written by "
                                 "ResultStore; use another path") from None

    def __contains__(self, key: str) -> bool:
        return key in self._results

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: str, default=None):
        return self._results.get(key, default)

    def items(self) -> Iterator[Tuple[str, Any]]:
        return iter(list(self._results.items()))

    def put(self, key: str, result: Any) -> None:
        line = (json.dumps({"key": key, "result": result}, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._results[key] = result
