"""Save a quantized model with its weights packed at their bit width, and load it back.

File layout (all integers little-endian):

    magic      8 bytes   b"LOWBITQ\\n"
    version    u32       FORMAT_VERSION
    header     u64 length, then that many bytes of UTF-8 JSON
    payload    u64 length, then the tensor bytes the header points into
    checksum   32 bytes  SHA-256 of everything before it

The JSON header lists every entry of the model's state_dict in order. A weight recorded
by `ptq` / `freeze` (`lowbit.recorded_qparams`) is stored as its codes packed at `bits`
bits plus its QParams tensors (step / scale + zero point / max level / codebook); every
other tensor (unquantized weights, BatchNorm statistics, ...) is stored raw. Loading
unpacks and dequantizes, which gives back the quantized values bit for bit, so the
loaded model computes exactly the same outputs.

The file is written to a temporary file in the same folder, flushed to disk and
renamed over the target (`os.replace`), so a failure never leaves a half-written file.
A wrong magic, an unknown version, a length that runs past the end, a truncated file or
a checksum mismatch raises `CorruptFileError` (a ValueError) saying which.
"""
import hashlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Union

import torch
from torch import nn

from . import ops
from .files import write_bytes_atomically
from .hooks import _STATE_ATTR
from .qrecord import record_qparams, recorded_qparams
from .quant import QParams, dequantize, fake_quantize, quantize

MAGIC = b"LOWBITQ\n"
FORMAT_VERSION = 1
_CHECKSUM = 32
_PREFIX = len(MAGIC) + 4 + 8          # magic, version, header length
PathLike = Union[str, os.PathLike]
ModelOrFactory = Union[nn.Module, Callable[[], nn.Module]]


class CorruptFileError(ValueError):
    """The file is not a complete, intact lowbit quantized model."""


# ---- tensors <-> bytes --------------------------------------------------------------------

def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _raw_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _from_raw(data: bytes, dtype: str, shape: List[int]) -> torch.Tensor:
    dt = getattr(torch, str(dtype), None)
    if not isinstance(dt, torch.dtype):
        raise CorruptFileError(f"unknown dtype {dtype!r} in the file header")
    n = 1
    for s in shape:
        n *= int(s)
    if n * torch.empty(0, dtype=dt).element_size() != len(data):
        raise CorruptFileError(f"a {dtype} tensor of shape {list(shape)} cannot take {len(data)} bytes")
    if not data:
        return torch.empty(shape, dtype=dt)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dt).reshape(shape).clone()


class _Payload:
    """Appends byte blocks and describes where each one went."""

    def __init__(self):
        self.blocks: List[bytes] = []
        self.size = 0

    def add(self, t: torch.Tensor) -> Dict:
        data = _raw_bytes(t)
        entry = {"dtype": _dtype_name(t), "shape": list(t.shape), "offset": self.size,
                 "nbytes": len(data)}
        self.blocks.append(data)
        self.size += len(data)
        return entry


# ---- encoding ----------------------------------------------------------------------------

def _check_on_grid(name: str, value: torch.Tensor, qp: QParams) -> None:
    if not torch.equal(fake_quantize(value, qp), value):
        raise ValueError(f"{name} does not hold the values of its recorded {qp.bits}-bit {qp.scheme} "
                         "quantizer (was it changed after ptq / freeze?); re-quantize it or "
                         "remove its record before saving")


