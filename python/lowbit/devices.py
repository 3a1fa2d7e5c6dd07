"""Where lowbit's trainings run: one check of a device string, and the small moves the
training loops share.

The native kernels are CPU; on any other device every lowbit op runs its registered
pure-PyTorch reference (lowbit.ops), so nothing here changes which code quantizes: moving
the model and the batches is enough. Accepted devices: "cpu", "cuda", "cuda:N", and
"meta" (shapes only, for tests).
"""
from typing import Optional, Union

import torch
from torch import nn

DeviceLike = Union[None, str, torch.device]


class DeviceUnavailableError(ValueError):
    """A well-formed device this machine does not have (a ValueError, so the command line
    reports it as one line like any other mistake in what the user typed)."""


def check_device(device: DeviceLike, option: str = "device", allow_meta: bool = True) -> torch.device:
    """The torch.device for "cpu", "cuda", "cuda:N" or "meta" (None: cpu), or a one-line
    error: ValueError for a malformed or unsupported name (and for "meta" when
    allow_meta=False), DeviceUnavailableError for a CUDA device this machine lacks:
    "cuda requested but torch.cuda.is_available() is False"."""
    accepted = "cpu, cuda, cuda:N or meta" if allow_meta else "cpu, cuda or cuda:N"
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except RuntimeError:
            raise ValueError(f"{option} must be {accepted}, got {device!r}") from None
    else:
        raise TypeError(f"{option} must be a string ({accepted}) or a torch.device, got {type(device).__name__}")
    if dev.type not in (("cpu", "cuda", "meta") if allow_meta else ("cpu", "cuda")):
        raise ValueError(f"{option} must be {accepted}, got {str(dev)!r}")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise ValueError(f"{option} must be {accepted}, got {str(dev)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError("cuda requested but torch.cuda.is_available() is False")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceUnavailableError(f"{dev} requested but torch.cuda.device_count() is {count} "
                               f"(valid: cuda:0 to cuda:{count - 1})")
    return dev


def device_name(device: DeviceLike, option: str = "device", allow_meta: bool = True) -> str:
    """The checked device as the string a settings file or a job stores ("cuda:1")."""
    return str(check_device(device, option, allow_meta))


def module_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (cpu for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def move_optimizer_state(optimizer: Optional[torch.optim.Optimizer], device: torch.device) -> None:
    """Move an optimizer's state tensors (Adam's moments, momentum buffers) to device, so a
    user's optimizer follows its model there."""
    if optimizer is None:
        return
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.device != device and v.dim() > 0:
                state[k] = v.to(device)
