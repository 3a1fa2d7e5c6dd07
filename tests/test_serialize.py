"""save_quantized / load_quantized: packed codes at their bit width, exact outputs after
loading, atomic writes, and clear errors for truncated or corrupted files."""
import json
import os
import struct

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

import lowbit as lb
from lowbit import serialize as S


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):                                  # [B, 1, 6, 6]
        h = torch.relu(self.bn(self.conv(x)))              # [B, 4, 4, 4]
        h, _ = self.lstm(h.flatten(2).transpose(1, 2))     # [B, 16, 6]
        return self.fc(h[:, -1])


def _trained_like():
    torch.manual_seed(1)
    model = Net()
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


X = torch.randn(3, 1, 6, 6)


def _header(data: bytes) -> dict:
    (n,) = struct.unpack_from("<Q", data, len(S.MAGIC) + 4)
    return json.loads(data[len(S.MAGIC) + 12:len(S.MAGIC) + 12 + n])


@pytest.mark.parametrize("scheme,bits,kw", [
    ("asymmetric", 4, {}), ("symmetric", 3, {}), ("symmetric", 8, {"step": "l2"}),
    ("pow2", 5, {"quantize_bias": True}), ("asymmetric", 2, {"granularity": "tensor"}),
    ("codebook", 2, {"codebook": [-0.3, -0.05, 0.1, 0.4], "batchnorm": False}),
])
def test_round_trip_gives_exactly_the_same_outputs(tmp_path, scheme, bits, kw):
    q = lb.ptq(_trained_like(), scheme, bits, **kw)
    path = tmp_path / "model.lbq"
    n = lb.save_quantized(q, path, metadata={"scheme": scheme})
    assert n == path.stat().st_size
    loaded = lb.load_quantized(path, Net).eval()
    assert torch.equal(loaded(X), q(X))
    for k, v in q.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert loaded.lowbit_metadata == {"scheme": scheme}
    rec, rec_loaded = lb.recorded_qparams(q), lb.recorded_qparams(loaded)
    assert set(rec) == set(rec_loaded)
    for key, qp in rec.items():
        assert torch.equal(rec_loaded[key].p0, qp.p0) and rec_loaded[key].bits == qp.bits
    # A loaded model saves to the same bytes.
    assert S.to_bytes(loaded, {"scheme": scheme}) == path.read_bytes()


def test_lbq_files_load_without_unpickling(tmp_path, monkeypatch):
    """A .lbq file is JSON and raw bytes: loading it never reaches torch.load or pickle, so
    weights_only (the torch >= 2.6 default) does not apply to it (docs: guide/ptq)."""
    import pickle

    q = lb.ptq(_trained_like(), "symmetric", 4)
    path = tmp_path / "model.lbq"
    lb.save_quantized(q, path)

    def refuse(*args, **kwargs):
        raise AssertionError("load_quantized unpickled something")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    assert torch.equal(lb.load_quantized(path, Net).eval()(X), q(X))


def test_packed_sizes_are_real_bytes():
    model = _trained_like()
    q = lb.ptq(model, "asymmetric", 3)
    data = S.to_bytes(q)
    header = _header(data)
    packed = {e["name"]: e for e in header["tensors"] if e["kind"] == "packed"}
    assert set(packed) == {"conv.weight", "bn.weight", "bn.bias", "lstm.weight_ih_l0",
                           "lstm.weight_hh_l0", "fc.weight"}
    for name, e in packed.items():
        numel = q.state_dict()[name].numel()
        assert e["codes"]["nbytes"] == (numel * 3 + 7) // 8
    raw = [e for e in header["tensors"] if e["kind"] == "raw"]
    assert {e["name"] for e in raw} >= {"bn.running_mean", "bn.num_batches_tracked", "fc.bias"}
    payload = sum(e["nbytes"] for e in raw) + sum(
        e[k]["nbytes"] for e in packed.values() for k in ("codes", "p0", "p1"))
    header_len = struct.unpack_from("<Q", data, len(S.MAGIC) + 4)[0]
    assert len(data) == len(S.MAGIC) + 12 + header_len + 8 + payload + 32
    # On a model of real size the header is noise: 3-bit codes take ~3/32 of float32.
    lenet = lb.models.LeNet5()
    ratio = len(S.to_bytes(lb.ptq(lenet, "asymmetric", 3))) / len(S.to_bytes(lenet))
    assert 3 / 32 < ratio < 3 / 32 + 0.03


