"""Squared error summed over features, averaged over the batch (cost J)."""

import numpy as np


class MSELoss:
    def __init__(self):
        pass

    def forward(self, y, t):
        self.diff = y - t
        return np.sum(self.diff**2) / self.diff.shape[0]

    def backward(self, dout=1.0):
        return dout * 2 * self.diff / self.diff.shape[0]
