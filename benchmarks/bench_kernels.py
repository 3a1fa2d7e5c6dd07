"""Kernel throughput as ratios against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_kernels.py [--numel 16777216] [--threads N]

Writes benchmarks/results/kernels.json and kernels.md. Targets (issue 2): fake quant
>= 10x torch's fake_quantize and >= 70% of copy bandwidth; QStep <= 12 copies;
4-bit pack/unpack >= 50% of copy bandwidth.
"""
import argparse

import torch

import lowbit as lb
from lowbit import ops

from _timing import environment, keep_allocations_warm, median_time, set_threads, write_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=1 << 24)
    ap.add_argument("--threads", type=int, default=0, help="0: lowbit's default")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    env = environment(threads)
    env["warm_allocations"] = keep_allocations_warm()
    n, rows = args.numel, 4096 if args.numel % 4096 == 0 else 1
    torch.manual_seed(0)
    w = torch.randn(rows, n // rows) * 0.05
    t = lambda fn: median_time(fn, repeat=args.repeat)  # noqa: E731

    copy = t(lambda: w.clone())
    step_t = lb.qstep(w, 4)
    step_c = lb.qstep(w, 4, "channel")
    scale_c = step_c.clone()
    zp_c = torch.zeros(rows, dtype=torch.int32)
    figures = []

    def add(name, ours, baseline, baseline_name, higher_is_better_ratio, target, target_text):
        ratio = baseline / ours
        figures.append({"name": name, "ours_s": ours, "baseline": baseline_name,
                        "baseline_s": baseline, "ratio": ratio, "target": target,
                        "target_text": target_text,
                        "met": bool(ratio >= target) if higher_is_better_ratio else None})

    fq_t = t(lambda: ops.fake_quant(w, "symmetric", 4, step_t))
    torch_fq_t = t(lambda: torch.fake_quantize_per_tensor_affine(w, float(step_t), 0, -7, 7))
    add("fake quant, per tensor, 4-bit", fq_t, torch_fq_t, "torch.fake_quantize_per_tensor_affine", True, 10, ">= 10x")
    add("fake quant, per tensor, 4-bit", fq_t, copy, "tensor copy (clone)", True, 0.7, ">= 0.7 of copy")
    fq_c = t(lambda: ops.fake_quant(w, "symmetric", 4, step_c))
    torch_fq_c = t(lambda: torch.fake_quantize_per_channel_affine(w, scale_c, zp_c, 0, -7, 7))
    add("fake quant, per channel, 4-bit", fq_c, torch_fq_c, "torch.fake_quantize_per_channel_affine", True, 10, ">= 10x")
    add("fake quant, per channel, 4-bit", fq_c, copy, "tensor copy (clone)", True, 0.7, ">= 0.7 of copy")

    for bits in (2, 4, 8):
        q = t(lambda: ops.qparams(w, "symmetric", bits, 1, "l2"))
        figures.append({"name": f"QStep L2, per tensor, {bits}-bit", "ours_s": q,
                        "baseline": "tensor copy (clone)", "baseline_s": copy,
                        "copies": q / copy, "target": 12, "target_text": "<= 12 copies",
                        "met": bool(q / copy <= 12)})
    for bits in (2, 4, 8):
        q = median_time(lambda: ops.qparams(w, "symmetric", bits, rows, "l2"), repeat=3, warmup=1)
        figures.append({"name": f"QStep L2, per channel ({rows}), {bits}-bit", "ours_s": q,
                        "baseline": "tensor copy (clone)", "baseline_s": copy,
                        "copies": q / copy, "target": 12, "target_text": "<= 12 copies",
                        "met": bool(q / copy <= 12)})

    codes = torch.randint(0, 16, (n,), dtype=torch.int16).to(torch.uint8)
    packed = ops.pack(codes, 4)
    copy_codes = t(lambda: codes.clone())
    add("pack 4-bit", t(lambda: ops.pack(codes, 4)), copy_codes, "uint8 codes copy (clone)", True, 0.5, ">= 0.5 of copy")
    add("unpack 4-bit", t(lambda: ops.unpack(packed, 4, n, False)), copy_codes, "uint8 codes copy (clone)", True, 0.5, ">= 0.5 of copy")

    lines = [f"# Kernel benchmark\n",
             f"`.venv/bin/python benchmarks/bench_kernels.py` on {n:,} float32 weights "
             f"({rows} x {n // rows}); {env['threads']} threads for lowbit and torch; "
             f"kernels: {env['isa']}; torch {env['torch']}; {env['cpu']}; allocations kept warm "
             f"(mallopt) for every measurement: {env['warm_allocations']}.\n",
             "| measurement | lowbit | baseline | baseline time | result | target | met |",
             "|---|---|---|---|---|---|---|"]
    for f in figures:
        result = f"{f['copies']:.1f} copies" if "copies" in f else f"{f['ratio']:.2f}x"
        lines.append(f"| {f['name']} | {f['ours_s'] * 1e3:.1f} ms | {f['baseline']} | "
                     f"{f['baseline_s'] * 1e3:.1f} ms | {result} | {f['target_text']} | "
                     f"{'yes' if f['met'] else 'no'} |")
    md = "\n".join(lines) + "\n"
    print(md)
    write_results("kernels", {"environment": env, "numel": n, "figures": figures}, md)


if __name__ == "__main__":
    main()
