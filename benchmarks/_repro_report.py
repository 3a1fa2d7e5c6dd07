"""Result records, statistics, CSV / Markdown tables, method comparisons and Fig. 2 for
repro_002. A record is a dict: the setting columns of its table (e.g. batch_norm, width),
then method, bits (None for the float model), our per-seed values and the paper's value.
"""
import csv
import io
import math
import statistics
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from lowbit.files import write_bytes_atomically, write_text_atomically

STAT_COLUMNS = ["method", "bits", "ours_mean", "ours_std", "n_seeds", "paper", "ours_per_seed"]


# ---- files ---------------------------------------------------------------------------------

def atomic_write(path: Path, data, binary: bool = False) -> None:
    """Write text (or bytes, binary=True) so that a result file is never half-written."""
    if binary:
        write_bytes_atomically(path, data)
    else:
        write_text_atomically(path, data)


def rows_to_csv(rows: List[dict], float_format: Optional[str] = ".6g") -> str:
    """CSV of dict rows, columns in the first row's order; floats as `float_format` (None:
    as Python prints them), None as an empty cell."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (format(v, float_format) if float_format and isinstance(v, float) else v)
                    for k, v in r.items()})
    return buf.getvalue()


def md_table(rows: List[dict], cols: Optional[Sequence[str]] = None, float_format: str = ".2f") -> str:
    """Markdown table of dict rows (`cols`, default the first row's keys); None as blank."""
    cols = list(rows[0]) if cols is None else list(cols)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(format(r[c], float_format) if isinstance(r[c], float) else
                                       ("" if r[c] is None else str(r[c])) for c in cols) + " |")
    return "\n".join(lines)


# ---- statistics ----------------------------------------------------------------------------

