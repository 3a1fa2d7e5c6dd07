"""CONTRIBUTING.md's checklists name files that exist, and the tables they point at hold
what the checklists say."""
import re
from pathlib import Path

import lowbit as lb
from lowbit.inference.convert import BUILDERS
from lowbit.reference.qparams import STEP_RULES

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()


def test_every_file_the_checklists_name_exists():
    paths = set(re.findall(r"`((?:python|cpp|tests|benchmarks)/[\w/.-]+\.(?:py|h|cpp|inc))`", GUIDE))
    assert len(paths) > 15
    missing = sorted(p for p in paths if "<" not in p and not (ROOT / p).is_file())
    assert not missing, missing


def test_the_tables_the_checklists_extend_are_complete():
    for name, spec in lb.schemes.SCHEMES.items():         # a scheme: its step rules have references
        assert {(name, r) for r in spec.step_rules} == {k for k in STEP_RULES if k[0] == name}
    for kind in lb.LAYER_KINDS.values():                  # a layer kind: a builder when it packs
        assert (kind.packed is not None) == (kind.name in BUILDERS)
