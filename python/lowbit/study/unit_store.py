"""Finished study units, kept beside the step cache (`<report>/steps/units.jsonl`), so an
interrupted study resumes without recomputing them.

One JSON line per unit (lowbit.cluster.ResultStore: appended and fsync'ed as each unit
arrives). A unit's model files travel back with its result as bytes (a worker may not see
the report folder); they are written into the report folder first, then the line, and a
unit whose files have gone missing since counts as not finished.
"""
import os
from pathlib import Path
from typing import Union

from ..cluster import ResultStore
from ..files import write_bytes_atomically

UNITS_FILE = "units.jsonl"


class UnitStore(ResultStore):
    def __init__(self, path: Union[str, os.PathLike], root: Union[str, os.PathLike], fresh: bool = False):
        path = Path(path)
        if fresh and path.exists():      # --fresh: every unit is computed again
            path.unlink()
        super().__init__(path)
        self.root = Path(root)

    def __contains__(self, key: str) -> bool:
        result = self.get(key)
        return isinstance(result, dict) and all((self.root / a).is_file() for a in result.get("artifacts", []))

    def put(self, key: str, result: dict) -> None:
        result = dict(result)
        files = result.pop("files", {})
        for rel, data in files.items():
            write_bytes_atomically(self.root / rel, data)
        result["artifacts"] = sorted(files)
        super().put(key, result)
