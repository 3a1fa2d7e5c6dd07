"""lowbit retrain: quantization-aware retraining with one of paper 002's schedules."""
from .. import schedules
from ..analysis import model_sizes
from ..config import QuantConfig
from ..data import ShuffledBatches
from ..models import accuracy
from ..retrain import retrained_copy
from ..serialize import save_quantized
from ..study import PTQ_SCHEMES
from ._common import (add_device, add_model_data, data, device, one_bits, output_file, positive, take,
                      trained_model)

NAME = "retrain"
HELP = "retrain a trained model at low bits (direct, conventional, adaptive, gradual)"
DESCRIPTION = ("Attach straight-through fake quantization to every Linear/Conv weight of a trained model "
               "(per output channel, output layer included), retrain it with a schedule of paper 002, "
               "freeze it and print test accuracy and packed size. The best epoch is chosen on "
               "--val-size held-out images (the test images after the --eval-size quoted ones).")
EPILOG = """examples:
  lowbit retrain --bits 3 --schedule adaptive --epochs 2 --train-size 10000
  lowbit retrain --model ffdnn --bits 2 --schedule gradual --out ffdnn-2bit.lbq
  lowbit retrain --bits 3 --device cuda     # retrain on a GPU, the model comes back to the CPU
"""


def add_arguments(p):
    add_model_data(p)
    p.add_argument("--bits", type=one_bits, default=4, help="target bit width in [2, 8] (default 4)")
    p.add_argument("--schedule", default="adaptive", choices=schedules.SCHEDULES,
                   help="direct: no retraining; gradual: bits+2 -> bits+1 -> bits (default adaptive)")
    p.add_argument("--scheme", default="symmetric", choices=PTQ_SCHEMES, help="quantizer (default symmetric, L2 step)")
    p.add_argument("--epochs", type=positive, default=2, help="epochs (gradual shares them over its stages)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default 3e-4)")
    p.add_argument("--train-size", type=positive, default=20000, help="training images (default 20000)")
    p.add_argument("--val-size", type=positive, default=2000, help="held-out images choosing the epoch")
    p.add_argument("--eval-size", type=positive, default=5000, help="held-out images quoted (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the packed retrained model here (.lbq)")
    add_device(p, "the retraining and its per-epoch validation")


def run(args) -> int:
    dev = device(args)
    out = output_file(args.out) if args.out else None
    if not 0 < args.lr < 10:
        raise ValueError(f"--lr must be in (0, 10), got {args.lr}")
    d = data(args.data)
    train = take(d.train, args.train_size, "--train-size")
    xe, ye = take(d.test, args.eval_size, "--eval-size")
    if d.val is not None:
        xv, yv = take(d.val, args.val_size, "--val-size")
    else:
        x, y = take(d.test, args.eval_size + args.val_size, "--eval-size + --val-size")
        xv, yv = x[args.eval_size:], y[args.eval_size:]
    float_model = trained_model(args.model, args.seed)
    sched, epochs, first = schedules.from_name(args.schedule, args.bits, args.epochs)
    config = QuantConfig(bits=first, scheme=args.scheme, granularity="channel", quantize_output=True)
    batches = ShuffledBatches(*train, batch_size=128, seed=args.seed)
    xv, yv = xv.to(dev), yv.to(dev)     # the validation runs where the retraining does
    model, history = retrained_copy(float_model, config, sched, batches, epochs=epochs, lr=args.lr,
                                    evaluate=lambda m: accuracy(m, xv, yv), seed=args.seed, device=dev)
    base, acc = accuracy(float_model, xe, ye), accuracy(model, xe, ye)
    sizes = model_sizes(model, float_model=float_model)
    print(f"{args.model}: float32 {base:.2f} %; {args.bits}-bit {args.scheme}, {sched!r}, {epochs} epochs: "
          f"{acc:.2f} % ({acc - base:+.2f} points against float) on {len(ye)} test images")
    print(f"validation accuracy per epoch: {', '.join(f'{s:.2f}' for s in history['score'])}")
    print(f"packed {sizes.packed / 1024:.1f} KiB, float {sizes.float32 / 1024:.1f} KiB "
          f"({sizes.float32 / sizes.packed:.1f}x smaller)")
    if out is not None:
        n = save_quantized(model, out, metadata={"model": args.model, "method": "retrain",
                                                 "schedule": args.schedule, "bits": args.bits})
        print(f"wrote {out} ({n} bytes)")
    return 0
