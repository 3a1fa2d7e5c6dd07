"""lowbit report: re-render a study folder."""
from ..report import render

NAME = "report"
HELP = "re-render a study folder's HTML, CSV, Markdown and figures from its study.json"
DESCRIPTION = ("Rebuild index.html, report.md, the CSV tables and the PNG figures of a `lowbit study` "
               "folder from its study.json, without recomputing anything.")
EPILOG = "example:\n  lowbit report lowbit-report\n"


def add_arguments(p):
    p.add_argument("folder", nargs="?", default="lowbit-report", help="the study folder (default lowbit-report)")


def run(args) -> int:
    print(f"report: {render(args.folder)}")
    return 0