def to_bytes(model: nn.Module, metadata: Dict = None, pack: bool = True) -> bytes:
    """The file `save_quantized` writes, as bytes in memory (e.g. to measure or compress).
    pack=False stores every tensor raw, quantized or not (how paper 004 stores its
    quantized models before compressing them; loading then restores no QParams)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _STATE_ATTR, None) is not None:
        raise ValueError("model has lowbit training hooks; call lowbit.freeze(model) first")
    recorded = {f"{m}.{p}" if m else p: qp for (m, p), qp in recorded_qparams(model).items()} if pack else {}
    payload, entries = _Payload(), []
    for name, value in model.state_dict().items():
        qp = recorded.get(name)
        if qp is None:
            entries.append({"name": name, "kind": "raw", **payload.add(value)})
            continue
        value = value.detach().to("cpu")
        qp = qp.to("cpu")
        _check_on_grid(name, value, qp)
        codes = quantize(value, qp)
        entry = {"name": name, "kind": "packed", "scheme": qp.scheme, "bits": qp.bits,
                 "dtype": _dtype_name(value), "shape": list(value.shape),
                 "codes": payload.add(ops.pack(codes, qp.bits)), "p0": payload.add(qp.p0)}
        if qp.p1 is not None:
            entry["p1"] = payload.add(qp.p1)
        entries.append(entry)
    header = json.dumps({"format": "lowbit-quantized", "version": FORMAT_VERSION,
                         "byteorder": "little", "tensors": entries,
                         "metadata": metadata or {}}).encode("utf-8")
    body = (MAGIC + struct.pack("<IQ", FORMAT_VERSION, len(header)) + header
            + struct.pack("<Q", payload.size) + b"".join(payload.blocks))
    return body + hashlib.sha256(body).digest()


# ---- decoding ----------------------------------------------------------------------------

def _parse(data: bytes) -> Tuple[Dict, memoryview]:
    """(header, payload) of a file, after checking its framing and checksum."""
    view = memoryview(data)
    if len(data) < len(MAGIC) or bytes(view[:len(MAGIC)]) != MAGIC:
        raise CorruptFileError("not a lowbit quantized model file (bad magic bytes)")
    if len(data) < _PREFIX:
        raise CorruptFileError(f"truncated file: {len(data)} bytes, shorter than its fixed header")
    version, header_len = struct.unpack_from("<IQ", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise CorruptFileError(f"unsupported format version {version} (this lowbit reads {FORMAT_VERSION})")
    payload_at = _PREFIX + header_len + 8
    if len(data) < payload_at:
        raise CorruptFileError(f"truncated file: the header says {header_len} header bytes, "
                               f"the file has {len(data)} bytes in all")
    (payload_len,) = struct.unpack_from("<Q", data, payload_at - 8)
    expected = payload_at + payload_len + _CHECKSUM
    if len(data) != expected:
        raise CorruptFileError(f"truncated or padded file: expected {expected} bytes from its "
                               f"length fields, got {len(data)}")
    if hashlib.sha256(view[:-_CHECKSUM]).digest() != bytes(view[-_CHECKSUM:]):
        raise CorruptFileError("checksum mismatch: the file is corrupt")
    try:
        header = json.loads(bytes(view[_PREFIX:_PREFIX + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"unreadable header: {exc}") from None
    if sys.byteorder != header.get("byteorder", "little"):
        raise CorruptFileError(f"file is {header.get('byteorder')}-endian, this machine is {sys.byteorder}")
    return header, view[payload_at:payload_at + payload_len]


def _block(payload: memoryview, entry: Dict) -> torch.Tensor:
    start, n = int(entry["offset"]), int(entry["nbytes"])
    if start < 0 or n < 0 or start + n > len(payload):
        raise CorruptFileError("a tensor points outside the payload")
    return _from_raw(bytes(payload[start:start + n]), entry["dtype"], entry["shape"])


def _decode(entry: Dict, payload: memoryview) -> Tuple[torch.Tensor, Union[QParams, None]]:
    if entry["kind"] == "raw":
        return _block(payload, entry), None
    p1 = _block(payload, entry["p1"]) if "p1" in entry else None
    qp = QParams(entry["scheme"], int(entry["bits"]), _block(payload, entry["p0"]), p1)
    shape = entry["shape"]
    n = 1
    for s in shape:
        n *= s
    codes = ops.unpack(_block(payload, entry["codes"]), qp.bits, n, qp.signed).reshape(shape)
    return dequantize(codes, qp).to(getattr(torch, entry["dtype"])), qp


def from_bytes(data: bytes, model: ModelOrFactory) -> nn.Module:
    """Load the bytes of `to_bytes` into `model` (see `load_quantized`)."""
    header, payload = _parse(bytes(data))
    if callable(model) and not isinstance(model, nn.Module):
        model = model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a function returning one, got {type(model).__name__}")
    entries = header.get("tensors")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise CorruptFileError("the header has no valid tensor list")
    own = model.state_dict()
    names = [e["name"] for e in entries]
    missing, unexpected = sorted(set(own) - set(names)), sorted(set(names) - set(own))
    if missing or unexpected:
        raise ValueError(f"model does not match the file: missing from the file {missing[:5]}, "
                         f"not in the model {unexpected[:5]}; build the same architecture")
    state, records = {}, []
    for entry in entries:
        try:
            value, qp = _decode(entry, payload)
        except (KeyError, TypeError) as exc:
            raise CorruptFileError(f"malformed header entry for {entry['name']!r}: {exc!r}") from None
        if tuple(value.shape) != tuple(own[entry["name"]].shape):
            raise ValueError(f"{entry['name']}: the file has shape {tuple(value.shape)}, the model "
                             f"{tuple(own[entry['name']].shape)}")
        state[entry["name"]] = value
        if qp is not None:
            records.append((entry["name"], qp))
    model.load_state_dict(state)
    modules = dict(model.named_modules())
    for name, qp in records:
        module_name, _, param = name.rpartition(".")
        record_qparams(modules[module_name], param, qp)
    model.lowbit_metadata = header.get("metadata", {})
    return model


# ---- files -------------------------------------------------------------------------------

def save_quantized(model: nn.Module, path: PathLike, metadata: Dict = None) -> int:
    """Write `model` to `path` with its quantized weights packed; returns the file's size
    in bytes. `metadata` (a JSON-able dict) is stored in the header and comes back as
    `model.lowbit_metadata` after loading. Atomic: the old file, if any, survives a failure."""
    data = to_bytes(model, metadata)
    write_bytes_atomically(path, data)
    return len(data)


def load_quantized(path: PathLike, model: ModelOrFactory) -> nn.Module:
    """Load a file written by `save_quantized` into `model`, a float model of the same
    architecture (or a function that builds one), and return it. Quantized weights get
    their exact quantized values and their QParams recorded again (`recorded_qparams`)."""
    return from_bytes(Path(path).read_bytes(), model)


def read_metadata(path: PathLike) -> Dict:
    """The `metadata` dict a file was saved with, without loading its tensors (the file is
    checked as `load_quantized` checks it)."""
    header, _ = _parse(Path(path).read_bytes())
    meta = header.get("metadata", {})
    return meta if isinstance(meta, dict) else {}
