"""One model's progress through the study: its workload, the results of the steps so far
and the key chain the next step's cache key hangs on."""
from dataclasses import dataclass, field
from typing import Dict, List

from .context import StepContext
from .source import WorkloadSource


@dataclass
class ModelRun:
    label: str
    spec: str                       # what the user named: a shipped name, an entry point, or the label
    ctx: StepContext
    source: WorkloadSource          # how a worker rebuilds ctx.workload
    chain: List = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)
    cached: List[str] = field(default_factory=list)

    @property
    def workload(self):
        return self.ctx.workload

    def reserve(self, step) -> None:
        """Keep the step's place in the results' order before its result arrives."""
        self.ctx.results[step.NAME] = None
        self.seconds[step.NAME] = None

    def record(self, step, result: dict, cached: bool) -> None:
        self.ctx.results[step.NAME] = result
        self.seconds[step.NAME] = result["seconds"]
        if cached:
            self.cached.append(step.NAME)

    def summary(self) -> dict:
        return {"spec": self.spec, "fingerprint": self.workload.fingerprint, "steps": self.ctx.results,
                "cached_steps": self.cached, "seconds": self.seconds}
