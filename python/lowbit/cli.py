"""The `lowbit` command line."""
import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lowbit", description="Low-bit weight quantization for PyTorch.",
        epilog="example: lowbit demo --epochs 1")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="quantize a small Fashion-MNIST MLP with every scheme",
                          description="Train a small MLP on Fashion-MNIST and print its accuracy "
                                      "after data-free quantization at 8..2 bits.")
    demo.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    demo.add_argument("--train-size", type=int, default=60000, help="training images (default 60000)")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from . import demo as demo_mod
            demo_mod.run(train_size=args.train_size, epochs=args.epochs, seed=args.seed)
    except (FileNotFoundError, ValueError) as exc:
        print(f"lowbit: error: {exc}", file=sys.stderr)
        return 2
    return 0