def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def std(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation over seeds; None with a single seed."""
    return statistics.stdev(values) if len(values) > 1 else None


def paired_difference(better: Sequence[float], baseline: Sequence[float]):
    """Mean and standard error of baseline - better over seeds. Runs of one seed start from
    the same float model and see the same batches, so the per-seed differences are paired;
    the standard error is None with a single seed."""
    diffs = [c - a for a, c in zip(better, baseline)]
    s = std(diffs)
    # Rounded so that float noise in equal means (e.g. +0.2 and -0.2) reads as a tie.
    return round(mean(diffs), 9) + 0.0, (None if s is None else s / math.sqrt(len(diffs)))


def fmt(value: Optional[float], digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def cell(record: dict, digits: int = 2) -> str:
    """'ours ± std (paper)' for a Markdown table cell."""
    vals = record["values"]
    text = fmt(mean(vals), digits)
    s = std(vals)
    if s is not None:
        text += f" ± {fmt(s, digits)}"
    if record.get("paper") is not None:
        text += f" ({fmt(record['paper'], digits)})"
    return text


# ---- CSV / Markdown tables -----------------------------------------------------------------

def to_csv(records: List[dict], setting_columns: Sequence[str], digits: int = 4) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(setting_columns) + STAT_COLUMNS)
    for r in records:
        s = std(r["values"])
        writer.writerow([r[c] for c in setting_columns] + [
            r["method"], "float" if r["bits"] is None else r["bits"],
            f"{mean(r['values']):.{digits}f}", "" if s is None else f"{s:.{digits}f}",
            len(r["values"]), "" if r["paper"] is None else r["paper"],
            ";".join(f"{v:.{digits}f}" for v in r["values"])])
    return out.getvalue()


def pivot(records: List[dict], column: str, columns: Sequence, row_label: Callable[[dict], str],
          digits: int = 2, header: str = "") -> List[str]:
    """A Markdown table: one row per row_label (in first-seen order), one column per value
    of record[column]."""
    rows: Dict[str, Dict] = {}
    for r in records:
        rows.setdefault(row_label(r), {})[r[column]] = cell(r, digits)
    lines = [f"| {header} | " + " | ".join(str(c) for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for label, cells in rows.items():
        lines.append(f"| {label} | " + " | ".join(cells.get(c, "") for c in columns) + " |")
    return lines


def row_label(r: dict) -> str:
    return "Float" if r["bits"] is None else f"{r['bits']}-bit {r['method']}"


# ---- comparisons ---------------------------------------------------------------------------

def _verdict(diff: Optional[float]) -> str:
    if diff is None:
        return ""
    return "yes" if diff > 0 else ("tie" if diff == 0 else "no")


def compare(records: List[dict], better: str, baseline: str, setting: Callable[[dict], str],
            digits: int = 2) -> List[str]:
    """Markdown saying, setting by setting, whether `better` beat `baseline` here and in the
    paper (lower is better for every metric here). Computed from the numbers only."""
    by_key: Dict[tuple, Dict[str, dict]] = {}
    for r in records:
        by_key.setdefault((setting(r), r["bits"]), {})[r["method"]] = r
    rows, ours_wins, clear_wins, paper_wins, paper_known = [], 0, 0, 0, 0
    against, beyond = [], []  # paper: better ahead, ours: not / ours: ahead, paper: not
    for (name, bits), methods in by_key.items():
        if better not in methods or baseline not in methods:
            continue
        a, c = methods[better], methods[baseline]
        diff, se = paired_difference(a["values"], c["values"])  # > 0: `better` is lower
        noise = se is not None and abs(diff) < 2 * se
        ours_wins += diff > 0
        clear_wins += diff > 0 and not noise
        paper_diff = None
        if a["paper"] is not None and c["paper"] is not None:
            paper_diff = c["paper"] - a["paper"]
            paper_known += 1
            paper_wins += paper_diff > 0
        where = f"{name}, {bits}-bit"
        if diff <= 0 and (paper_diff is None or paper_diff > 0):
            against.append(where + (" (within noise)" if noise else "")
                           + (" (no paper value)" if paper_diff is None else ""))
        elif diff > 0 and paper_diff is not None and paper_diff <= 0:
            beyond.append(where)
        agrees = "" if paper_diff is None else (
            "yes" if _verdict(diff) == _verdict(paper_diff) else "**no**")
        se_text = "" if se is None else f" ± {fmt(se, digits)}"
        rows.append(f"| {name} | {bits} | {fmt(diff, digits)}{se_text} | {_verdict(diff)}"
                    f"{' (within noise)' if noise else ''} | {fmt(paper_diff, digits)} | "
                    f"{_verdict(paper_diff)} | {agrees} |")
    if not rows:
        return []
    n = len(rows)
    clear = "" if clear_wins == ours_wins or all("±" not in r for r in rows) else \
        f" ({clear_wins} of them by more than two standard errors)"
    lines = [f"**{better} vs {baseline}.** {better} has the lower error in {ours_wins} of {n} "
             f"settings here{clear}; in the paper, in {paper_wins} of the {paper_known} "
             "settings it reports."]
    if against:
        lines.append(f"Where our result disagrees with the paper's claim that {better} beats "
                     f"{baseline} ({better} not better here): {'; '.join(against)}.")
    else:
        lines.append(f"Wherever the paper has {better} ahead of {baseline}, so do we.")
    if beyond:
        lines.append(f"{better} is ahead here but not in the paper: {'; '.join(beyond)}.")
    if any("±" in r for r in rows):
        lines.append("'± x' is the standard error of the paired per-seed difference; "
                     "'within noise' marks differences smaller than two of them.")
    lines += ["", f"| setting | bits | {baseline} − {better} (ours) | {better} better here? | "
                  f"{baseline} − {better} (paper) | better in paper? | same verdict? |",
              "|---|---|---|---|---|---|---|"] + rows
    return lines


def degradation(records: List[dict], methods: Sequence[str], setting: Callable[[dict], str],
                digits: int = 2) -> List[str]:
    """Mean loss against the float model of the same setting (quantized minus float), ours
    and the paper's, per bit width and method: the size of the gap between the studies."""
    floats = {setting(r): r for r in records if r["bits"] is None}
    acc: Dict[tuple, List[tuple]] = {}
    for r in records:
        f = floats.get(setting(r))
        if r["bits"] is None or r["method"] not in methods or f is None:
            continue
        ours = mean(r["values"]) - mean(f["values"])
        paper = None if r["paper"] is None or f["paper"] is None else r["paper"] - f["paper"]
        acc.setdefault((r["bits"], r["method"]), []).append((ours, paper))
    lines = ["| bits | method | loss vs float, ours | loss vs float, paper | settings |",
             "|---|---|---|---|---|"]
    for (bits, method), pairs in sorted(acc.items(), key=lambda kv: (-kv[0][0], methods.index(kv[0][1]))):
        # Average over the settings the paper reports, so both columns cover the same ones.
        both = [(o, p) for o, p in pairs if p is not None] or pairs
        papers = [p for _, p in both if p is not None]
        lines.append(f"| {bits} | {method} | {fmt(mean([o for o, _ in both]), digits)} | "
                     f"{fmt(mean(papers), digits) if papers else ''} | {len(both)} |")
    return lines


# ---- Fig. 2 --------------------------------------------------------------------------------

def draw_fig2(path: Path, curves: Dict[int, Dict[str, List[float]]], title: str) -> None:
    """Step size per layer against retraining epoch, one panel per bit width."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (bits, layers) in zip(axes[0], sorted(curves.items())):
        for name, steps in layers.items():
            ax.plot(range(len(steps)), steps, marker="o", label=name)
        ax.set_title(f"{bits}-bit")
        ax.set_xlabel("retraining epoch")
        ax.set_ylabel("step size Δ")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue(), binary=True)
