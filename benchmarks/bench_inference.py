"""Packed inference speed and size, every ratio against a baseline timed in the same run.

    OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/bench_inference.py [--threads N] [--images 10000]
        [--isa auto|generic|avx2|avx512]

Part 1: a 4096x4096 linear layer at batch 1 and 64 (--groups picks which): lowbit's integer
kernels for uniform weights (int: IntLinear, int8 activations per row) at 2, 3, 4 and 8
bits, symmetric and asymmetric; the power-of-two pow2 kernel at 2..8 bits (pow2:
ShiftLinear's default, bit-plane rows, int8 activations); the row-packed 4-bit shift kernels
(int8 multiply-add and literal shift-and-add) and 4-bit LUT kernel (shift); the codebook
vlut kernel at 2, 3, 4 and 8 bits and the LUT kernel on the same 4-bit codebook (codebook);
the pow2 / vlut operators called directly (ops); every kernel the kernel table registers
(lowbit.inference.kernel_table) on the first scheme that names it, 4-bit per-channel weights
(table: a new kernel is timed here without an edit); each against torch FP32 nn.Linear and
torch's dynamic int8 Linear (quantize_dynamic, every engine available: qnnpack, onednn).
A 14336x4096 layer (big), whose weights miss every cache: GB/s of weight bytes against a
copy's GB/s, batch 1 and 64.
Part 2: LeNet-5 on Fashion-MNIST (the cached pretrained model, 4-bit power-of-two weights
per channel, frozen without retraining), batch 1 over the test images: latency of the
converted model, per-layer and fused (lb.inference.fuse), against the FP32 model, accuracy
against the float-activation fake-quant model, real model bytes; and the same with 4-bit
symmetric weights on the fused integer kernels.
Writes benchmarks/results/inference.json and inference.md. Targets (issue 5): batch 1 >=
6x FP32 and >= 2x torch int8; batch 64 no slower than FP32; LeNet-5 >= 1.6x FP32 with
accuracy within 0.5 points of fake quant. Issue 15 (integer kernels, AVX-512 VNNI): faster
than FP32 at batch 1 and 64 at every width, approaching torch's int8 at batch 64; pow2 at
batch 1 >= 10x (8 bits), 12x (6), 16x (4), 17x (3), 18x (2) FP32 and >= 3x at batch 64;
codebooks up to 4 bits >= 10x FP32 at batch 1 and >= 1.0x at batch 64.
"""
import argparse
import copy
import os
import sys
import time

import torch
from torch import nn

import lowbit as lb
from lowbit.inference import IntLinear, LUTLinear, ShiftLinear, VLUTLinear
from lowbit.inference.kernel_table import KERNELS

from _timing import environment, keep_allocations_warm, paired_times, set_threads, write_results


def dynamic_int8(linear: nn.Linear, engine: str) -> nn.Module:
    torch.backends.quantized.engine = engine
    return torch.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)


GROUPS = ("int", "pow2", "shift", "codebook", "ops", "table", "big")


class _Op(nn.Module):
    """A direct call of one operator (the kernels without a module around them)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)

    def model_size(self) -> int:
        return 0


def _codebook_qp(w: torch.Tensor, bits: int):
    """A per-channel Lloyd-Max-like codebook: 2^bits values spread over each row's range."""
    top = w.abs().amax(1, keepdim=True)
    return lb.QParams("codebook", bits, torch.linspace(-1, 1, 2 ** bits, dtype=w.dtype)[None, :] * top)


