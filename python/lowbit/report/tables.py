"""Tables of a study report, each written as CSV and rendered as Markdown and HTML."""
import csv
import html
import io
import math
from dataclasses import dataclass, field
from typing import List, Sequence


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


@dataclass
class Table:
    name: str                    # file stem of the CSV
    title: str
    columns: Sequence[str]
    rows: List[Sequence] = field(default_factory=list)
    note: str = ""

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow(["" if v is None else (round(v, 4) if isinstance(v, float) else v) for v in r])
        return buf.getvalue()

    def markdown(self) -> str:
        out = [f"| {' | '.join(self.columns)} |", "|" + "---|" * len(self.columns)]
        out += [f"| {' | '.join(fmt(v) for v in r)} |" for r in self.rows]
        if self.note:
            out += ["", self.note]
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        note = f'<p class="note">{html.escape(self.note)}</p>' if self.note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
