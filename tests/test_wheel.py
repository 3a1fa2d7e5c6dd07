"""The wheel a user installs: `pip wheel .` builds one (the C++ extension included), it
installs into a fresh venv that sees only Debian's packages, and lowbit works from there:
import, the compiled kernels, ptq, a packed model, a .lbq round trip and the command line.

The wheel's CMake build goes to build/wheel, beside the development build, so ccache
serves the objects the development build compiled (about half a minute on 2 cores)."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"   # Debian's: its site-packages hold torch and numpy

SMOKE = textwrap.dedent("""
    import sys, tempfile, pathlib
    import torch
    import lowbit as lb
    assert "site-packages" in lb.__file__, lb.__file__        # the installed copy, not the tree
    assert lb.kernel_isa() in ("generic", "avx2", "avx512"), lb.kernel_isa()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    q = lb.ptq(model, "pow2", 4)
    x = torch.randn(3, 16)
    packed = lb.inference.convert(q)
    assert packed(x).shape == (3, 4)
    path = pathlib.Path(tempfile.mkdtemp()) / "m.lbq"
    lb.save_quantized(q, path)
    fresh = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    assert torch.equal(lb.load_quantized(path, fresh)(x), q(x))
    print("smoke ok", lb.__version__)
""")


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs Debian's /usr/bin/python3")
@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake to build the wheel")
def test_wheel_installs_into_a_fresh_venv_and_works(tmp_path):
    dist = tmp_path / "dist"
    env = dict(os.environ, LOWBIT_BUILD_DIR=str(ROOT / "build" / "wheel"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
          "-q", "-w", str(dist), str(ROOT)], env=env, cwd=ROOT)
    wheels = list(dist.glob("lowbit-*.whl"))
    assert len(wheels) == 1, wheels
    names = _run([sys.executable, "-m", "zipfile", "-l", str(wheels[0])]).stdout
    for member in ("lowbit/_C.", "lowbit/_C.pyi", "lowbit/py.typed", "entry_points.txt"):
        assert member in names, f"the wheel lacks {member}"

    venv = tmp_path / "venv"
    _run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheels[0])])
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = _run([str(py), "-c", SMOKE], cwd=tmp_path, env=clean).stdout
    assert "smoke ok" in out
    help_text = _run([str(venv / "bin" / "lowbit"), "--help"], cwd=tmp_path, env=clean).stdout
    assert "study" in help_text
