"""Kernel throughput as ratios against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_kernels.py [--numel 16777216] [--threads N]

Each ratio comes from lowbit and its baseline timed alternately (median over pairs),
with the same thread count for lowbit and torch and allocations kept warm for both.
Writes benchmarks/results/kernels.json and kernels.md. Targets (issue 2): fake quant
>= 10x torch's fake_quantize and >= 70% of copy bandwidth; QStep <= 12 copies;
4-bit pack/unpack >= 50% of copy bandwidth.
"""
import argparse

import torch

import lowbit as lb
from lowbit import ops

from _timing import environment, keep_allocations_warm, paired_times, set_threads, write_results


def measure(w: torch.Tensor, rows: int, repeat: int) -> list:
    figures = []

    def ratio(name, ours, baseline, baseline_name, target, target_text):
        t_ours, t_base, r = paired_times(ours, baseline, repeat=repeat)
        figures.append({"name": name, "threads": lb.get_num_threads(), "ours_s": t_ours,
                        "baseline": baseline_name, "baseline_s": t_base, "ratio": r,
                        "target": target, "target_text": target_text, "met": bool(r >= target)})

    def copies(name, ours, target=12, repeat_=repeat):
        t_ours, t_copy, r = paired_times(ours, lambda: w.clone(), repeat=repeat_, warmup=1)
        figures.append({"name": name, "threads": lb.get_num_threads(), "ours_s": t_ours,
                        "baseline": "tensor copy (clone)", "baseline_s": t_copy,
                        "copies": 1 / r, "target": target, "target_text": f"<= {target} copies",
                        "met": bool(1 / r <= target)})

    step_t, step_c = lb.qstep(w, 4), lb.qstep(w, 4, "channel")
    zp_c = torch.zeros(rows, dtype=torch.int32)
    copy = lambda: w.clone()  # noqa: E731
    fq_t = lambda: ops.fake_quant(w, "symmetric", 4, step_t)  # noqa: E731
    fq_c = lambda: ops.fake_quant(w, "symmetric", 4, step_c)  # noqa: E731
    ratio("fake quant, per tensor, 4-bit", fq_t,
          lambda: torch.fake_quantize_per_tensor_affine(w, float(step_t), 0, -7, 7),
          "torch.fake_quantize_per_tensor_affine", 10, ">= 10x")
    ratio("fake quant, per tensor, 4-bit", fq_t, copy, "tensor copy (clone)", 0.7, ">= 0.7 of copy")
    ratio("fake quant, per channel, 4-bit", fq_c,
          lambda: torch.fake_quantize_per_channel_affine(w, step_c, zp_c, 0, -7, 7),
          "torch.fake_quantize_per_channel_affine", 10, ">= 10x")
    ratio("fake quant, per channel, 4-bit", fq_c, copy, "tensor copy (clone)", 0.7, ">= 0.7 of copy")
    for bits in (2, 4, 8):
        copies(f"QStep L2, per tensor, {bits}-bit", lambda: ops.qparams(w, "symmetric", bits, 1, "l2"))
    for bits in (2, 4, 8):
        copies(f"QStep L2, per channel ({rows} groups), {bits}-bit",
               lambda: ops.qparams(w, "symmetric", bits, rows, "l2"), repeat_=3)
    n = w.numel()
    codes = torch.randint(0, 16, (n,), dtype=torch.int16).to(torch.uint8)
    packed = ops.pack(codes, 4)
    ratio("pack 4-bit", lambda: ops.pack(codes, 4), lambda: codes.clone(),
          "uint8 codes copy (clone)", 0.5, ">= 0.5 of copy")
    ratio("unpack 4-bit", lambda: ops.unpack(packed, 4, n, False), lambda: codes.clone(),
          "uint8 codes copy (clone)", 0.5, ">= 0.5 of copy")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=1 << 24)
    ap.add_argument("--threads", type=int, default=0, help="0: lowbit's default")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    env = environment(threads)
    env["warm_allocations"] = keep_allocations_warm()
    n = args.numel
    rows = 4096 if n % 4096 == 0 else 1
    torch.manual_seed(0)
    w = torch.randn(rows, n // rows) * 0.05
    figures = measure(w, rows, args.repeat)
    if threads > 1:  # the fake-quant ratios with one thread on both sides as well
        set_threads(1)
        figures += [f for f in measure(w, rows, args.repeat) if f["name"].startswith("fake quant")]
        set_threads(args.threads)

    lines = ["# Kernel benchmark\n",
             f"`.venv/bin/python benchmarks/bench_kernels.py` on {n:,} float32 weights "
             f"({rows} x {n // rows}); kernels: {env['isa']}; torch {env['torch']}; {env['cpu']} "
             f"({env['cpus_available']} CPUs); allocations kept warm (mallopt) for every "
             f"measurement: {env['warm_allocations']}. lowbit and its baseline are timed "
             "alternately with the same thread count; the result is the median over pairs.\n",
             "| measurement | threads | lowbit | baseline | baseline time | result | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        result = f"{f['copies']:.1f} copies" if "copies" in f else f"{f['ratio']:.2f}x"
        lines.append(f"| {f['name']} | {f['threads']} | {f['ours_s'] * 1e3:.1f} ms | {f['baseline']} | "
                     f"{f['baseline_s'] * 1e3:.1f} ms | {result} | {f['target_text']} | "
                     f"{'yes' if f['met'] else 'no'} |")
    md = "\n".join(lines) + "\n"
    print(md)
    write_results("kernels", {"environment": env, "numel": n, "figures": figures}, md)


if __name__ == "__main__":
    main()