def linear_layer(repeat: int, int_isas=(), groups=GROUPS) -> list:
    torch.manual_seed(0)
    fp32 = nn.Linear(4096, 4096)
    w = fp32.weight.detach()
    qp_pow2 = lb.calibrate(w, "pow2", 4, "channel")
    qp_sym = lb.calibrate(w, "symmetric", 4, "channel")
    ours = {}
    if "int" in groups:
        for scheme in ("symmetric", "asymmetric"):
            for bits in (2, 3, 4, 8):
                qp = lb.calibrate(w, scheme, bits, "channel")
                ours[f"int ({bits}-bit {scheme})"] = IntLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
    main_isa = lb.kernel_isa()
    extra = [(f"{name}, {isa}", isa, mod) for isa in int_isas if isa != main_isa
             for name, mod in ours.items()]  # the int kernels once more in a narrower build
    if "pow2" in groups:  # ShiftLinear's default: bit-plane rows on the pow2 kernel
        for bits in range(2, 9):
            qp = lb.calibrate(w, "pow2", bits, "channel")
            ours[f"pow2 ({bits}-bit pow2)"] = ShiftLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
    if "shift" in groups:  # the row-packed shift kernel
        ours.update({
            "shift int8 (4-bit pow2)": ShiftLinear(lb.fake_quantize(w, qp_pow2), qp_pow2, fp32.bias, method="int8"),
            "shift literal (4-bit pow2)": ShiftLinear(lb.fake_quantize(w, qp_pow2), qp_pow2, fp32.bias,
                                                      method="literal"),
            "LUT (4-bit symmetric)": LUTLinear(lb.fake_quantize(w, qp_sym), qp_sym, fp32.bias),
        })
    if "codebook" in groups:
        for bits in (2, 3, 4, 8):
            qp = _codebook_qp(w, bits)
            ours[f"vlut ({bits}-bit codebook)"] = VLUTLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
        qp = _codebook_qp(w, 4)
        ours["LUT (4-bit codebook)"] = LUTLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
    if "ops" in groups:  # the operators themselves, activations quantized per call where they are
        p = ours.get("pow2 (4-bit pow2)") or ShiftLinear(lb.fake_quantize(w, qp_pow2), qp_pow2, fp32.bias)
        v = VLUTLinear(lb.fake_quantize(w, _codebook_qp(w, 4)), _codebook_qp(w, 4), fp32.bias)
        ours["op pow2_linear (4-bit pow2)"] = _Op(lambda x: lb.ops.pow2_linear(x, p.w_packed, 4, p.w_scale, p.bias))
        ours["op pow2_matmul_int (4-bit pow2, int8 codes given)"] = _Op(
            lambda x: lb.ops.pow2_matmul_int(lb.ops.quantize_activations(x, 8)[0], p.w_packed, 4))
        ours["op vlut_linear (4-bit codebook)"] = _Op(lambda x: lb.ops.vlut_linear(x, v.w_packed, 4, v.tables, v.bias))
    if "table" in groups:
        for kernel, record in KERNELS.items():
            scheme = next(n for n, spec in lb.schemes.SCHEMES.items() if kernel in spec.kernels)
            qp = _codebook_qp(w, 4) if scheme == "codebook" else lb.calibrate(w, scheme, 4, "channel")
            ours[f"table: {kernel} (4-bit {scheme})"] = record.linear(lb.fake_quantize(w, qp), qp, fp32.bias)
    baselines = {"torch FP32": fp32}
    for engine in ("qnnpack", "onednn"):
        if engine in torch.backends.quantized.supported_engines:
            baselines[f"torch dynamic int8 ({engine})"] = (engine, dynamic_int8(copy.deepcopy(fp32), engine))
    rows = []
    with torch.no_grad():
        for batch in (1, 64):
            x = torch.randn(batch, 4096)
            for name, isa, mod in [(n, main_isa, m) for n, m in ours.items()] + extra:
                if "literal" in name and batch > 1:
                    continue  # the literal kernel is the readable one: minutes at batch 64
                lb.set_kernel_isa(isa)
                for base_name, base in baselines.items():
                    if isinstance(base, tuple):
                        torch.backends.quantized.engine = base[0]
                        base = base[1]
                    t_ours, t_base, ratio = paired_times(lambda: mod(x), lambda: base(x),
                                                         repeat=repeat if "literal" not in name else 3)
                    rows.append({"batch": batch, "ours": name, "isa": isa, "ours_ms": 1e3 * t_ours,
                                 "baseline": base_name, "baseline_ms": 1e3 * t_base, "speedup": ratio})
            lb.set_kernel_isa(main_isa)
    sizes = {"torch FP32": 4 * (w.numel() + 4096)}
    sizes.update({n: m.model_size() for n, m in ours.items()})
    return rows, sizes


