"""Shared pieces of the subcommands: argument types, loading models, data and files."""
import argparse
from pathlib import Path
from typing import List

from torch import nn

from ..devices import check_device
from ..study import SHIPPED, StudyData, StudySettings, load_data, load_model


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line on stderr and exit status 2 (argparse prints the whole usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def bits_list(text: str) -> List[int]:
    """'4' or '8,6,4' or '8-2' -> bit widths in [2, 8]."""
    out = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                hi, lo = (int(p) for p in part.split("-"))
                out += list(range(hi, lo - 1, -1) if hi >= lo else range(hi, lo + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits must be integers in [2, 8] like 4, 8,6,4 or 8-2; got {text!r}")
    bad = [b for b in out if not 2 <= b <= 8]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"bits must be in [2, 8], got {text!r}")
    return out


def one_bits(text: str) -> int:
    values = bits_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"give one bit width in [2, 8], got {text!r}")
    return values[0]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def names(accepted):
    def parse(text: str) -> List[str]:
        out = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in out if t not in accepted]
        if unknown or not out:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown) or repr(text)}; "
                                             f"accepted: {', '.join(accepted)}")
        return out
    return parse


MODEL_HELP = (f"a shipped model ({', '.join(SHIPPED)}; trained once on Fashion-MNIST and cached) or "
              "'module:function' / 'file.py:function' returning a trained float nn.Module")
DATA_HELP = ("'module:function' returning lowbit.study.StudyData (or a dict with train, test, optional "
             "val and classes); default: Fashion-MNIST")


def add_model_data(parser, model_default="lenet5"):
    parser.add_argument("--model", default=model_default, help=f"{MODEL_HELP} (default {model_default})")
    parser.add_argument("--data", default=None, help=DATA_HELP)


def add_device(parser, what: str):
    """--device, checked by run() through lowbit.devices.check_device (one-line errors)."""
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help=f"cpu, cuda or cuda:N: where {what} run (default cpu; off the CPU the "
                             "quantizers run lowbit's pure-PyTorch path, results come back to the CPU)")


def device(args):
    """The checked --device as a torch.device (call first in run(), before any long work)."""
    return check_device(args.device, "--device", allow_meta=False)


def trained_model(spec: str, seed: int = 0, progress: bool = True) -> nn.Module:
    return load_model(spec, StudySettings(seed=seed), progress)[1]


def data(spec) -> StudyData:
    return load_data(spec)


def take(split, size: int, option: str):
    x, y = split
    if size > len(y):
        raise ValueError(f"{option} is {size}, but the data has only {len(y)} examples")
    return x[:size], y[:size]


def existing_file(path: str, option: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{option}: no such file {path!r}")
    if not p.is_file():
        raise ValueError(f"{option}: {path!r} is not a file")
    return p


def output_file(path: str, option: str = "--out") -> Path:
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option}: {path!r} is a folder; give a file name such as model.lbq")
    if not p.parent.exists():
        raise FileNotFoundError(f"{option}: folder {str(p.parent)!r} does not exist")
    return p

