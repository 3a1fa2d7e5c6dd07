"""The networks of papers 000/001's memorization tests: FCDNNs, CNN models A-F
(paper 001, Table 1) and a one-layer LSTM, all with a 2-way softmax output."""
from collections import OrderedDict
from typing import Dict, Sequence

import torch
from torch import nn

from ..models._checks import positive_int

# Table 1 of paper 001: model -> (kernel size, channels of the three blocks, convs per block).
# Each block ends with a 3x3 max pool of stride 2; the last feature map goes straight to
# the 2-way output layer.
CNN_MODELS = {
    "A": (3, (4, 8, 16), 1),
    "B": (5, (4, 8, 16), 1),
    "C": (5, (4, 8, 16), 2),
    "D": (3, (4, 8, 16), 2),
    "E": (3, (8, 16, 32), 2),
    "F": (3, (8, 16, 32), 3),
}
# Table 1's parameter counts (total, convolution only) for 32 x 32 inputs: tests check ours.
CNN_PAPER_PARAMS = {"A": (2018, 1504), "B": (4642, 4128), "C": (13070, 12556),
                    "D": (5070, 4556), "E": (19066, 18040), "F": (31218, 30192)}


def _he_init(module: nn.Module) -> None:
    """He (Kaiming) normal weights and zero biases for every Linear / Conv2d: the
    initialization paper 001 found best for FCDNNs."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class FCDNN(nn.Module):
    """`depth` hidden layers of `width` ReLU units on n_in binary inputs, then a 2-way
    output. n_in defaults to the width (paper 001, section 4.1)."""

    def __init__(self, width: int, depth: int, n_in: int = None, num_classes: int = 2):
        super().__init__()
        positive_int("width", width)
        positive_int("depth", depth)
        n_in = width if n_in is None else positive_int("n_in", n_in)
        positive_int("num_classes", num_classes)
        self.n_in, self.width, self.depth = n_in, width, depth
        layers = OrderedDict()
        fan_in = n_in
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Linear(fan_in, width)
            layers[f"relu{i}"] = nn.ReLU()
            fan_in = width
        self.hidden = nn.Sequential(layers)
        self.output = nn.Linear(fan_in, num_classes)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(x))


class MemorizationCNN(nn.Module):
    """Three blocks of `convs_per_block` same-padded k x k convolutions + ReLU, each block
    closed by a 3x3 / stride 2 max pool (32 -> 16 -> 8 -> 4), then one fully connected
    2-way output on the flattened last feature map."""

    def __init__(self, kernel: int = 3, channels: Sequence[int] = (4, 8, 16),
                 convs_per_block: int = 1, input_size: int = 32, num_classes: int = 2):
        super().__init__()
        positive_int("kernel", kernel)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), got {kernel}")
        channels = tuple(channels)
        if not channels:
            raise ValueError("channels must list at least one block's channel count")
        for c in channels:
            positive_int("channels[i]", c)
        positive_int("convs_per_block", convs_per_block)
        positive_int("input_size", input_size)
        positive_int("num_classes", num_classes)
        self.input_size = input_size
        layers = OrderedDict()
        c_in, size = 1, input_size
        for b, c_out in enumerate(channels, 1):
            for r in range(1, convs_per_block + 1):
                layers[f"conv{b}_{r}"] = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
                layers[f"relu{b}_{r}"] = nn.ReLU()
                c_in = c_out
            layers[f"pool{b}"] = nn.MaxPool2d(3, stride=2, padding=1)
            size = (size - 1) // 2 + 1
        self.features = nn.Sequential(layers)
        self.output = nn.Linear(c_in * size * size, num_classes)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.flatten(self.features(x), 1))


def cnn_model(name: str, input_size: int = 32) -> MemorizationCNN:
    """CNN model 'A'..'F' of paper 001's Table 1."""
    key = name.upper() if isinstance(name, str) else name
    if key not in CNN_MODELS:
        raise ValueError(f"name must be one of {sorted(CNN_MODELS)} (paper 001, Table 1), got {name!r}")
    kernel, channels, reps = CNN_MODELS[key]
    return MemorizationCNN(kernel, channels, reps, input_size)


class MemorizationLSTM(nn.Module):
    """One LSTM layer over n_seq steps of n_in bits; the label is read from the last step
    only (paper 001, section 4.3). One bias per gate, as in the paper's count (LSTM(32) on
    32 inputs: 8,386 parameters): torch's second, redundant bias is frozen at zero."""

    def __init__(self, hidden: int = 32, n_in: int = 32, num_classes: int = 2):
        super().__init__()
        positive_int("hidden", hidden)
        positive_int("n_in", n_in)
        positive_int("num_classes", num_classes)
        self.n_in, self.hidden = n_in, hidden
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        with torch.no_grad():
            self.lstm.bias_hh_l0.zero_()
        self.lstm.bias_hh_l0.requires_grad_(False)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.output(out[:, -1])


def parameter_split(model: nn.Module) -> Dict[str, int]:
    """Trainable parameters by layer kind: 'conv', 'fc' (Linear, the output included),
    'rnn'. Paper 001 subtracts the 'fc' part's capacity from a CNN's."""
    split = {"conv": 0, "fc": 0, "rnn": 0}
    for m in model.modules():
        kind = ("conv" if isinstance(m, nn.modules.conv._ConvNd) else
                "fc" if isinstance(m, nn.Linear) else
                "rnn" if isinstance(m, nn.RNNBase) else None)
        if kind:
            split[kind] += sum(p.numel() for p in m.parameters(recurse=False) if p.requires_grad)
    return split


def model_kind(model: nn.Module) -> str:
    """'rnn' if the model has a recurrent layer, else 'conv' if it has a convolution,
    else 'fc': which of the paper's families it belongs to."""
    split = parameter_split(model)
    return "rnn" if split["rnn"] else "conv" if split["conv"] else "fc"
