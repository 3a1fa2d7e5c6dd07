"""Packed inference speed and size, every ratio against a baseline timed in the same run.

    .venv/bin/python benchmarks/bench_inference.py [--threads N] [--images 10000]

Part 1: a 4096x4096 linear layer at batch 1 and 64: lowbit's 4-bit power-of-two shift
kernels (int8 multiply-add and literal shift-and-add) and 4-bit LUT kernel against torch
FP32 nn.Linear and torch's dynamic int8 Linear (quantize_dynamic, qnnpack and onednn).
Part 2: LeNet-5 on Fashion-MNIST (the cached pretrained model, 4-bit power-of-two weights
per channel, frozen without retraining), batch 1 over the test images: latency of the
converted model, per-layer and fused (lb.inference.fuse), against the FP32 model, accuracy
against the float-activation fake-quant model, real model bytes.
Writes benchmarks/results/inference.json and inference.md. Targets (issue 5): batch 1 >=
6x FP32 and >= 2x torch int8; batch 64 no slower than FP32; LeNet-5 >= 1.6x FP32 with
accuracy within 0.5 points of fake quant.
"""
import argparse
import copy
import time

import torch
from torch import nn

import lowbit as lb
from lowbit.inference import LUTLinear, ShiftLinear

from _timing import environment, keep_allocations_warm, paired_times, set_threads, write_results


def dynamic_int8(linear: nn.Linear, engine: str) -> nn.Module:
    torch.backends.quantized.engine = engine
    return torch.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)


def linear_layer(repeat: int) -> list:
    torch.manual_seed(0)
    fp32 = nn.Linear(4096, 4096)
    w = fp32.weight.detach()
    qp_pow2 = lb.calibrate(w, "pow2", 4, "channel")
    qp_sym = lb.calibrate(w, "symmetric", 4, "channel")
    ours = {
        "shift int8 (4-bit pow2)": ShiftLinear(lb.fake_quantize(w, qp_pow2), qp_pow2, fp32.bias),
        "shift literal (4-bit pow2)": ShiftLinear(lb.fake_quantize(w, qp_pow2), qp_pow2, fp32.bias, method="literal"),
        "LUT (4-bit symmetric)": LUTLinear(lb.fake_quantize(w, qp_sym), qp_sym, fp32.bias),
    }
    baselines = {"torch FP32": fp32}
    for engine in ("qnnpack", "onednn"):
        if engine in torch.backends.quantized.supported_engines:
            baselines[f"torch dynamic int8 ({engine})"] = (engine, dynamic_int8(copy.deepcopy(fp32), engine))
    rows = []
    with torch.no_grad():
        for batch in (1, 64):
            x = torch.randn(batch, 4096)
            for name, mod in ours.items():
                if "literal" in name and batch > 1:
                    continue  # the literal kernel is the readable one: minutes at batch 64
                for base_name, base in baselines.items():
                    if isinstance(base, tuple):
                        torch.backends.quantized.engine = base[0]
                        base = base[1]
                    t_ours, t_base, ratio = paired_times(lambda: mod(x), lambda: base(x),
                                                         repeat=repeat if "literal" not in name else 3)
                    rows.append({"batch": batch, "ours": name, "ours_ms": 1e3 * t_ours,
                                 "baseline": base_name, "baseline_ms": 1e3 * t_base, "speedup": ratio})
    sizes = {"torch FP32": 4 * (w.numel() + 4096)}
    sizes.update({n: m.model_size() for n, m in ours.items()})
    return rows, sizes


def lenet(images: int) -> dict:
    model = lb.models.pretrained("lenet5")
    x, y = lb.data.load_fashion_mnist("test", limit=images, normalize=True)
    fq = copy.deepcopy(model)
    lb.attach(fq, lb.QuantConfig(bits=4, scheme="pow2", granularity="channel"))
    lb.freeze(fq)
    shift = lb.inference.convert(fq)
    lut = lb.inference.convert(fq, mode="lut")
    candidates = {"fp32": model, "shift": shift, "shift_fused": lb.inference.fuse(shift),
                  "lut_fused": lb.inference.fuse(lut)}

    singles = x.split(1)  # the images as batches of one, sliced before the clock starts

    def latency(m):
        with torch.no_grad():
            t0 = time.perf_counter()
            for xi in singles:
                m(xi)
            return (time.perf_counter() - t0) / images

    # Three rounds, every model once per round, so machine noise hits all of them alike.
    rounds = [{k: latency(m) for k, m in candidates.items()} for _ in range(3)]
    us = {k: 1e6 * sorted(r[k] for r in rounds)[1] for k in candidates}
    out = {"images": images, **{f"{k}_us": v for k, v in us.items()},
           **{f"speedup_{k}": us["fp32"] / us[k] for k in candidates if k != "fp32"},
           "acc_fake_quant": lb.models.accuracy(fq, x, y)}
    for k, m in candidates.items():
        out[f"acc_{k}"] = lb.models.accuracy(m, x, y)
        out[f"bytes_{k}"] = lb.inference.model_size(m)
    return out


def markdown(env, rows, sizes, le) -> str:
    out = [f"# Packed inference ({env['threads']} threads, {env['isa']}, torch {env['torch']}, {env['cpu']}, "
           f"load average {env['load_average_1min']} at the start, OMP_WAIT_POLICY={env['omp_wait_policy']})", "",
           "## 4096x4096 linear layer", "",
           "| batch | lowbit kernel | ms | baseline | ms | speedup |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['batch']} | {r['ours']} | {r['ours_ms']:.2f} | {r['baseline']} | "
                   f"{r['baseline_ms']:.2f} | {r['speedup']:.2f}x |")
    out += ["", "| weights | bytes |", "|---|---|"] + [f"| {k} | {v:,} |" for k, v in sizes.items()]
    out += ["", f"## LeNet-5, batch 1, {le['images']} Fashion-MNIST test images", "",
            "| model | latency (us / image) | speedup vs FP32 | accuracy (%) | bytes |", "|---|---|---|---|---|",
            f"| torch FP32 | {le['fp32_us']:.0f} | 1.00x | {le['acc_fp32']:.2f} | {le['bytes_fp32']:,} |",
            f"| 4-bit pow2 fake quant (float activations) | - | - | {le['acc_fake_quant']:.2f} | - |"]
    names = {"shift": "lowbit shift, per-layer modules (convert)",
             "shift_fused": "lowbit shift, fused (convert + fuse)",
             "lut_fused": "lowbit LUT, float activations, fused"}
    for k, label in names.items():
        out.append(f"| {label} | {le[k + '_us']:.0f} | {le['speedup_' + k]:.2f}x | {le['acc_' + k]:.2f} | "
                   f"{le['bytes_' + k]:,} |")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    keep_allocations_warm()
    threads = set_threads(args.threads)
    env = environment(threads)
    rows, sizes = linear_layer(args.repeat)
    le = lenet(args.images)
    text = markdown(env, rows, sizes, le)
    print(text)
    write_results("inference", {"environment": env, "linear": rows, "sizes": sizes, "lenet5": le}, text)


if __name__ == "__main__":
    main()