BIG = (14336, 4096)  # the MLP layer of a 7B-parameter language model: its weights miss every cache


def big_layer(repeat: int) -> list:
    """The bandwidth-bound case: a 14336x4096 layer at batch 1 and 64, lowbit's kernels at 2, 4 and
    8 bits (int: symmetric; pow2; vlut: per-channel codebooks) against torch FP32 and torch's
    dynamic int8 (onednn), each paired with a copy of the FP32 weights (a tensor copy_ of
    O*K float32 values, cold in cache as the weights are). GB/s counts the weight bytes each
    call reads; the copy's GB/s counts the bytes it reads and writes (as STREAM's copy does)."""
    torch.manual_seed(0)
    O, K = BIG
    fp32 = nn.Linear(K, O)
    w = fp32.weight.detach()
    mods = {"torch FP32": fp32}
    if "onednn" in torch.backends.quantized.supported_engines:
        mods["torch dynamic int8 (onednn)"] = dynamic_int8(copy.deepcopy(fp32), "onednn")
    for bits in (2, 4, 8):
        qp = lb.calibrate(w, "symmetric", bits, "channel")
        mods[f"int ({bits}-bit symmetric)"] = IntLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
        qp = lb.calibrate(w, "pow2", bits, "channel")
        mods[f"pow2 ({bits}-bit pow2)"] = ShiftLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
    for bits in (2, 4):
        qp = _codebook_qp(w, bits)
        mods[f"vlut ({bits}-bit codebook)"] = VLUTLinear(lb.fake_quantize(w, qp), qp, fp32.bias)
    weight_bytes = {n: (4 * w.numel() if n == "torch FP32" else O * K if "int8" in n else m.model_size())
                    for n, m in mods.items()}
    src, dst = w.clone(), torch.empty_like(w)
    rows = []
    with torch.no_grad():
        for batch in (1, 64):
            x = torch.randn(batch, K)
            for name, mod in mods.items():
                if "int8" in name:
                    torch.backends.quantized.engine = "onednn"
                t, t_copy, _ = paired_times(lambda: mod(x), lambda: dst.copy_(src), repeat=repeat)
                rows.append({"batch": batch, "ours": name, "ms": 1e3 * t, "weight_bytes": weight_bytes[name],
                             "GB/s": weight_bytes[name] / t / 1e9, "copy_ms": 1e3 * t_copy,
                             "copy GB/s": 2 * 4 * w.numel() / t_copy / 1e9})
    fp = {r["batch"]: r["ms"] for r in rows if r["ours"] == "torch FP32"}
    for r in rows:
        r["vs FP32"] = fp[r["batch"]] / r["ms"]
    return rows


