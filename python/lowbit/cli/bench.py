"""lowbit bench: time a packed model file against float in the same process."""
from .. import inference
from ..timing import time_against_float, torch_threads_as_lowbit
from ._common import data, positive, take
from ._packed import load_packed

NAME = "bench"
HELP = "time a packed model file's inference against the float model"
DESCRIPTION = ("Convert a .lbq file to packed inference (fused into one native call when the model is a "
               "straight chain of layers) and time it against the same architecture with "
               "float32 weights, alternating the two in this process with the same thread count: "
               "batch-1 latency over --images test images and one batch of 64.")
EPILOG = """examples:
  lowbit bench lowbit-report/lenet5/best.lbq
  lowbit bench ffdnn-pow2-4.lbq --mode shift --images 1000
"""


def add_arguments(p):
    p.add_argument("model_file", metavar="MODEL_FILE", help="a .lbq file")
    p.add_argument("--model", help="the architecture: shipped name or 'module:function' (default: the file's)")
    p.add_argument("--data", default=None, help="'module:function' returning StudyData (default Fashion-MNIST)")
    p.add_argument("--mode", choices=inference.MODES, default="auto")
    p.add_argument("--images", type=positive, default=500, help="batch-1 images (default 500)")


def run(args) -> int:
    model, spec = load_packed(args.model_file, args.model)
    packed, why_not = inference.fuse_or_keep(inference.convert(model, mode=args.mode))
    x, _ = take(data(args.data).test, max(args.images, 64), "--images")
    with torch_threads_as_lowbit() as threads:   # float and packed with the same thread count
        t = time_against_float(packed, model, x, args.images)
    print(f"{args.model_file} ({spec}), {'fused' if why_not is None else 'not fused: ' + why_not}, "
          f"{threads} threads for both, ratio = float time / packed time:")
    print(f"batch 1:  packed {t['batch1_us']:.0f} us/image, float {t['float_batch1_us']:.0f} us/image, "
          f"{t['batch1_speedup']:.2f}x")
    print(f"batch {t['batch']}: packed {t['batch64_ms']:.2f} ms, float {t['float_batch64_ms']:.2f} ms, "
          f"{t['batch64_speedup']:.2f}x")
    print(f"bytes: packed {inference.model_size(packed):,}, float {inference.model_size(model):,}")
    return 0
