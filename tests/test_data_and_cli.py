"""Fashion-MNIST loading, the demo and the command line's error handling."""
import gzip
import subprocess
import sys

import pytest
import torch

from lowbit.data import load_fashion_mnist
from lowbit.data.fashion_mnist import DEFAULT_ROOT


def _write_idx(path, array_bytes, dims, gz=True):
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array_bytes)


def test_loads_small_idx_files(tmp_path):
    imgs = bytes(i % 256 for i in range(1568))  # 2 images of 28x28 = 784 bytes each
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs[:1568], [2, 28, 28])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", bytes([3, 7]), [2], gz=False)
    x, y = load_fashion_mnist("test", root=str(tmp_path))
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.max()) <= 1.0 and y.tolist() == [3, 7]


def test_truncated_and_missing_files(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", bytes(100), [2, 28, 28])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", bytes([1, 2]), [2])
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist("test", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=str(tmp_path))
    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist("valid", root=str(tmp_path))


@pytest.mark.skipif(not __import__("os").path.isdir(DEFAULT_ROOT),
                    reason="dataset-fashion-mnist not installed")
def test_demo_runs_on_real_data():
    from lowbit import demo
    rows = demo.run(train_size=3000, epochs=1)
    assert len(rows) == 4 * 5
    eight_bit = [r["accuracy"] for r in rows if r["bits"] == 8]
    assert min(eight_bit) > 60  # an MLP after one short epoch, barely touched by 8 bits
    four = [r for r in rows if r["bits"] == 4 and r["scheme"] == "symmetric"][0]
    assert four["packed_bytes"] < (784 * 256 + 256 * 128 + 128 * 10) * 4 / 7


def test_cli_reports_user_errors_in_one_line(tmp_path):
    env = dict(__import__("os").environ, LOWBIT_FASHION_MNIST=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "lowbit", "demo", "--epochs", "1"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lowbit demo: error:") and "Traceback" not in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "lowbit", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