def cpu_time_per_call(fn, calls: int) -> float:
    """Seconds of this process's CPU time per call (time.process_time): unlike wall time,
    it barely moves when other jobs share the cores."""
    fn()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def single_thread_cpu(int_isas, groups=GROUPS) -> list:
    """lowbit's kernels (int: symmetric per-channel; pow2; vlut: per-channel codebooks), torch
    FP32 and torch's onednn int8 on one thread each, by CPU time."""
    torch.manual_seed(0)
    fp32 = nn.Linear(4096, 4096)
    w = fp32.weight.detach()
    lb.set_num_threads(1)
    torch.set_num_threads(1)
    main_isa = lb.kernel_isa()
    base = {"torch FP32": fp32}
    if "onednn" in torch.backends.quantized.supported_engines:
        base["torch dynamic int8 (onednn)"] = dynamic_int8(copy.deepcopy(fp32), "onednn")
    rows = []
    try:
        with torch.no_grad():
            for batch in (1, 64):
                x = torch.randn(batch, 4096)
                calls = 200 if batch == 1 else 20
                if "torch dynamic int8 (onednn)" in base:
                    torch.backends.quantized.engine = "onednn"
                ref = {k: cpu_time_per_call(lambda: m(x), calls if "FP32" not in k else calls // 4) for k, m in base.items()}
                makers = []
                if "int" in groups:
                    makers += [("int", b, lambda b: (lambda qp: IntLinear(lb.fake_quantize(w, qp), qp, fp32.bias))(
                        lb.calibrate(w, "symmetric", b, "channel"))) for b in (2, 4, 8)]
                if "pow2" in groups:
                    makers += [("pow2", b, lambda b: (lambda qp: ShiftLinear(lb.fake_quantize(w, qp), qp, fp32.bias))(
                        lb.calibrate(w, "pow2", b, "channel"))) for b in range(2, 9)]
                if "codebook" in groups:
                    makers += [("vlut", b, lambda b: (lambda qp: VLUTLinear(lb.fake_quantize(w, qp), qp, fp32.bias))(
                        _codebook_qp(w, b))) for b in (2, 3, 4, 8)]
                for isa in [main_isa] + [i for i in int_isas if i != main_isa]:
                    lb.set_kernel_isa(isa)
                    for kernel, bits, make in makers:
                        m = make(bits)
                        t = cpu_time_per_call(lambda: m(x), calls)
                        rows.append({"batch": batch, "isa": isa, "kernel": kernel, "bits": bits, "ours_cpu_ms": 1e3 * t,
                                     **{f"{k} cpu_ms": 1e3 * v for k, v in ref.items()},
                                     **{f"vs {k}": v / t for k, v in ref.items()}})
    finally:
        lb.set_kernel_isa(main_isa)
    return rows


def lenet(images: int) -> dict:
    model = lb.models.pretrained("lenet5")
    x, y = lb.data.load_fashion_mnist("test", limit=images, normalize=True)
    fq = copy.deepcopy(model)
    lb.attach(fq, lb.QuantConfig(bits=4, scheme="pow2", granularity="channel"))
    lb.freeze(fq)
    fq_sym = copy.deepcopy(model)
    lb.attach(fq_sym, lb.QuantConfig(bits=4, scheme="symmetric", granularity="channel"))
    lb.freeze(fq_sym)
    shift = lb.inference.convert(fq)
    lut = lb.inference.convert(fq, mode="lut")
    candidates = {"fp32": model, "shift": shift, "shift_fused": lb.inference.fuse(shift),
                  "lut_fused": lb.inference.fuse(lut), "int_fused": lb.inference.fuse(lb.inference.convert(fq_sym))}

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
           "acc_fake_quant": lb.models.accuracy(fq, x, y), "acc_fake_quant_sym": lb.models.accuracy(fq_sym, x, y)}
    for k, m in candidates.items():
        out[f"acc_{k}"] = lb.models.accuracy(m, x, y)
        out[f"bytes_{k}"] = lb.inference.model_size(m)
    return out


def markdown(env, rows, sizes, le, cpu_rows, big_rows=()) -> str:
    out = [f"# Packed inference ({env['threads']} threads, {env['isa']}, torch {env['torch']}, {env['cpu']}, "
           f"load average {env['load_average_1min']} at the start, OMP_WAIT_POLICY={env['omp_wait_policy']})", "",
           f"`{env['command']}` on {env['date']}; 1-minute load average {env['load_average_1min']} at the start, "
           f"{env['load_average_end']} at the end (other jobs on the machine slow both sides of every pair).", "",
           "## 4096x4096 linear layer", "",
           "| batch | lowbit kernel | ms | baseline | ms | speedup |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['batch']} | {r['ours']} | {r['ours_ms']:.2f} | {r['baseline']} | "
                   f"{r['baseline_ms']:.2f} | {r['speedup']:.2f}x |")
    out += ["", "| weights | bytes |", "|---|---|"] + [f"| {k} | {v:,} |" for k, v in sizes.items()]
    if big_rows:
        out += ["", f"## {BIG[0]}x{BIG[1]} linear layer: the bandwidth-bound case", "",
                "Weights that miss every cache: GB/s of the weight bytes each call reads, against a copy "
                "of the FP32 weights timed alternately with it (GB/s of the bytes the copy reads and writes, as "
                "STREAM counts them).", "",
                "| batch | weights | ms | weight MB | GB/s | vs FP32 | copy GB/s | GB/s vs copy |",
                "|---|---|---|---|---|---|---|---|"]
        for r in big_rows:
            out.append(f"| {r['batch']} | {r['ours']} | {r['ms']:.2f} | {r['weight_bytes'] / 1e6:.1f} | "
                       f"{r['GB/s']:.1f} | {r['vs FP32']:.2f}x | {r['copy GB/s']:.1f} | "
                       f"{r['GB/s'] / r['copy GB/s']:.2f} |")
    if cpu_rows:
        names = [k[3:] for k in cpu_rows[0] if k.startswith("vs ")]
        out += ["", "### One thread each, CPU time per call", "",
                "Seconds of CPU time the process spent per call (`time.process_time`), lowbit's kernels "
                "(int: symmetric, per-channel steps; pow2: ShiftLinear's default; vlut: per-channel codebooks) "
                "and the baselines on one thread each: a measure of work that other jobs on the machine move "
                "much less than wall time.", "",
                "| batch | ISA | kernel | bits | lowbit ms | " + " | ".join(f"{n} ms | vs {n}" for n in names) + " |",
                "|---|---|---|---|---|" + "---|---|" * len(names)]
        for r in cpu_rows:
            out.append(f"| {r['batch']} | {r['isa']} | {r.get('kernel', 'int')} | {r['bits']} | {r['ours_cpu_ms']:.2f} | " +
                       " | ".join(f"{r[n + ' cpu_ms']:.2f} | {r['vs ' + n]:.2f}x" for n in names) + " |")
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
    out += [f"| 4-bit symmetric fake quant (float activations) | - | - | {le['acc_fake_quant_sym']:.2f} | - |",
            f"| lowbit int (4-bit symmetric, int8 activations per row), fused | {le['int_fused_us']:.0f} | "
            f"{le['speedup_int_fused']:.2f}x | {le['acc_int_fused']:.2f} | {le['bytes_int_fused']:,} |"]
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--isa", default="auto", help="kernel build: auto (the widest this CPU runs), generic, avx2, avx512")
    ap.add_argument("--int-isas", default="", help="comma-separated narrower builds to time the int kernels in too "
                    "(e.g. avx2), as extra rows")
    ap.add_argument("--groups", default=",".join(GROUPS),
                    help="comma-separated kernel groups to time on the 4096x4096 layer: int (uniform weights), pow2 "
                         "(power of two, 2..8 bits, the default ShiftLinear), shift (the row-packed shift and LUT "
                         "kernels), codebook (vlut at 2, 3, 4, 8 bits and LUT), ops (direct operator calls), "
                         "table (every registered kernel at 4 bits), big (a 14336x4096 layer, GB/s against a copy)")
    args = ap.parse_args()
    lb.set_kernel_isa(args.isa)
    keep_allocations_warm()
    threads = set_threads(args.threads)
    env = environment(threads)
    env["command"] = "OMP_WAIT_POLICY=passive .venv/bin/python benchmarks/bench_inference.py " + " ".join(sys.argv[1:])
    env["date"] = time.strftime("%Y-%m-%d %H:%M")
    int_isas = [i for i in args.int_isas.split(",") if i]
    groups = tuple(g for g in args.groups.split(",") if g)
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        ap.error(f"--groups takes {', '.join(GROUPS)}, got {', '.join(bad)}")
    rows, sizes = linear_layer(args.repeat, int_isas, groups)
    big_rows = big_layer(args.repeat) if "big" in groups else []
    le = lenet(args.images)
    cpu_rows = single_thread_cpu(int_isas, groups)
    set_threads(args.threads)
    env["load_average_end"] = round(os.getloadavg()[0], 2)
    text = markdown(env, rows, sizes, le, cpu_rows, big_rows)
    print(text)
    write_results("inference", {"environment": env, "linear": rows, "sizes": sizes, "lenet5": le,
                                "single_thread_cpu": cpu_rows, "big_layer": big_rows}, text)


if __name__ == "__main__":
    main()
