"""lowbit ptq: data-free post-training quantization of a trained model."""
from .. import analysis
from ..models import accuracy
from ..ptq import ptq
from ..serialize import save_quantized
from ..schemes import NAMES as SCHEMES
from ._common import add_model_data, bits_list, data, output_file, positive, take, trained_model

NAME = "ptq"
HELP = "data-free post-training quantization (accuracy and packed size per bit width)"
DESCRIPTION = ("Quantize every layer's weights of a trained model, per output channel, without data "
               "(paper 004), and print test accuracy and the packed size for each bit width.")
EPILOG = """examples:
  lowbit ptq --bits 8-2                             # LeNet-5, asymmetric, 8..2 bits
  lowbit ptq --model ffdnn --scheme pow2 --bits 4 --out ffdnn-pow2-4.lbq
"""


def add_arguments(p):
    add_model_data(p)
    p.add_argument("--scheme", default="asymmetric", choices=SCHEMES,
                   help="quantizer (default asymmetric; codebook uses a Lloyd-Max codebook per layer)")
    p.add_argument("--bits", type=bits_list, default=[4], help="bit width(s): 4, 8,6,4 or 8-2 (default 4)")
    p.add_argument("--granularity", default="channel", choices=("channel", "tensor"))
    p.add_argument("--eval-size", type=positive, default=10000, help="test images (default 10000)")
    p.add_argument("--out", help="write the packed model here (one bit width only)")


def run(args) -> int:
    if args.out and len(args.bits) != 1:
        raise ValueError(f"--out needs one bit width, got --bits {','.join(map(str, args.bits))}")
    out = output_file(args.out) if args.out else None
    x, y = take(data(args.data).test, args.eval_size, "--eval-size")
    model = trained_model(args.model)
    kwargs = {}
    if args.scheme == "codebook":
        from ..vbq import lloyd_max
        kwargs["codebook"] = lambda w, b: lloyd_max(w, 2 ** b)
    base = accuracy(model, x, y)
    float_bytes = analysis.model_sizes(model).float32
    print(f"{args.model}: float32 {base:.2f} % on {len(y)} test images, {float_bytes / 1024:.1f} KiB")
    print(f"{'scheme':<12}{'bits':>5}{'accuracy %':>12}{'drop':>8}{'packed KiB':>12}{'x smaller':>11}")
    for bits in args.bits:
        q = ptq(model, args.scheme, bits, args.granularity, **kwargs)
        acc = accuracy(q, x, y)
        packed = analysis.model_sizes(q, float_model=model).packed
        print(f"{args.scheme:<12}{bits:>5}{acc:>12.2f}{base - acc:>8.2f}{packed / 1024:>12.1f}"
              f"{float_bytes / packed:>11.1f}")
        if out is not None:
            n = save_quantized(q, out, metadata={"model": args.model, "method": "ptq", "scheme": args.scheme,
                                                 "bits": bits})
            print(f"wrote {out} ({n} bytes)")
    return 0
