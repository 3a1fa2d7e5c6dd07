"""Training-step time with lowbit's STE hooks against float and torch.ao QAT.

    .venv/bin/python benchmarks/bench_training.py [--threads N] [--steps 30]

For a LeNet-5 and a small VGG on 28x28 images and a character LSTM: the time of one
training step (zero_grad, forward, loss, backward, SGD step) of the float model, the
model with lowbit hooks (4-bit, per channel, weights only), and torch.ao eager-mode QAT
(prepare_qat with the default fbgemm qconfig, which also fake-quantizes activations,
and with a weight-only qconfig, the like-for-like comparison). The variants run
interleaved, a few steps each in turn, with the same thread count. Eager-mode
prepare_qat leaves nn.LSTM float: on the LSTM it only fake-quantizes the Linear decoder.
Target (issue 3): lowbit's overhead over float at most 15%, and below torch.ao's.
Writes benchmarks/results/training.json and training.md.
"""
import argparse
import copy
import statistics
import time

import torch
from torch import nn
from torch.ao import quantization as tq

import lowbit as lb

from _timing import environment, set_threads, write_results


def _cnn_batch(batch=128):
    return torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))


def _lstm_batch(batch=32, seq=100, vocab=96):
    x = torch.randint(0, vocab, (batch, seq))
    return x, torch.roll(x, -1, 1)


class _LMLoss(nn.Module):
    """Wraps a CharLSTM so every variant trains with model(x) -> logits."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, x):
        return self.lm(x)[0].flatten(0, 1)


def _variants(model: nn.Module):
    float_model = copy.deepcopy(model)
    hooked = copy.deepcopy(model)
    lb.attach(hooked, lb.QuantConfig(bits=4, granularity="channel", step="l2"))
    qat = copy.deepcopy(model).train()
    qat.qconfig = tq.get_default_qat_qconfig("fbgemm")
    tq.prepare_qat(qat, inplace=True)
    qat_w = copy.deepcopy(model).train()
    qat_w.qconfig = tq.QConfig(activation=nn.Identity, weight=tq.default_weight_fake_quant)
    tq.prepare_qat(qat_w, inplace=True)
    return {"float": float_model, "lowbit": hooked, "torch.ao QAT": qat,
            "torch.ao QAT (weights only)": qat_w}


def _step_fn(model, batch, flat_targets):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = batch
    y = y.flatten() if flat_targets else y

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def time_variants(model, batch, flat_targets, steps, rounds=6):
    fns = {name: _step_fn(m, batch, flat_targets) for name, m in _variants(model).items()}
    for fn in fns.values():  # warm-up
        fn()
        fn()
    times = {name: [] for name in fns}
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="0: lowbit's default")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    env = environment(set_threads(args.threads))
    torch.manual_seed(0)
    cases = [("LeNet-5, batch 128", lb.models.LeNet5(), _cnn_batch(), False),
             ("small VGG (width 32), batch 128", lb.models.SmallVGG(width=32), _cnn_batch(), False),
             ("char LSTM (128 hidden), batch 32 x 100", _LMLoss(lb.models.CharLSTM(96, hidden=128)),
              _lstm_batch(), True)]
    rows = []
    for name, model, batch, flat in cases:
        t = time_variants(model, batch, flat, args.steps)
        base = t["float"]
        for variant, sec in t.items():
            rows.append({"model": name, "variant": variant, "step_ms": sec * 1e3,
                         "overhead_vs_float": sec / base - 1})
        print(f"{name}: " + ", ".join(f"{v} {s * 1e3:.1f} ms" for v, s in t.items()), flush=True)
    lines = ["# Training-step benchmark\n",
             f"`.venv/bin/python benchmarks/bench_training.py`; {env['threads']} threads for lowbit "
             f"and torch; torch {env['torch']}; {env['cpu']}. Median time of one training step "
             "(SGD) per variant, variants interleaved. lowbit: 4-bit symmetric per-channel "
             "weights, L2 steps, output layer float. torch.ao: eager prepare_qat (fbgemm "
             "default: weights and activations), and with a weight-only qconfig. Eager "
             "prepare_qat leaves nn.LSTM float, so on the LSTM torch.ao only quantizes the "
             "Linear decoder while lowbit quantizes the LSTM's weight matrices too.\n",
             "| model | variant | step | overhead vs float |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {r['step_ms']:.1f} ms | "
                     f"{r['overhead_vs_float'] * 100:+.1f}% |")
    md = "\n".join(lines) + "\n"
    print(md)
    write_results("training", {"environment": env, "rows": rows}, md)


if __name__ == "__main__":
    main()
