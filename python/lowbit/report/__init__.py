"""The report of a `lowbit study` folder: index.html with the figures, every table as CSV
and Markdown (report.md), all rendered from the folder's study.json.

    lb.report.render("lowbit-report")      # -> lowbit-report/index.html

Rendering again (`lowbit report DIR`) rebuilds every file from study.json without
recomputing anything.
"""
import json
from pathlib import Path
from typing import Union

from ..files import write_text_atomically
from . import content, page
from .plots import FIGURES
from .tables import Table

STUDY_FILE = "study.json"


def load_summary(folder: Union[str, Path]) -> dict:
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {STUDY_FILE} in {folder}: run `lowbit study --out {folder}` first")
    try:
        summary = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); rerun `lowbit study --out {folder}`") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), dict) or not summary["models"]:
        raise ValueError(f"{path} holds no study results; rerun `lowbit study --out {folder}`")
    return summary


def _write_table(folder: Path, table: Table) -> str:
    rel = f"{table.name}.csv"
    write_text_atomically(folder / rel, table.csv_text())
    return rel


def render(folder: Union[str, Path]) -> Path:
    """Write index.html, report.md, summary.csv and per-model CSVs and PNGs; returns index.html."""
    folder = Path(folder)
    summary = load_summary(folder)
    max_drop = float(summary["settings"]["max_drop"])
    answers = [content.answer(label, m["steps"], max_drop) for label, m in summary["models"].items()]
    sentences = [content.sentence(a, max_drop) for a in answers]
    for label, m in summary["models"].items():
        found = content.failures(m["steps"])
        if found:
            sentences.append(f"{label}: {len(found)} unit{'s' if len(found) > 1 else ''} failed "
                             f"({found[0]['step']}: {found[0]['error']}); see the table of units that failed.")
    summary_table = content.summary_table(answers, max_drop)
    md = ["# lowbit study: how few bits, and with which method?", ""] + [f"- {s}" for s in sentences]
    md += ["", f"## {summary_table.title}", "", summary_table.markdown(), ""]
    sections = []
    for label, model in summary["models"].items():
        steps = model["steps"]
        heading = label if model["spec"] == label else f"{label} ({model['spec']})"
        parts, md_parts = [], [f"## {heading}", ""]
        for stem, caption, draw in FIGURES:
            rel = f"{label}/{stem}.png"
            if draw(label, steps, folder / rel, max_drop=max_drop) is not None:
                parts.append(page.figure(rel, caption))
                md_parts += [f"![{caption}]({rel})", ""]
        tables = [content.failures_table(label, steps),
                  content.results_table(label, steps), content.knee_table(label, steps, max_drop),
                  content.inference_table(label, steps), content.coverage_table(label, steps),
                  content.bit_efficiency_table(label, steps),
                  content.grouping_table(label, steps), content.advisor_table(label, steps, max_drop),
                  content.step_times_table(label, model)]
        for table in filter(None, tables):
            rel = _write_table(folder, table)
            parts.append(page.table_block(table, rel))
            md_parts += [f"### {table.title}", "", table.markdown(), "", f"CSV: `{rel}`", ""]
        best = steps.get("inference", {}).get("best")
        files = [m.get("file") for m in steps.get("inference", {}).get("models", []) if m.get("file")]
        if best and files:
            note = (f"The chosen model, packed: {files[0]} (load it with "
                    f"lb.load_quantized(path, model_factory), or `lowbit infer {files[0]} --model {model['spec']}`).")
            parts.append(f'<p class="files">{page.esc(note)}</p>')
            md_parts += [note, ""]
        sections.append((heading, parts))
        md += md_parts
    settings = summary["settings"]
    footer = [f"Data: {summary.get('data')}; every Linear/Conv weight quantized per output channel, the output "
              f"layer included, biases float; the best result is the fewest bits whose validation accuracy "
              f"stays within {max_drop:g} points of float.",
              "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "extra"),
              f"Regenerate: `{summary.get('command') or 'lowbit study'}` (finished steps are cached in steps/); "
              f"re-render only: `lowbit report {folder}`."]
    md += ["## Settings", ""] + [f"- {f}" for f in footer] + [""]
    write_text_atomically(folder / "summary.csv", summary_table.csv_text())
    write_text_atomically(folder / "report.md", "\n".join(md))
    html_text = page.page("lowbit study", sentences, page.table_block(summary_table, "summary.csv"),
                          sections, footer)
    index = folder / "index.html"
    write_text_atomically(index, html_text)
    return index


__all__ = ["render", "load_summary"]
