"""Kernel throughput as ratios against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_kernels.py [--numel 16777216] [--threads N]

Each ratio comes from lowbit and its baseline timed alternately (median over pairs),
with the same thread count for lowbit and torch and allocations kept warm for both.
Writes benchmarks/results/kernels.json and kernels.md. Targets (issue 2): fake quant
>= 10x torch's fake_quantize and >= 70% of copy bandwidth; QStep <= 12 copies;
4-bit pack/unpack >= 50% of copy bandwidth. The other operators (quantize, dequantize,
the STE, packed inference at 1024 x 1024, the integer kernels) are timed against torch's nearest op, without
targets, so that every torch.ops.lowbit op has a timing (tests/test_ops_discovered.py).
"""
import argparse
import os

import torch
import torch.nn.functional as F

import lowbit as lb
from lowbit import ops

from _timing import environment, keep_allocations_warm, paired_times, set_threads, write_results


def measure(w: torch.Tensor, rows: int, repeat: int, only_qstep: bool = False) -> list:
    figures = []

    def ratio(name, ours, baseline, baseline_name, target=None, target_text="none (timing)"):
        t_ours, t_base, r = paired_times(ours, baseline, repeat=repeat)
        figures.append({"name": name, "threads": lb.get_num_threads(), "ours_s": t_ours,
                        "baseline": baseline_name, "baseline_s": t_base, "ratio": r,
                        "target": target, "target_text": target_text,
                        "met": None if target is None else bool(r >= target)})

    def copies(name, ours, target=12, repeat_=repeat):
        t_ours, t_copy, r = paired_times(ours, lambda: w.clone(), repeat=repeat_, warmup=1)
        figures.append({"name": name, "threads": lb.get_num_threads(), "ours_s": t_ours,
                        "baseline": "tensor copy (clone)", "baseline_s": t_copy,
                        "copies": 1 / r, "target": target, "target_text": f"<= {target} copies",
                        "met": bool(1 / r <= target)})

    if only_qstep:
        qstep_rows(w, rows, repeat, copies)
        return figures
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
    qstep_rows(w, rows, repeat, copies)
    n = w.numel()
    codes = torch.randint(0, 16, (n,), dtype=torch.int16).to(torch.uint8)
    packed = ops.pack(codes, 4)
    ratio("pack 4-bit", lambda: ops.pack(codes, 4), lambda: codes.clone(),
          "uint8 codes copy (clone)", 0.5, ">= 0.5 of copy")
    ratio("unpack 4-bit", lambda: ops.unpack(packed, 4, n, False), lambda: codes.clone(),
          "uint8 codes copy (clone)", 0.5, ">= 0.5 of copy")
    other_ops(w, step_c, rows, ratio)
    return figures