def test_frozen_models_save_too(tmp_path):
    model = _trained_like()
    lb.attach(model, bits=3)
    lb.freeze(model)
    lb.save_quantized(model, tmp_path / "f.lbq")
    loaded = lb.load_quantized(tmp_path / "f.lbq", Net())
    assert torch.equal(loaded.eval()(X), model(X))


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "model.lbq"
    lb.save_quantized(lb.ptq(_trained_like(), "asymmetric", 4), path)
    old = path.read_bytes()

    def fail(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(S.os, "fsync", fail)   # fails after the bytes are written
    with pytest.raises(OSError, match="simulated"):
        lb.save_quantized(lb.ptq(_trained_like(), "pow2", 2), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.lbq"]

    monkeypatch.undo()
    monkeypatch.setattr(S.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("rename failed")))
    with pytest.raises(OSError, match="rename failed"):
        lb.save_quantized(lb.ptq(_trained_like(), "pow2", 2), tmp_path / "new.lbq")
    assert os.listdir(tmp_path) == ["model.lbq"]


def test_written_files_get_the_umask_or_keep_their_mode(tmp_path):
    from lowbit.files import write_text_atomically
    old = os.umask(0o022)
    try:
        write_text_atomically(tmp_path / "new.md", "x")
        assert (tmp_path / "new.md").stat().st_mode & 0o777 == 0o644  # as open() would give
        (tmp_path / "new.md").chmod(0o600)
        write_text_atomically(tmp_path / "new.md", "y")
        assert (tmp_path / "new.md").stat().st_mode & 0o777 == 0o600  # the replaced file's mode
        assert (tmp_path / "new.md").read_text() == "y"
    finally:
        os.umask(old)
    assert os.listdir(tmp_path) == ["new.md"]


@pytest.fixture(scope="module")
def good_bytes():
    torch.manual_seed(0)
    return S.to_bytes(lb.ptq(_trained_like(), "symmetric", 4))


@pytest.mark.parametrize("cut", [0, 4, 8, 15, 19, 40, -33, -1])
def test_truncated_files_raise(tmp_path, good_bytes, cut):
    path = tmp_path / "t.lbq"
    path.write_bytes(good_bytes[:cut])
    with pytest.raises(S.CorruptFileError, match="truncated|magic"):
        lb.load_quantized(path, Net)


def test_other_corruptions_raise(good_bytes):
    with pytest.raises(S.CorruptFileError, match="magic"):
        S.from_bytes(b"PK\x03\x04" + good_bytes[4:], Net)
    with pytest.raises(S.CorruptFileError, match="version"):
        S.from_bytes(good_bytes[:8] + struct.pack("<I", 99) + good_bytes[12:], Net)
    with pytest.raises(S.CorruptFileError, match="padded"):
        S.from_bytes(good_bytes + b"\0", Net)
    flipped = bytearray(good_bytes)
    flipped[len(flipped) // 2] ^= 0x10
    with pytest.raises(S.CorruptFileError, match="checksum"):
        S.from_bytes(bytes(flipped), Net)
    with pytest.raises(FileNotFoundError):
        lb.load_quantized("/nonexistent/model.lbq", Net)


@given(position=st.integers(0, 10 ** 9), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_detected(good_bytes, position, bit):
    data = bytearray(good_bytes)
    data[position % len(data)] ^= 1 << bit
    with pytest.raises(S.CorruptFileError):
        S.from_bytes(bytes(data), Net)


def test_mismatched_models_and_unsaveable_models():
    q = lb.ptq(_trained_like(), "asymmetric", 4)
    data = S.to_bytes(q)
    with pytest.raises(ValueError, match="missing from the file"):
        S.from_bytes(data, lambda: nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(TypeError, match="nn.Module or a function"):
        S.from_bytes(data, "Net")
    with torch.no_grad():
        q.fc.weight[0, 0] += 1e-3           # no longer on its recorded grid
    with pytest.raises(ValueError, match="fc.weight does not hold"):
        S.to_bytes(q)
    hooked = _trained_like()
    lb.attach(hooked, bits=4)
    with pytest.raises(ValueError, match="freeze"):
        S.to_bytes(hooked)
