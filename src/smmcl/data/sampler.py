"""Resumable batch order: iteration k of a run always draws the same samples with the same augmentation seeds."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches for iterations [start, total) of an iteration-based run.

    Epoch e is a permutation drawn from (seed, e); incomplete last batches are dropped, as in the
    reference. Each element is (dataset index, augmentation seed), the seed derived from
    (seed, epoch, position), so a run resumed at iteration k continues exactly where it stopped.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, start: int, total: int):
        if batch_size > num_samples:
            raise ValueError(f"batch size {batch_size} is larger than the training set ({num_samples} samples)")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start = start
        self.total = total
        self.iters_per_epoch = num_samples // batch_size

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, perm = -1, None
        for it in range(self.start, self.total):
            e, pos = divmod(it, self.iters_per_epoch)
            if e != epoch:
                epoch, perm = e, self._permutation(e)
            first = pos * self.batch_size
            yield [
                (int(perm[first + k]), int(np.random.SeedSequence([self.seed, e, first + k]).generate_state(1)[0]))
                for k in range(self.batch_size)
            ]
