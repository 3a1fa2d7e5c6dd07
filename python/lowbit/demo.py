"""A short demo: train a small MLP on Fashion-MNIST, quantize its weights with every
scheme at 8..2 bits (data-free, per output channel) and print accuracy and real size."""
import time

import torch
from torch import nn

from . import PackedTensor, calibrate, fake_quantize
from .data import load_fashion_mnist

SCHEMES = (("symmetric", "l2"), ("symmetric", "maxabs"), ("asymmetric", "minmax"),
           ("pow2", "maxabs"))
BITS = (8, 6, 4, 3, 2)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean()) * 100


def _train(model, x, y, epochs, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


def run(train_size: int = 60000, epochs: int = 3, seed: int = 0) -> list:
    """Returns the table rows as dicts; prints them too."""
    torch.manual_seed(seed)
    x, y = load_fashion_mnist("train", limit=train_size)
    xt, yt = load_fashion_mnist("test")
    model = _mlp()
    t0 = time.time()
    _train(model, x, y, epochs, seed)
    base = _accuracy(model, xt, yt)
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    float_bytes = sum(w.numel() * 4 for w in weights)
    print(f"float32 MLP: test accuracy {base:.2f}% ({float_bytes / 1024:.0f} KiB of weights, "
          f"trained in {time.time() - t0:.1f} s)\n")
    rows = []
    header = f"{'scheme':<11}{'step':<8}" + "".join(f"{b:>4}-bit acc" for b in BITS)
    print(header + "   size at 4 bits")
    originals = [w.detach().clone() for w in weights]
    for scheme, method in SCHEMES:
        accs, size4 = [], None
        for bits in BITS:
            packed_bytes = 0
            with torch.no_grad():
                for w, w0 in zip(weights, originals):
                    qp = calibrate(w0, scheme, bits, granularity="channel", method=method)
                    w.copy_(fake_quantize(w0, qp))
                    packed_bytes += PackedTensor.from_tensor(w0, qp).nbytes
            accs.append(_accuracy(model, xt, yt))
            if bits == 4:
                size4 = packed_bytes
            rows.append({"scheme": scheme, "method": method, "bits": bits,
                         "accuracy": accs[-1], "packed_bytes": packed_bytes})
        with torch.no_grad():
            for w, w0 in zip(weights, originals):
                w.copy_(w0)
        print(f"{scheme:<11}{method:<8}" + "".join(f"{a:>13.2f}" for a in accs)
              + f"   {size4 / 1024:.0f} KiB ({float_bytes / size4:.1f}x smaller)")
    print("\nData-free quantization of every layer, per output channel; accuracy in %.")
    return rows
