"""Gradient accumulation over micro-batches without dividing by their number."""

import numpy as np


class AccumulatedMSE:
    def __init__(self, accumulation_steps=4):
        self.k = accumulation_steps

    def forward(self, y, t):
        self.diff = y - t
        chunks = np.split(self.diff, self.k)
        return sum(np.mean(c**2) for c in chunks)

    def backward(self, dout=1.0):
        return np.concatenate([dout * 2 * c / c.size for c in np.split(self.diff, self.k)])
