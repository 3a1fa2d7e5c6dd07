"""lowbit demo: the original ten-second demo."""
from ._common import positive

NAME = "demo"
HELP = "quantize a small Fashion-MNIST MLP with every scheme (about 10 s)"
DESCRIPTION = ("Train a small MLP on Fashion-MNIST and print its accuracy after data-free quantization "
               "at 8..2 bits.")
EPILOG = "example:\n  lowbit demo --epochs 1\n"


def add_arguments(p):
    p.add_argument("--epochs", type=positive, default=3, help="training epochs (default 3)")
    p.add_argument("--train-size", type=positive, default=60000, help="training images (default 60000)")
    p.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    from .. import demo
    demo.run(train_size=args.train_size, epochs=args.epochs, seed=args.seed)
    return 0