def qstep_rows(w: torch.Tensor, rows: int, repeat: int, copies, widths=(2, 4, 8)) -> None:
    """QStep (L2 step) per tensor and per channel, in tensor copies timed alternately."""
    for bits in widths:
        copies(f"QStep L2, per tensor, {bits}-bit", lambda: ops.qparams(w, "symmetric", bits, 1, "l2"))
    for bits in widths:
        copies(f"QStep L2, per channel ({rows} groups), {bits}-bit",
               lambda: ops.qparams(w, "symmetric", bits, rows, "l2"), repeat_=max(3, repeat // 3))


def other_ops(w: torch.Tensor, step_c: torch.Tensor, rows: int, ratio) -> None:
    """The remaining operators against torch's nearest op (no targets: timings only)."""
    scales, zeros = step_c.double(), torch.zeros(rows, dtype=torch.int64)
    codes_c = ops.quantize(w, "symmetric", 4, step_c)
    q_torch = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
    ratio("quantize, per channel, 4-bit", lambda: ops.quantize(w, "symmetric", 4, step_c),
          lambda: torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8), "torch.quantize_per_channel")
    ratio("dequantize, per channel, 4-bit", lambda: ops.dequantize(codes_c, "symmetric", 4, step_c),
          q_torch.dequantize, "torch dequantize (per-channel qint8)")
    ratio("fake_quant_mask, per channel, 4-bit", lambda: ops.fake_quant_mask(w, "symmetric", 4, step_c),
          lambda: torch.fake_quantize_per_channel_affine(w, step_c, zeros.int(), 0, -7, 7),
          "torch.fake_quantize_per_channel_affine")
    wg = w.detach().clone().requires_grad_()

    def fwd_bwd(f):
        wg.grad = None
        f(wg).sum().backward()
    ratio("ste_fake_quant forward + backward, per channel, 4-bit",
          lambda: fwd_bwd(lambda v: ops.ste_fake_quant(v, "symmetric", 4, step_c)),
          lambda: fwd_bwd(lambda v: torch.fake_quantize_per_channel_affine(v, step_c, zeros.int(), 0, -7, 7)),
          "torch.fake_quantize_per_channel_affine forward + backward")

    O = K = 1024  # packed inference on one layer, 4-bit, batch 1
    lin = torch.randn(O, K) * 0.05
    qp = lb.calibrate(lin, "pow2", 4, "channel")
    pow2_codes = ops.quantize(lin, "pow2", 4, qp.p0)
    w_shift = ops.pack_rows(pow2_codes, 4)
    w_scale = qp.p0.double() * 2.0 ** -6  # max_level 2^(k_lo - L): L = 7, k_lo = 1 at 4 bits
    u = torch.randint(0, 16, (O, K), dtype=torch.int16).to(torch.uint8)
    w_lut, tables = ops.pack_rows(u, 4), torch.randn(1, 16)
    x, bias = torch.randn(1, K), torch.randn(O)
    x_codes = ops.quantize_activations(x, 8)[0]
    x_big = torch.randn(64, K)
    ratio(f"pack_rows, {O} x {K}, 4-bit", lambda: ops.pack_rows(pow2_codes, 4), pow2_codes.clone,
          "int8 codes copy (clone)")
    ratio(f"quantize_activations, 64 x {K}, 8-bit", lambda: ops.quantize_activations(x_big, 8),
          lambda: torch.quantize_per_tensor(x_big, float(x_big.abs().max()) / 127, 0, torch.qint8),
          "torch.quantize_per_tensor (max-abs scale)")
    ratio(f"shift_matmul_int, batch 1, {O} x {K}, 4-bit", lambda: ops.shift_matmul_int(x_codes, w_shift, 4),
          lambda: F.linear(x, lin), "torch FP32 F.linear")
    ratio(f"shift_linear, batch 1, {O} x {K}, 4-bit",
          lambda: ops.shift_linear(x, w_shift, 4, w_scale, bias), lambda: F.linear(x, lin, bias),
          "torch FP32 F.linear")
    ratio(f"lut_linear, batch 1, {O} x {K}, 4-bit", lambda: ops.lut_linear(x, w_lut, 4, tables, bias),
          lambda: F.linear(x, lin, bias), "torch FP32 F.linear")
    sym = lb.calibrate(lin, "symmetric", 4, "channel")  # the integer kernels: int8 activations per row
    sym_codes = ops.quantize(lin, "symmetric", 4, sym.p0)
    w_int, zero = ops.pack_int_rows(sym_codes, 4), torch.full((O,), 8, dtype=torch.int32)
    ratio(f"pack_int_rows, {O} x {K}, 4-bit", lambda: ops.pack_int_rows(sym_codes, 4), sym_codes.clone,
          "int8 codes copy (clone)")
    ratio(f"int_matmul_int, batch 1, {O} x {K}, 4-bit", lambda: ops.int_matmul_int(x_codes, w_int, 4, zero),
          lambda: F.linear(x, lin), "torch FP32 F.linear")
    ratio(f"int_linear, batch 1, {O} x {K}, 4-bit",
          lambda: ops.int_linear(x, w_int, 4, sym.p0.double(), zero, bias), lambda: F.linear(x, lin, bias),
          "torch FP32 F.linear")
    # a codebook convolution the size of LeNet-5's second one, on the image itself
    conv_w = torch.randn(16, 6, 5, 5)
    conv_u = torch.randint(0, 16, (16, 150), dtype=torch.int16).to(torch.uint8)
    conv_packed, conv_tables, images = ops.pack_int_rows(conv_u, 4), torch.randn(16, 16), torch.randn(64, 6, 12, 12)
    ratio("vlut_conv2d, 64 x 6 x 12 x 12, 16 x 6 x 5 x 5, 4-bit",
          lambda: ops.vlut_conv2d(images, conv_packed, 4, conv_tables, None, 0, 6, [5, 5], [1, 1], [0, 0], [1, 1]),
          lambda: F.conv2d(images, conv_w), "torch FP32 F.conv2d")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=1 << 24)
    ap.add_argument("--threads", type=int, default=0, help="0: lowbit's default")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--only-qstep", action="store_true",
                    help="time only QStep and print its rows (writes no result files)")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    env = environment(threads)
    env["warm_allocations"] = keep_allocations_warm()
    n = args.numel
    rows = 4096 if n % 4096 == 0 else 1
    torch.manual_seed(0)
    w = torch.randn(rows, n // rows) * 0.05
    figures = measure(w, rows, args.repeat, args.only_qstep)
    if threads > 1 and not args.only_qstep:  # the fake-quant ratios with one thread on both sides as well
        set_threads(1)
        figures += [f for f in measure(w, rows, args.repeat) if f["name"].startswith("fake quant")]
        set_threads(args.threads)

    lines = ["# Kernel benchmark\n",
             f"`.venv/bin/python benchmarks/bench_kernels.py` on {n:,} float32 weights "
             f"({rows} x {n // rows}); kernels: {env['isa']}; torch {env['torch']}; {env['cpu']} "
             f"({env['cpus_available']} CPUs, 1-minute load average {env['load_average_1min']} at the "
             f"start, {os.getloadavg()[0]:.2f} at the end); allocations kept warm (mallopt) for every "
             f"measurement: {env['warm_allocations']}. lowbit and its baseline are timed "
             "alternately with the same thread count; the result is the median over pairs.\n",
             "| measurement | threads | lowbit | baseline | baseline time | result | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        result = f"{f['copies']:.1f} copies" if "copies" in f else f"{f['ratio']:.2f}x"
        lines.append(f"| {f['name']} | {f['threads']} | {f['ours_s'] * 1e3:.1f} ms | {f['baseline']} | "
                     f"{f['baseline_s'] * 1e3:.1f} ms | {result} | {f['target_text']} | "
                     f"{'-' if f['met'] is None else 'yes' if f['met'] else 'no'} |")
    md = "\n".join(lines) + "\n"
    print(md)
    if args.only_qstep:
        return
    write_results("kernels", {"environment": env, "numel": n, "figures": figures}, md)


if __name__ == "__main__":
    main()
