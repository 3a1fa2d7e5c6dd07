"""Result files for the reproductions (atomic writes, CSV and Markdown tables of dict rows),
and repro_002's records, paired comparisons and Fig. 2."""
import csv
import io
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from lowbit.files import write_bytes_atomically, write_text_atomically


def cpu_model() -> str:
    """lscpu's model name (platform's guess where lscpu is missing)."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name:")), model)
    except (OSError, subprocess.SubprocessError):
        pass
    return model


def machine() -> str:
    """The CPU and its cores, for a results page."""
    return f"{cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)"

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


# ---- paper 002: records ---------------------------------------------------------------------
# A record: the setting columns of its table (e.g. batch_norm, width), then method, bits (None
# for the float model), `values` and `selected` ({seed: value}; selected = before the
# fixed-step phase, retrained methods only) and the paper's value.

def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def std(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation over seeds; None with a single seed."""
    return statistics.stdev(values) if len(values) > 1 else None


def fmt(value: Optional[float], digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def cell(record: dict, digits: int = 2) -> str:
    """'ours ± std (paper)' for a Markdown table cell."""
    vals = list(record["values"].values())
    if not vals:
        return "–" + ("" if record.get("paper") is None else f" ({fmt(record['paper'], digits)})")
    text = fmt(mean(vals), digits)
    s = std(vals)
    if s is not None:
        text += f" ± {fmt(s, digits)}"
    if record.get("paper") is not None:
        text += f" ({fmt(record['paper'], digits)})"
    return text


def to_csv(records: List[dict], setting_columns: Sequence[str], digits: int = 4) -> str:
    """One row per (setting, method, bits): our mean, std and per-seed values after the
    fixed-step phase, the same before it ('selected'), and the paper's value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(setting_columns) + STAT_COLUMNS + ["selected_mean", "selected_per_seed"])
    for r in records:
        vals = [r["values"][k] for k in sorted(r["values"])]
        sel = [r["selected"][k] for k in sorted(r.get("selected", {}))]
        s = std(vals) if vals else None
        writer.writerow([r[c] for c in setting_columns] + [
            r["method"], "float" if r["bits"] is None else r["bits"],
            f"{mean(vals):.{digits}f}" if vals else "", "" if s is None else f"{s:.{digits}f}",
            len(vals), "" if r["paper"] is None else r["paper"],
            ";".join(f"{v:.{digits}f}" for v in vals),
            f"{mean(sel):.{digits}f}" if sel else "", ";".join(f"{v:.{digits}f}" for v in sel)])
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


# ---- paper 002: paired comparisons ----------------------------------------------------------

def paired_rows(records: List[dict], better: str, baseline: str, setting: Callable[[dict], str],
                field: str = "values", baseline_bits=None) -> List[dict]:
    """Setting by setting: baseline − better over the seeds both have (> 0: `better` has
    the lower error / BPC), paired t with n − 1 df, its 95 % CI, and Holm's correction
    over the rows. baseline_bits: compare with the baseline at other bits (a function of
    the better record's bits), e.g. the float model (lambda b: None)."""
    from _stats import holm, paired_t
    index = {(setting(r), r["bits"], r["method"]): r for r in records}
    rows = []
    for r in records:
        if r["method"] != better:
            continue
        bits_b = r["bits"] if baseline_bits is None else baseline_bits(r["bits"])
        base = index.get((setting(r), bits_b, baseline))
        if base is None:
            continue
        a = r[field] if field in r and r[field] else r["values"]
        b = base[field] if field in base and base[field] else base["values"]
        seeds = sorted(set(a) & set(b))
        if not seeds:
            continue
        test = paired_t([b[s] for s in seeds], [a[s] for s in seeds])
        paper = None if r["paper"] is None or base["paper"] is None else base["paper"] - r["paper"]
        rows.append({"setting": setting(r), "bits": r["bits"], "test": test, "paper": paper,
                     "record": r, "baseline": base})
    for row, reject in zip(rows, holm([row["test"].p for row in rows])):
        row["holm"] = reject
    return rows


def pooled(rows: List[dict]):
    """One test over a claim's settings: each seed's mean difference over the settings
    (seeds present in every setting), paired t with n − 1 df; plus the paper's mean."""
    from _stats import paired_t
    if not rows:
        return None, None
    seeds = None
    for row in rows:
        a, b = row["record"], row["baseline"]
        have = set(a["values"]) & set(b["values"])
        seeds = have if seeds is None else seeds & have
    seeds = sorted(seeds or [])
    if not seeds:
        return None, None
    per_seed = [mean([row["baseline"]["values"][s] - row["record"]["values"][s] for row in rows])
                for s in seeds]
    papers = [row["paper"] for row in rows if row["paper"] is not None]
    return paired_t(per_seed, [0.0] * len(per_seed)), (mean(papers) if papers else None)


def _direction(test) -> str:
    if test.ci_low is None:
        return "better" if test.mean > 0 else ("tie" if test.mean == 0 else "worse")
    if test.ci_low > 0:
        return "**better**"
    if test.ci_high < 0:
        return "**worse**"
    return "no significant difference"


def comparison_md(rows: List[dict], better: str, baseline: str, digits: int = 2,
                  extra: Optional[Callable[[dict], str]] = None, extra_header: str = "") -> List[str]:
    """A Markdown table of paired_rows: our difference with its 95 % CI and p, the paper's."""
    if not rows:
        return []
    head = (f"| setting | bits | {baseline} − {better}, ours [95 % CI] | p | {better} here | "
            f"paper |" + (f" {extra_header} |" if extra else ""))
    lines = [head, "|---" * (6 + bool(extra)) + "|"]
    for row in rows:
        t = row["test"]
        p = "" if t.p is None else (f"{t.p:.3f}" if t.p >= 0.001 else "<0.001")
        if row.get("holm"):
            p += " †"
        paper = "" if row["paper"] is None else f"{row['paper']:+.{digits}f}"
        lines.append(f"| {row['setting']} | {row['bits']} | {t.text(digits)} | {p} | "
                     f"{_direction(t)} | {paper} |"
                     + (f" {extra(row)} |" if extra else ""))
    return lines


# ---- Fig. 2 --------------------------------------------------------------------------------

def draw_fig2(path: Path, curves: Dict[int, Dict[str, List[float]]], title: str) -> None:
    """Step size per layer against retraining epoch, relative to its start (QStep of the
    float weights), one panel per bit width."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (bits, layers) in zip(axes[0], sorted(curves.items())):
        for name, steps in layers.items():
            ax.plot(range(len(steps)), [s / steps[0] for s in steps], marker=".", label=name)
        ax.set_title(f"{bits}-bit")
        ax.set_xlabel("retraining epoch")
        ax.set_ylabel("step Δ / Δ at the start")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue(), binary=True)
