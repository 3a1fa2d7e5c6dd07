"""lowbit infer: run a packed model file with the shift / LUT kernels."""
from .. import inference
from ..models import accuracy
from ._common import data, positive, take
from ._packed import load_packed

NAME = "infer"
HELP = "convert a packed model file to bit-shift / LUT inference and measure accuracy and size"
DESCRIPTION = ("Load a .lbq file (from lowbit study / ptq / retrain / vbq), convert its layers to packed "
               "inference modules (power-of-two weights: integer bit-shift kernels; any other grid: "
               "look-up tables) and print test accuracy and bytes against the fake-quant model.")
EPILOG = """examples:
  lowbit infer lowbit-report/lenet5/best.lbq
  lowbit infer ffdnn-pow2-4.lbq --mode shift --act-bits 6
"""


def add_arguments(p):
    p.add_argument("model_file", metavar="MODEL_FILE", help="a .lbq file")
    p.add_argument("--model", help="the architecture: shipped name or 'module:function' (default: the file's)")
    p.add_argument("--data", default=None, help="'module:function' returning StudyData (default Fashion-MNIST)")
    p.add_argument("--mode", choices=inference.MODES, default="auto",
                   help="auto: shift for power of two, LUT otherwise (default auto)")
    p.add_argument("--act-bits", type=int, default=8, help="activation bits of the shift kernels, 2..8")
    p.add_argument("--eval-size", type=positive, default=10000, help="test images (default 10000)")


def run(args) -> int:
    model, spec = load_packed(args.model_file, args.model)
    packed = inference.convert(model, mode=args.mode, act_bits=args.act_bits)
    x, y = take(data(args.data).test, args.eval_size, "--eval-size")
    kinds = sorted({type(m).__name__ for m in packed.modules() if type(m).__module__.endswith("inference.modules")})
    acc_fq, acc = accuracy(model, x, y), accuracy(packed, x, y)
    size_fq, size = inference.model_size(model), inference.model_size(packed)
    print(f"{args.model_file} ({spec}): packed modules {', '.join(kinds)}")
    print(f"accuracy on {len(y)} test images: packed {acc:.2f} %, fake quant (float activations) {acc_fq:.2f} %")
    print(f"bytes in memory: packed {size:,}, float32 {size_fq:,} ({size_fq / size:.1f}x smaller)")
    return 0
