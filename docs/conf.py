"""Sphinx configuration of lowbit's docs.

Build: ./dev docs (or .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html).
Markdown pages are read by myst-parser, notebooks (notebooks/, linked as docs/notebooks) by
nbsphinx without executing them, the API reference comes from the docstrings (autodoc), and
docs/_ext/lowbit_docs.py writes the tables generated from the code into docs/_generated/.
"""
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
if str(ROOT / "python") not in sys.path:      # an unbuilt checkout still finds the sources
    sys.path.append(str(ROOT / "python"))

import lowbit  # noqa: E402

project = "lowbit"
author = "the lowbit authors"
copyright = "the lowbit authors"
version = release = lowbit.__version__

extensions = [
    "myst_parser",
    "nbsphinx",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "lowbit_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "notebooks/README.md", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = []

nitpicky = False
# Docstrings are prose with `name` for code: render single backticks as code.
default_role = "code"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

nbsphinx_execute = "never"          # the tests execute the notebooks; the docs only render them
nbsphinx_allow_errors = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = False

html_theme = "alabaster"
html_title = f"lowbit {release}"
html_static_path = []
html_theme_options = {"description": "low-bit weight quantization for PyTorch", "fixed_sidebar": True,
                      "page_width": "1240px", "sidebar_width": "250px"}
