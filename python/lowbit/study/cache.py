"""Finished study steps kept as JSON files, so a rerun skips them.

Each step's result lives in `<report>/steps/<model>/<step>.json` with the key it was
computed under: a hash of the step's settings, the workload's fingerprint (float weights
and data) and the keys of the steps before it. A changed setting reruns that step and
everything after it; files the result names as artifacts must still exist.
"""
import hashlib
import json
from pathlib import Path
from typing import Optional

from ..files import write_json_atomically


def step_key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StepCache:
    def __init__(self, folder: Path, enabled: bool = True):
        self.folder, self.enabled = Path(folder), enabled

    def path(self, model: str, step: str) -> Path:
        return self.folder / model / f"{step}.json"

    def get(self, model: str, step: str, key: str, root: Path) -> Optional[dict]:
        """The cached result, or None when absent, stale, unreadable or missing an artifact."""
        if not self.enabled:
            return None
        try:
            saved = json.loads(self.path(model, step).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("key") != key:
            return None
        result = saved.get("result")
        if not isinstance(result, dict):
            return None
        if not all((root / a).is_file() for a in result.get("artifacts", [])):
            return None
        return result

    def put(self, model: str, step: str, key: str, result: dict) -> None:
        write_json_atomically(self.path(model, step), {"key": key, "result": result})
