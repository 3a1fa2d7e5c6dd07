"""Generated Markdown includes for the docs: the scheme table, the layer-kind table, the
packed-kernel table, the operator schemas and the command line's --help text, read from the code itself.

The docs build calls `generate()` when it starts (this module is a Sphinx extension, see
docs/conf.py); `python docs/_ext/lowbit_docs.py` writes the same files by hand. Each file
under docs/_generated/ is rewritten only when its content changes, so an unchanged build
rebuilds nothing. The pages pull them in with MyST's ``{include}``.
"""
import argparse
import io
import os
import re
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Callable, Dict, List

DOCS = Path(__file__).resolve().parents[1]
OUT = DOCS / "_generated"
BITS_SHOWN = (1, 2, 3, 4, 8)


def _cell(text) -> str:
    """A Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _code(text) -> str:
    return f"`{text}`"


# --- the scheme table (lowbit.schemes.SCHEMES) ------------------------------------------

def schemes_md() -> str:
    from lowbit import schemes
    rows = []
    for spec in schemes.SCHEMES.values():
        levels = ", ".join(f"{b}: {spec.levels(b)}" for b in BITS_SHOWN if spec.min_bits <= b <= spec.max_bits)
        lo4, hi4 = spec.code_range(4)
        rows.append([
            _code(spec.name),
            f"{str(spec.code_dtype).replace('torch.', '')} ({'signed' if spec.signed else 'unsigned'}); "
            f"4 bits: [{lo4}, {hi4}]",
            f"{spec.min_bits}..{spec.max_bits}",
            levels + (" (at most)" if not spec.calibrated else ""),
            ", ".join(_code(p.name) for p in spec.params),
            ", ".join(_code(r) for r in spec.step_rules) or "none",
            _code(spec.retrain_step) if spec.retrain_step else "given",
            _code(spec.ptq_step) if spec.ptq_step else "given",
            ", ".join(_code(k) for k in spec.kernels),
        ])
    header = ["scheme", "codes", "bits", "levels for b bits", "parameters", "step rules",
              "retraining default", "PTQ default", "packed kernels"]
    notes = "\n".join(f"- `{s.name}`{f' ({s.label})' if s.label != s.name else ''}: {s.step_note}."
                      for s in schemes.SCHEMES.values())
    return (_table(header, rows) + "\nWhy the retraining and PTQ defaults are what they are:\n\n"
            + notes + "\n")


def scheme_params_md() -> str:
    from lowbit import schemes
    rows = []
    for spec in schemes.SCHEMES.values():
        for i, p in enumerate(spec.params):
            rows.append([_code(spec.name), f"p{i}: {_code(p.name)}", p.meaning,
                         "the weight's float dtype" if p.dtype == "weight" else p.dtype, _code(p.shape),
                         p.rule.replace("_", " ")])
    return _table(["scheme", "parameter", "meaning", "dtype", "shape", "constraint"], rows)


def purpose_defaults_md() -> str:
    from lowbit import config, schemes
    fields = sorted({k for d in config.PURPOSE_DEFAULTS.values() for k in d})
    rows = []
    for purpose, d in config.PURPOSE_DEFAULTS.items():
        steps = ", ".join(f"{n}: {_code(s.default_step(purpose))}" for n, s in schemes.SCHEMES.items()
                          if purpose in ("retrain", "ptq") and s.default_step(purpose))
        rows.append([_code(purpose)] + [_code(d[f]) if f in d else "" for f in fields] + [steps or "given codebooks"])
    return _table(["front end"] + [_code(f) for f in fields] + ["default step rule"], rows)


# --- the layer-kind table (lowbit.layers.KINDS) -----------------------------------------

def _samples():
    """(label, type, factory): one small instance per module type, only to list the tensors a
    kind reads from it."""
    from torch import nn
    return [
        ("MultiheadAttention", nn.MultiheadAttention, lambda: nn.MultiheadAttention(8, 2)),
        ("MultiheadAttention with kdim/vdim", nn.MultiheadAttention,
         lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=4)),
        ("RNN", nn.RNN, lambda: nn.RNN(4, 4)), ("LSTM", nn.LSTM, lambda: nn.LSTM(4, 4)),
        ("LSTM with proj_size", nn.LSTM, lambda: nn.LSTM(4, 4, proj_size=2)),
        ("GRU", nn.GRU, lambda: nn.GRU(4, 4)),
        ("Conv1d", nn.Conv1d, lambda: nn.Conv1d(2, 2, 1)), ("Conv2d", nn.Conv2d, lambda: nn.Conv2d(2, 2, 1)),
        ("Conv3d", nn.Conv3d, lambda: nn.Conv3d(2, 2, 1)), ("Linear", nn.Linear, lambda: nn.Linear(2, 2)),
        ("Embedding", nn.Embedding, lambda: nn.Embedding(4, 2)),
        ("EmbeddingBag", nn.EmbeddingBag, lambda: nn.EmbeddingBag(4, 2)),
        ("BatchNorm2d", nn.BatchNorm2d, lambda: nn.BatchNorm2d(2)),
    ]


def _type_names(kind) -> str:
    from torch import nn
    names = []
    for t in kind.types:
        if t is nn.RNNBase:
            names += ["RNN", "LSTM", "GRU"]
        elif t is nn.modules.batchnorm._BatchNorm:
            names += ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
        else:
            names.append(t.__name__ + (" and its subclasses" if t is nn.Linear else ""))
    return ", ".join(names)


def _slot_text(slot) -> str:
    text = _code(slot.path)
    if slot.role != "weight":
        return text + f" ({slot.role})"
    return text + (f" ({slot.blocks} blocks)" if slot.blocks > 1 else "")


def _slots(kind) -> str:
    """The tensors the kind reads from a sample of each of its module types (one layer of an
    RNN), with their role and row blocks; types with the same tensors share one entry."""
    groups: Dict[str, List[str]] = {}
    for label, t, make in _samples():
        if issubclass(t, kind.types):
            text = ", ".join(_slot_text(s) for s in kind.slots(make()))
            groups.setdefault(text, []).append(label)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{' / '.join(labels)}: {text}" for text, labels in groups.items())


def layer_kinds_md() -> str:
    from lowbit import layers
    rows = []
    for kind in layers.KINDS.values():
        rows.append([_code(kind.name), _type_names(kind), _slots(kind), ", ".join(kind.purposes),
                     "yes" if kind.output_candidate else "no", kind.family or "none", kind.hook])
    header = ["kind", "modules", "tensors (role, row blocks of granularity='group')", "front ends",
              "can be the output layer", "capacity family", "how attach swaps it"]
    text = _table(header, rows)
    fbd = ", ".join(_code(t.__name__) for t in layers.FLOAT_BY_DESIGN)
    return text + f"\nFloat by design (no front end quantizes them; `convert(strict=True)` accepts them): {fbd}.\n"


def layer_packing_md() -> str:
    from lowbit import layers
    rows = []
    for kind in layers.KINDS.values():
        rows.append([_code(kind.name), _type_names(kind),
                     _code(kind.packed) if kind.packed else "stays float",
                     kind.float_reason or "", kind.storage])
    return _table(["kind", "modules", "what `convert` builds", "why it stays float", "how files store it"], rows)


# --- the packed kernels (lowbit.inference.kernel_table.KERNELS) --------------------------

def kernels_md() -> str:
    from lowbit import schemes
    from lowbit.inference.kernel_table import ACTIVATIONS, KERNELS
    rows = []
    for k in KERNELS.values():
        modules = [k.linear] + [k.convs[t] for t in sorted(k.convs, key=lambda t: t.__name__, reverse=True)]
        rows.append([_code(k.name), ", ".join(_code(m.__name__) for m in modules),
                     ", ".join(_code(n) for n, spec in schemes.SCHEMES.items() if k.name in spec.kernels),
                     f"{k.activations}: {ACTIVATIONS[k.activations]}", k.summary,
                     ", ".join(_code(op) for op in k.ops),
                     "every CPU" if k.fast_on is None else ", ".join(_code(i) for i in k.fast_on)])
    return _table(["kernel", "modules", "schemes", "activations", "what it computes", "ops",
                   "`mode=\"auto\"` takes it on"], rows)


# --- the operators (torch.ops.lowbit) ---------------------------------------------------

def ops_md() -> str:
    import torch
    from lowbit import ops
    schemas = {s.name.split("::", 1)[1]: str(s) for s in torch._C._jit_get_all_schemas()
               if s.name.startswith("lowbit::")}
    lines = ["```text"] + [schemas[n].replace("lowbit::", "", 1) for n in ops.discovered_ops()] + ["```"]
    return "\n".join(lines) + "\n"


# --- the command line (lowbit.cli) ------------------------------------------------------

def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "92"
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_md() -> str:
    from lowbit import cli
    parser = cli.build_parser()
    parts = ["## `lowbit`", "", "```text", _help(parser), "```", ""]
    for name, sub in _subparsers(parser).items():
        parts += [f"## `lowbit {name}`", "", "```text", _help(sub), "```", ""]
        for name2, sub2 in _subparsers(sub).items():
            parts += [f"### `lowbit {name} {name2}`", "", "```text", _help(sub2), "```", ""]
    return "\n".join(parts)


def cli_table_md() -> str:
    from lowbit import cli
    return _table(["command", "what it does"], [[_code(f"lowbit {c.NAME}"), c.HELP] for c in cli.COMMANDS])


GENERATORS = {
    "schemes.md": schemes_md,
    "scheme_params.md": scheme_params_md,
    "purpose_defaults.md": purpose_defaults_md,
    "layer_kinds.md": layer_kinds_md,
    "layer_packing.md": layer_packing_md,
    "kernels.md": kernels_md,
    "ops.md": ops_md,
    "cli_help.md": cli_md,
    "cli_table.md": cli_table_md,
}

HEADER = "<!-- generated by docs/_ext/lowbit_docs.py from the code; do not edit -->\n\n"


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def generate(out: Path = OUT) -> List[Path]:
    """Write every generated include; returns their paths."""
    paths = []
    for name, make in GENERATORS.items():
        with redirect_stdout(io.StringIO()):
            text = HEADER + make()
        _write_if_changed(out / name, text)
        paths.append(out / name)
    return paths


# --- lowbit's docstrings: plain text, rendered faithfully -------------------------------
#
# lowbit's docstrings are plain text, not reStructuredText: argument lists are hanging
# indents ("name: meaning" with the continuation indented), examples are indented code,
# and prose holds |w|, x*y and name_ as plain characters. Read as reStructuredText they
# would turn into block quotes, substitutions and references, with warnings. This hook
# (autodoc-process-docstring) keeps the text as written: a block that is indented, or that
# mixes indentation, becomes a literal block; "- " items become a bullet list; in prose
# the characters reStructuredText would read as markup are escaped (`code` spans stay
# code, see default_role in conf.py). The sources are not changed.

_BACKTICKS = re.compile(r"(`[^`]*`)")
_MARKUP = re.compile(r"([*|\\])|(?<=\w)_(?=\W|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _escape(text: str) -> str:
    parts = _BACKTICKS.split(text)
    return "".join(p if i % 2 else _MARKUP.sub(lambda m: "\\" + m.group(0), p) for i, p in enumerate(parts))


def _blocks(lines: List[str]) -> List[List[str]]:
    out, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _is_bullets(block: List[str]) -> bool:
    """Lines at indent 0, the first bullet and every later line either a "- " item or its
    continuation indented by 2."""
    first = next((i for i, l in enumerate(block) if l.startswith("- ")), None)
    if first is None:
        return False
    if any(_indent(l) for l in block[:first]):
        return False
    return all(l.startswith("- ") or _indent(l) == 2 for l in block[first:])


def plain_to_rst(lines: List[str]) -> List[str]:
    out: List[str] = []
    for block in _blocks(lines):
        if all(_indent(l) == 0 for l in block) and not any(l.startswith(("|", "- ")) for l in block):
            out += _escape("\n".join(block)).split("\n")
        elif _is_bullets(block) and not any(l.lstrip().startswith("|") for l in block):
            first = next(i for i, l in enumerate(block) if l.startswith("- "))
            if first:
                out += _escape("\n".join(block[:first])).split("\n") + [""]
            out += _escape("\n".join(block[first:])).split("\n")
        else:
            base = min(_indent(l) for l in block)
            out += ["::", ""] + ["    " + l[base:] for l in block]
        out.append("")
    return out


def _process_docstring(app, what, name, obj, options, lines) -> None:
    if name.startswith("lowbit"):
        lines[:] = plain_to_rst(lines)


def _on_builder_inited(app) -> None:
    generate()


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for p in generate():
        print(p.relative_to(DOCS.parent), file=sys.stderr)
