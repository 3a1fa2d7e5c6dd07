"""The docs build with no warnings, and their Python examples run.

The build (`python -m sphinx -W --keep-going -b html`, as `./dev docs` runs it, into a
temporary folder) starts in a subprocess when the first test of this file asks for it and
runs while the examples execute here; the last test waits for it. Every ```python block of
every hand-written Markdown page under docs/ runs, each page's blocks in one namespace, in
order. A block opts out with a `<!-- no-test -->` line right before its fence, only when it
needs data or time the tests cannot give.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_DIRS = {"_build", "_generated", "_ext"}
NO_TEST = "<!-- no-test -->"
FENCE = re.compile(r"^(`{3,})python[ \t]*\n(.*?)^\1[ \t]*$", re.S | re.M)

try:
    import sphinx  # noqa: F401
    HAVE_SPHINX = True
except ImportError:
    HAVE_SPHINX = False


def pages():
    """The hand-written Markdown pages: docs/**/*.md, not generated ones, not the notebooks
    folder (a link to notebooks/, executed by tests/test_notebooks.py)."""
    out = []
    for folder, dirs, files in os.walk(DOCS):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not os.path.islink(os.path.join(folder, d)))
        out += [Path(folder, f) for f in sorted(files) if f.endswith(".md")]
    return out


def python_blocks(text):
    """(line number, code, opted out) of every ```python block."""
    out = []
    for m in FENCE.finditer(text):
        before = [l for l in text[:m.start()].splitlines() if l.strip()]
        opted_out = bool(before) and before[-1].strip() == NO_TEST
        out.append((text.count("\n", 0, m.start()) + 1, m.group(2), opted_out))
    return out


PAGES = [p for p in pages() if python_blocks(p.read_text())]


@pytest.fixture(scope="module")
def docs_build(tmp_path_factory):
    """The running build (None without sphinx): started once, before the examples run."""
    if not HAVE_SPHINX:
        yield None
        return
    out = tmp_path_factory.mktemp("docs")
    log = open(out / "build.log", "w+")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    yield proc, out, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_pages_have_examples():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "guide/quantizers.md", "guide/retraining.md", "guide/ptq.md", "guide/vbq.md",
            "guide/inference.md", "guide/capacity.md", "guide/study.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_page_examples_run(page, docs_build):
    namespace = {"__name__": "__docs_example__"}
    for line, code, opted_out in python_blocks(page.read_text()):
        if opted_out:
            continue
        # padded so that tracebacks give the page's own line numbers
        exec(compile("\n" * line + code, str(page.relative_to(ROOT)), "exec"), namespace)


def test_docs_build_without_warnings(docs_build):
    if docs_build is None:
        pytest.skip("sphinx is not importable: install python3-sphinx, python3-myst-parser and "
                    "python3-nbsphinx (./dev setup does)")
    proc, out, log = docs_build
    try:
        rc = proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    log.seek(0)
    output = log.read()
    assert rc == 0, f"sphinx-build -W failed (exit {rc}):\n{output}"
    assert "WARNING" not in output and "ERROR" not in output, output
    assert (out / "html" / "index.html").exists()
    for page in ("guide/quantizers", "api/lowbit.schemes", "results/paper-004", "notebooks/quickstart",
                 "contributing"):
        assert (out / "html" / f"{page}.html").exists(), page
