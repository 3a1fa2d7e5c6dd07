"""Datasets that ship with Debian packages (no downloads)."""
from .fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

__all__ = ["load_fashion_mnist", "FASHION_MNIST_CLASSES"]
