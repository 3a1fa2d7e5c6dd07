"""Feed-forward DNN (multilayer perceptron) for flattened images.

The FFDNN of Shin, Boo and Sung (2017), "Fixed-point optimization of deep neural networks
with adaptive step size retraining", studied both with and without batch normalization.
"""
from collections import OrderedDict

import torch
from torch import nn

from ..inference.fuse import passthrough
from ._checks import positive_int


class FFDNN(nn.Module):
    """Flatten -> `depth` x (Linear(width) -> [BatchNorm1d] -> ReLU) -> Linear(num_classes).

    Layers are named so that per-layer quantization reports read well:
    ``hidden.fc1``, ``hidden.bn1``, ``hidden.relu1``, ..., ``output``.
    """

    def __init__(self, in_features: int = 784, width: int = 256, depth: int = 2,
                 num_classes: int = 10, batch_norm: bool = False):
        super().__init__()
        positive_int("in_features", in_features)
        positive_int("width", width)
        positive_int("depth", depth)
        positive_int("num_classes", num_classes)
        self.in_features = in_features
        self.batch_norm = bool(batch_norm)

        layers = OrderedDict()
        fan_in = in_features
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Linear(fan_in, width)
            if self.batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm1d(width)
            layers[f"relu{i}"] = nn.ReLU()
            fan_in = width
        self.hidden = nn.Sequential(layers)
        self.output = nn.Linear(fan_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Accept images ([N, 1, 28, 28]) as well as flat vectors ([N, 784]).
        x = _check_features(torch.flatten(x, 1), self.in_features)
        return self.output(self.hidden(x))


@passthrough
def _check_features(x: torch.Tensor, in_features: int) -> torch.Tensor:
    if x.shape[1] != in_features:
        raise ValueError(f"FFDNN expects {in_features} features per example, got {x.shape[1]}")
    return x


# torch.fx records the check as one call instead of failing on its data-dependent branch.
torch.fx.wrap("_check_features")
