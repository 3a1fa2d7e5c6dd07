"""Devices and dispatch: native kernels on CPU, the PyTorch references registered for
every other device, TorchScript, threads and the GIL."""
import os
import threading
import time

import pytest
import torch

import lowbit as lb
from lowbit import ops


def test_cpu_is_native_and_fallback_registered():
    for name in ("quantize", "fake_quant", "qparams", "pack"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lowbit::{name}", "CPU")
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lowbit::{name}", "CompositeExplicitAutograd")
    # the STE's autograd rule is registered once for the Autograd alias: every device
    assert torch._C._dispatch_has_kernel_for_dispatch_key("lowbit::ste_fake_quant", "Autograd")


def test_meta_device_goes_through_the_reference():
    w = torch.empty(16, 8, device="meta")
    step = torch.empty(16, device="meta")
    assert ops.fake_quant(w, "symmetric", 4, step).shape == (16, 8)
    assert ops.quantize(w, "symmetric", 4, step).dtype == torch.int8
    assert ops.quantize(w, "codebook", 3, torch.empty(2, 8, device="meta")).dtype == torch.uint8
    assert ops.ste_fake_quant(w, "pow2", 4, step).device.type == "meta"
    scale, zp = ops.qparams(w, "asymmetric", 4, 16, "minmax")
    assert scale.shape == (16,) and zp.dtype == torch.int32
    assert ops.pack(torch.empty(9, dtype=torch.int8, device="meta"), 3).shape == (4,)
    with pytest.raises(ValueError, match="bits must be in"):  # checks still run on meta
        ops.fake_quant(w, "symmetric", 12, step)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_uses_reference_and_matches_cpu():
    w = torch.randn(32, 64)
    qp = lb.calibrate(w, "symmetric", 3, "channel")
    cpu = lb.fake_quantize(w, qp)
    gpu = lb.fake_quantize(w.cuda(), qp.to("cuda"))
    torch.testing.assert_close(gpu.cpu(), cpu)


def test_torchscript_can_call_the_ops():
    @torch.jit.script
    def f(w: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        return torch.ops.lowbit.fake_quant(w, "symmetric", 4, step, None)

    w, step = torch.randn(10), torch.tensor([0.1])
    assert torch.equal(f(w, step), ops.fake_quant(w, "symmetric", 4, step))


def test_thread_count_default_and_override():
    import os
    default = lb.get_num_threads()
    expected = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS") else len(os.sched_getaffinity(0))
    assert default == expected
    w = torch.randn(512, 1024)
    step = lb.qstep(w, 4, "channel")
    lb.set_num_threads(1)
    try:
        assert lb.get_num_threads() == 1
        assert torch.equal(lb.qstep(w, 4, "channel"), step)
    finally:
        lb.set_num_threads(0)
    assert lb.get_num_threads() == default
    with pytest.raises(TypeError):
        lb.set_num_threads(1.5)


def _thread_masks():
    masks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            masks[tid] = os.sched_getaffinity(int(tid))
        except OSError:  # the thread ended meanwhile
            pass
    return masks


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_packed_kernels_leave_every_thread_where_it_may_run():
    # The GEMMs move an OpenMP worker off its master's CPU through a brief affinity
    # change; every thread must end with the mask it had.
    torch.manual_seed(0)
    w = torch.randn(1024, 1024)
    qp = lb.calibrate(w, "pow2", 4, "channel")
    layer = lb.inference.ShiftLinear(lb.fake_quantize(w, qp), qp)
    lut = lb.inference.LUTLinear(lb.fake_quantize(w, qp), qp)
    x = torch.randn(1, 1024)
    allowed = os.sched_getaffinity(0)  # before any kernel had a chance to move a worker
    before = _thread_masks()
    lb.set_num_threads(2)
    try:
        with torch.no_grad():
            want_shift, want_lut = layer(x), lut(x)  # starts the worker threads
            for _ in range(20):
                assert torch.equal(layer(x), want_shift)
                assert torch.equal(lut(x), want_lut)
            after = _thread_masks()
    finally:
        lb.set_num_threads(0)
    # Threads that existed before keep their masks; new ones (the OpenMP workers) have the
    # process's. Whether a worker lands on its master's CPU, and so gets moved, is up to the
    # scheduler: this checks the restore, not that a move happened.
    assert {t: m for t, m in after.items() if t in before} == {t: m for t, m in before.items() if t in after}
    assert all(m == allowed for t, m in after.items() if t not in before)


def test_gil_is_released_during_native_work():
    w = torch.randn(1 << 23)
    progress = []
    done = threading.Event()

    def python_work():
        while not done.is_set():
            progress.append(1)

    t = threading.Thread(target=python_work)
    t.start()
    time.sleep(0.01)
    before = len(progress)
    lb.qstep(w, 4)  # long native call
    during = len(progress) - before
    done.set()
    t.join()
    assert during > 0  # the Python thread ran while the kernel worked


def test_isa_switch_validates():
    from lowbit.threads import ISAS, missing_isa_reason, supported_isas
    with pytest.raises(ValueError, match="isa must be 'auto', 'generic', 'avx2' or 'avx512'"):
        lb.set_kernel_isa("sse9")
    lb.set_kernel_isa("auto")
    assert lb.kernel_isa() == supported_isas()[-1]  # auto takes the widest build the CPU runs
    try:
        for name in ISAS:
            if missing_isa_reason(name):
                with pytest.raises(ValueError, match=f"isa='{name}' but this CPU lacks"):
                    lb.set_kernel_isa(name)
            else:
                lb.set_kernel_isa(name)
                assert lb.kernel_isa() == name
    finally:
        lb.set_kernel_isa("auto")


def test_import_fails_loudly_on_a_torch_mismatch():
    import subprocess
    import sys
    code = "import torch; torch.__version__ = '0.0.1'; import lowbit"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "was built against torch" in proc.stderr and "0.0.1" in proc.stderr
    assert "make setup" not in proc.stderr and "./dev setup" in proc.stderr
