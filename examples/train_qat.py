"""Quantization-aware retraining of your own model: copy this script and change what you need.

    python examples/train_qat.py --model mymodels:build --data mydata:load --bits 4
    python examples/train_qat.py --model mymodels:build --data mydata:load --checkpoint float.pt \\
        --bits 3 --schedule gradual --epochs 6 --out model-3bit.lbq

--model names a function (module:function or file.py:function) that returns your float
nn.Module; --data a function that returns {"train": (x, y), "val": (x, y)} tensors (labels
int64 class indices). Without --checkpoint (a state_dict saved with torch.save) the float
model is trained first for --float-epochs. Then: lb.attach, a schedule from paper 002, your
optimizer and loop with validation every epoch, lb.freeze, lb.inference.convert,
lb.save_quantized, and one summary line.
"""
import argparse
import copy

import torch
from torch import nn

import lowbit as lb
from lowbit.entry import load_entry_point
from lowbit.models import accuracy
from lowbit.schedules import SCHEDULES, from_name
from lowbit.timing import time_against_float, torch_threads_as_lowbit


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, x, y, batch_size: int, seed: int) -> float:
    """One epoch of your training loop (here: shuffled mini-batches, cross-entropy)."""
    model.train()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += float(loss) * len(idx)
    return total / len(y)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="module:function returning the float nn.Module")
    p.add_argument("--data", required=True, help='module:function returning {"train": (x, y), "val": (x, y)}')
    p.add_argument("--checkpoint", help="float state_dict to start from (else the model is trained first)")
    p.add_argument("--float-epochs", type=int, default=5, help="float training without --checkpoint (default 5)")
    p.add_argument("--bits", type=int, default=4, help="weight bits, 2..8 (default 4)")
    p.add_argument("--scheme", default="symmetric", choices=lb.schemes.CALIBRATED)
    p.add_argument("--schedule", default="adaptive", choices=SCHEDULES)
    p.add_argument("--epochs", type=int, default=3, help="retraining epochs (default 3)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", help="write the packed model here (.lbq)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    model = load_entry_point(args.model, "--model")()
    data = load_entry_point(args.data, "--data")()
    (x, y), (xv, yv) = data["train"], data["val"]
    if args.checkpoint:
        model.load_state_dict(torch.load(args.checkpoint, weights_only=True))   # a state_dict of tensors
    else:
        opt = torch.optim.SGD(model.parameters(), lr=args.lr * 5, momentum=0.9, nesterov=True)
        for epoch in range(args.float_epochs):
            train_epoch(model, opt, x, y, args.batch_size, args.seed + epoch)
    float_acc = accuracy(model, xv, yv)
    float_model = model

    # Quantization-aware retraining: the forward sees quantized weights, the gradient reaches
    # the float shadows, and the schedule moves the step (or the bits) after every epoch.
    model = copy.deepcopy(float_model)
    schedule, epochs, first_bits = from_name(args.schedule, args.bits, args.epochs)
    lb.attach(model, lb.QuantConfig(bits=first_bits, scheme=args.scheme, granularity="channel"))
    print(lb.coverage(model))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
    schedule.start(model)
    for epoch in range(epochs):
        loss = train_epoch(model, opt, x, y, args.batch_size, args.seed + 1000 + epoch)
        schedule.step(model)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}, validation {accuracy(model, xv, yv):.2f} %")
    lb.freeze(model)

    packed = lb.inference.convert(model)
    if args.out:   # the frozen model, packed at its bit width; lb.load_quantized reads it back
        lb.save_quantized(model, args.out, metadata={"bits": args.bits, "scheme": args.scheme})
    with torch_threads_as_lowbit():
        speed = time_against_float(packed, float_model.eval(), xv, images=min(100, len(xv)))
    print(f"float {float_acc:.2f} % -> {args.bits}-bit {args.scheme} {accuracy(packed, xv, yv):.2f} %; "
          f"{lb.inference.model_size(float_model)} -> {lb.inference.model_size(packed)} bytes; "
          f"batch 1 {speed['batch1_speedup']:.2f}x, batch {speed['batch']} {speed['batch64_speedup']:.2f}x float"
          + (f"; wrote {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
