"""Small convolutional networks for 28x28 single-channel images (Fashion-MNIST)."""
import torch
from torch import nn

from ._checks import positive_int


class LeNet5(nn.Module):
    """LeNet-5 style CNN: two conv/pool stages then three fully connected layers.

    The first convolution pads by 2 so a 28x28 input behaves like LeNet's original 32x32:
    28 -conv5 pad2-> 28 -pool-> 14 -conv5-> 10 -pool-> 5, hence 16 * 5 * 5 = 400 features.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Flattening here (not inside `classifier`) keeps classifier.0 the first Linear layer.
        return self.classifier(torch.flatten(self.features(x), 1))


def _vgg_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + BatchNorm + ReLU, then a 2x2 max pool that halves the image."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.MaxPool2d(2),
    )


class SmallVGG(nn.Module):
    """VGG-style CNN with three blocks of widths width, 2*width, 4*width.

    Spatial size goes 28 -> 14 -> 7 -> 3 (the last pool floors 7 / 2), so the classifier
    sees 4 * width * 3 * 3 features.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        positive_int("width", width)
        self.features = nn.Sequential(
            _vgg_block(in_channels, width),
            _vgg_block(width, 2 * width),
            _vgg_block(2 * width, 4 * width),
        )
        self.classifier = nn.Sequential(
            nn.Linear(4 * width * 3 * 3, 256), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
