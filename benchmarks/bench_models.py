"""Whole models, converted and fused, against their float originals on the same threads.

    OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/bench_models.py [--threads N] [--images 1000]
        [--steps 300]

LeNet-5 and the FFDNN (the cached pretrained Fashion-MNIST models, lb.models.pretrained) and
a CharTransformer trained for --steps on the fortunes corpus, each quantized without
retraining (lb.ptq, 4 bits per channel, output layer included) with a scheme per packed
kernel: symmetric (int: int8 activations per row), power of two (shift: integer
activations) and, for the CNN, a codebook (vlut or lut: float activations). Each packed
model (lb.inference.convert) is fused where lb.inference.fuse applies (else it runs unfused
and the table says why), then timed against the float model, alternately and on the same
threads (lb.timing.time_against_float): batch 1 over the first --images inputs, one at a
time, and one batch of 64. Accuracy (bits per character for the transformer) is the frozen
fake-quant model's and the packed model's on the test split.
Targets (issue 15): >= 3x float at batch 1 and >= 1.5x at batch 64, integer paths within
0.2 points of the frozen model's accuracy.
Writes benchmarks/results/models.json and models.md.
"""
import argparse
import os
import sys
import time

import torch

import lowbit as lb
from lowbit.data.text import bits_per_character, load_text_corpus
from lowbit.timing import time_against_float, torch_threads_as_lowbit

from _timing import environment, keep_allocations_warm, set_threads, write_results

SCHEMES = {"symmetric": {}, "pow2": {},
           "codebook": {"codebook": lambda w, b: torch.linspace(-1, 1, 2 ** b, dtype=torch.float64)
                        * max(float(w.abs().max()), 1e-3)}}


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def _packed(frozen):
    packed = lb.inference.convert(frozen)
    fused, why = lb.inference.fuse_or_keep(packed)
    kernels = sorted({r.kernel for r in lb.coverage(frozen).rows if r.kernel})
    return fused, why, kernels


def image_models(images: int, schemes) -> list:
    x, y = lb.data.load_fashion_mnist("test", normalize=True)
    rows = []
    for name in ("lenet5", "ffdnn"):
        float_model = lb.models.pretrained(name).eval()
        for scheme in schemes:
            frozen = lb.ptq(float_model, scheme=scheme, bits=4, granularity="channel", **SCHEMES[scheme]).eval()
            fused, why, kernels = _packed(frozen)
            with torch_threads_as_lowbit():
                t = time_against_float(fused, float_model, x, images)
            rows.append({"model": name, "scheme": scheme, "kernels": kernels, "fused": why is None,
                         "why_not_fused": why, "metric": "accuracy (%)",
                         "float": _accuracy(float_model, x, y), "frozen": _accuracy(frozen, x, y),
                         "packed": _accuracy(fused, x, y), **t})
    return rows


def transformer(steps: int, images: int, schemes) -> list:
    corpus = load_text_corpus()
    torch.manual_seed(0)
    float_model = lb.models.CharTransformer(corpus.vocab_size)
    lb.models.train_char_model(float_model, corpus, steps=steps, seed=0, valid=False)
    float_model.eval()
    test = corpus.split("test")
    T = float_model.context
    windows = torch.stack([test[i * T:(i + 1) * T] for i in range(min(images, len(test) // T))])
    rows = []
    for scheme in schemes:
        if scheme == "codebook":
            continue
        frozen = lb.ptq(float_model, scheme=scheme, bits=4, granularity="channel").eval()
        fused, why, kernels = _packed(frozen)
        with torch_threads_as_lowbit():
            t = time_against_float(fused, float_model, windows, images)
        rows.append({"model": f"chartransformer ({steps} steps), {T}-token windows", "scheme": scheme,
                     "kernels": kernels, "fused": why is None, "why_not_fused": why,
                     "metric": "bits per character", "float": bits_per_character(float_model, corpus),
                     "frozen": bits_per_character(frozen, corpus), "packed": bits_per_character(fused, corpus),
                     **t})
    return rows


def markdown(env, rows) -> str:
    out = [f"# Whole models, packed and fused ({env['threads']} threads, {env['isa']}, torch {env['torch']}, "
           f"{env['cpu']})", "",
           f"`{env['command']}` on {env['date']}; 1-minute load average {env['load_average_1min']} at the start, "
           f"{env['load_average_end']} at the end. 4-bit weights per channel (lb.ptq, no retraining); each "
           "packed model timed alternately with its float original on the same threads.", "",
           "| model | scheme | kernels | fused | batch 1 (us) | float (us) | vs float | batch 64 (ms) | "
           "float (ms) | vs float | metric | float | frozen | packed |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fused = "yes" if r["fused"] else f"no: {r['why_not_fused']}"
        out.append(f"| {r['model']} | {r['scheme']} | {', '.join(r['kernels'])} | {fused} | "
                   f"{r['batch1_us']:.0f} | {r['float_batch1_us']:.0f} | {r['batch1_speedup']:.2f}x | "
                   f"{r['batch64_ms']:.2f} | {r['float_batch64_ms']:.2f} | {r['batch64_speedup']:.2f}x | "
                   f"{r['metric']} | {r['float']:.3f} | {r['frozen']:.3f} | {r['packed']:.3f} |")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--images", type=int, default=1000, help="inputs timed one at a time (default 1000)")
    ap.add_argument("--steps", type=int, default=300, help="CharTransformer training steps (default 300)")
    ap.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated, from {', '.join(SCHEMES)}")
    args = ap.parse_args()
    schemes = [s for s in args.schemes.split(",") if s]
    bad = [s for s in schemes if s not in SCHEMES]
    if bad:
        ap.error(f"--schemes takes {', '.join(SCHEMES)}, got {', '.join(bad)}")
    keep_allocations_warm()
    env = environment(set_threads(args.threads))
    env["command"] = "OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/bench_models.py " + " ".join(sys.argv[1:])
    env["date"] = time.strftime("%Y-%m-%d %H:%M")
    rows = image_models(args.images, schemes) + transformer(args.steps, args.images, schemes)
    env["load_average_end"] = round(os.getloadavg()[0], 2)
    text = markdown(env, rows)
    print(text)
    write_results("models", {"environment": env, "models": rows}, text)


if __name__ == "__main__":
    main()
