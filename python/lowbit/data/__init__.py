"""Datasets that ship with Debian packages (no downloads), and seeded batches over tensors."""
from .batches import ShuffledBatches
from .fashion_mnist import (FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
                            load_fashion_mnist)
from .text import TextCorpus, bits_per_character, load_text_corpus

__all__ = ["load_fashion_mnist", "FASHION_MNIST_CLASSES", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
           "load_text_corpus", "TextCorpus", "bits_per_character", "ShuffledBatches"]
