"""repro_003's stored units as values per (method, bits, seed), and the paired statistics
between methods: a paired t over seeds and McNemar per seed on the held-out images."""
from typing import Dict, List, Optional, Sequence

import numpy as np

import _repro_003_units as U
from _stats import McNemar, Paired, mcnemar, paired_t

FLOAT = "float"


class Results:
    """Finished units of one run. A value is None where its unit has not finished."""

    def __init__(self, plan, phases: Dict[str, List[dict]], stored: Dict[str, Optional[dict]], key_of):
        self.plan = plan
        self.floats: Dict[int, dict] = {}
        self.searches: Dict[tuple, dict] = {}
        self.heatmap: Optional[dict] = None
        self.network: Dict[tuple, dict] = {}     # Fig. 5: (mode, seed) -> result
        self.done = self.total = 0
        for j in (j for js in phases.values() for j in js):
            r = stored.get(key_of(j))
            self.total += 1
            self.done += r is not None
            if r is None:
                continue
            if j["kind"] == "float":
                self.floats[j["seed"]] = r
            elif j["kind"] == "search":
                self.searches[(j["method"], j["bits"], j["n_calib"], j["seed"])] = r
            elif j["kind"] == "network_ga":
                self.network[(j["mode"], j["seed"])] = r
            else:
                self.heatmap = r

    def unit(self, method: str, bits: Optional[int], seed: int, n_calib: Optional[int] = None) -> Optional[dict]:
        """The scores (calib, held_out, held_correct) of a method at bits for a seed."""
        if method == FLOAT or method in U.BASELINES:
            r = self.floats.get(seed)
            if r is None:
                return None
            return r["float"] if method == FLOAT else r["baselines"].get(str(bits), {}).get(method)
        return self.searches.get((method, bits, n_calib or self.plan.n_calib, seed))

    def values(self, method, bits, seeds: Sequence[int], field="held_out", n_calib=None) -> Dict[int, float]:
        out = {}
        for s in seeds:
            r = self.unit(method, bits, s, n_calib)
            if r is not None:
                out[s] = r[field]
        return out

    def outcomes(self, method, bits, seed, n_calib=None) -> Optional[np.ndarray]:
        r = self.unit(method, bits, seed, n_calib)
        return None if r is None else U.unpack(r["held_correct"], r["n_held_out"])

    def sa_runs(self) -> List[dict]:
        return [{"bits": b, "n_calib": n, "seed": s, **r["sa"], "seconds": r["seconds"],
                 "cpu_seconds": r.get("cpu_seconds", float("nan"))}
                for (m, b, n, s), r in sorted(self.searches.items()) if m == U.SA]

    def ga_runs(self) -> List[dict]:
        return [{"bits": b, "seed": s, **r["ga"], "held_out": r["held_out"], "calib": r["calib"],
                 "seconds": r["seconds"], "cpu_seconds": r.get("cpu_seconds", float("nan"))}
                for (m, b, n, s), r in sorted(self.searches.items()) if m == U.GA]


def paired(res: Results, a: tuple, b: tuple, seeds: Sequence[int], field: str = "held_out") -> Optional[Paired]:
    """a - b over the seeds both have; a, b = (method, bits[, n_calib])."""
    va, vb = res.values(*a[:2], seeds, field, *a[2:]), res.values(*b[:2], seeds, field, *b[2:])
    common = sorted(set(va) & set(vb))
    if not common:
        return None
    return paired_t([va[s] for s in common], [vb[s] for s in common])


def mcnemars(res: Results, a: tuple, b: tuple, seeds: Sequence[int]) -> Dict[int, McNemar]:
    """McNemar of a against b on the held-out images, per seed both have."""
    out = {}
    for s in seeds:
        oa, ob = res.outcomes(*a[:2], s, *a[2:]), res.outcomes(*b[:2], s, *b[2:])
        if oa is not None and ob is not None:
            out[s] = mcnemar(oa.tolist(), ob.tolist())
    return out
