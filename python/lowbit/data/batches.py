"""Seeded shuffled mini-batches over in-memory tensors, for `lowbit.retrain` and the study."""
import torch


class ShuffledBatches:
    """(x, y) batches in a new seeded order every time it is iterated (one epoch)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(len(self.y), generator=self.generator)
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.x[idx], self.y[idx]

    def __len__(self) -> int:
        return (len(self.y) + self.batch_size - 1) // self.batch_size
