"""The public API: calibrate / quantize / PackedTensor, granularity, the README and guide examples."""
import re
from pathlib import Path

import pytest
import torch

import lowbit as lb
from lowbit import reference as R

ROOT = Path(__file__).resolve().parents[1]


# The examples of the user guide pages that exercise this API (tests/test_docs.py runs every
# block of every page as well).
EXAMPLES = [
    ("docs/guide/quantizers.md", "## Quantizing a tensor"),
    ("docs/guide/retraining.md", "## Retraining from your own training loop"),
    ("docs/guide/ptq.md", "## PTQ, a packed file and the analysis"),
    ("docs/guide/inference.md", "## Convert and fuse"),
    ("docs/guide/vbq.md", "## A layer, then a model"),
    ("docs/guide/capacity.md", "## Measure, quantize, advise"),
]


def section_block(path: str, section: str) -> str:
    """The first ```python block under the heading `section` of a Markdown file, before the
    next heading of the same level."""
    text = (ROOT / path).read_text()
    start = text.find(section + "\n")
    assert start >= 0, f"{path}: no heading {section!r}"
    level = section.split(" ", 1)[0]
    end = text.find("\n" + level + " ", start + len(section))
    body = text[start:end if end >= 0 else len(text)]
    m = re.search(r"^```python\n(.*?)^```", body, re.S | re.M)
    assert m, f"{path}: no ```python block under {section!r}"
    return m.group(1)


def test_readme_examples_run():
    """Every ```python block of the README, in order, in one namespace; the quickstart is one."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert section_block("README.md", "## Quickstart") in blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


@pytest.mark.parametrize("path,section", EXAMPLES, ids=[f"{p}:{s[3:]}" for p, s in EXAMPLES])
def test_guide_examples_run(path, section):
    exec(compile(section_block(path, section), path, "exec"), {})


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric", "pow2"])
@pytest.mark.parametrize("granularity,groups", [("tensor", None), ("channel", None), ("group", 2)])
def test_calibrate_matches_reference_and_round_trips(scheme, granularity, groups):
    w = torch.randn(6, 5, 3)
    qp = lb.calibrate(w, scheme, 3, granularity, groups)
    G = lb.num_groups(w, granularity, groups)
    assert qp.groups == G
    ref = R.qparams(w, scheme, 3, G, lb.schemes.get(scheme).retrain_step)
    torch.testing.assert_close(qp.p0, ref[0])
    packed = lb.PackedTensor.from_tensor(w, qp)
    assert torch.equal(packed.dequantize(), lb.fake_quantize(w, qp))
    assert torch.equal(packed.codes(), lb.quantize(w, qp))
    param_bytes = qp.p0.numel() * 4 + (qp.p1.numel() * 4 if qp.p1 is not None else 0)
    assert packed.nbytes == (w.numel() * 3 + 7) // 8 + param_bytes


def test_codebook_helper_and_packed_size():
    qp = lb.codebook([-1.0, -0.25, 0.0, 0.5, 1.5])
    assert qp.bits == 3 and qp.groups == 1 and qp.p0.shape == (1, 5)
    w = torch.randn(100)
    packed = lb.PackedTensor.from_tensor(w, qp)
    assert packed.nbytes == (100 * 3 + 7) // 8 + 5 * 4
    assert set(packed.dequantize().unique().tolist()) <= {-1.0, -0.25, 0.0, 0.5, 1.5}
    with pytest.raises(ValueError, match="K >= 2"):
        lb.codebook([0.5])


def test_qstep_helper_and_granularity_errors():
    w = torch.randn(8, 4)
    assert lb.qstep(w, 4, "channel").shape == (8,)
    with pytest.raises(ValueError, match="granularity must be"):
        lb.calibrate(w, granularity="row")
    with pytest.raises(ValueError, match="groups dividing"):
        lb.calibrate(w, granularity="group", groups=3)
    with pytest.raises(ValueError, match="lowbit.codebook"):
        lb.calibrate(w, "codebook")
    with pytest.raises(ValueError, match="scheme must be"):
        lb.calibrate(w, "ternary")


def test_qparams_move_between_devices():
    qp = lb.calibrate(torch.randn(4, 4), "asymmetric", 4)
    moved = qp.to("meta")
    assert moved.p0.is_meta and moved.p1.is_meta and moved.scheme == "asymmetric"
