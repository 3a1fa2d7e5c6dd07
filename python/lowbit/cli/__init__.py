"""The `lowbit` command line (console script `lowbit`, or `python -m lowbit`).

Each subcommand is a module with NAME, HELP, DESCRIPTION, EPILOG, add_arguments(parser) and
run(args) -> exit status, listed in COMMANDS; a new one (e.g. capacity) is appended there.
User mistakes (a missing file, bad bits, an unknown scheme, a bad entry point) end with one
line on stderr and exit status 2; --traceback shows the full error instead.
"""
import argparse
import textwrap
import sys
from typing import List, Optional

from . import bench, capacity, demo, infer, ptq, report, retrain, study, vbq
from ._common import OneLineParser

COMMANDS = [study, ptq, retrain, vbq, infer, bench, report, demo, capacity]

EPILOG = """examples:
  lowbit study --quick          # the main job: how few bits, which method (HTML report)
  lowbit ptq --bits 8-2         # data-free PTQ of the shipped LeNet-5
  lowbit retrain --bits 3 --schedule adaptive --out lenet-3bit.lbq
  lowbit infer lenet-3bit.lbq   # packed shift / LUT inference
  lowbit capacity advise --model lenet5 --n-samples 60000   # bits from capacity (no training)
run `lowbit COMMAND --help` for a command's options and examples."""

# Errors that come from what the user typed or pointed at; anything else is a bug and keeps
# its traceback.
USER_ERRORS = (ValueError, TypeError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lowbit", description="Low-bit weight quantization for PyTorch.", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.NAME, help=cmd.HELP, description=textwrap.fill(cmd.DESCRIPTION, 88), epilog=cmd.EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_arguments(p)
        p.set_defaults(handler=cmd.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = [a for a in argv if a != "--traceback"]
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("lowbit: interrupted (a study keeps its finished steps and units: rerun the same command to resume)",
              file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"lowbit {args.command}: error: {message}", file=sys.stderr)
        return 2
