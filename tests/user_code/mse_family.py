"""Squared-error losses (forward(y, t), backward(dout=1.0)), one class a convention.

``MSELoss`` follows torch (mean over every element); the plain variants override only
``normaliser``, the number the summed squared error is divided by.
"""

import numpy as np


class MSELoss:
    """Mean squared error averaged over every element, as torch's MSELoss.

    loss = sum (y - t)^2 / N, dloss/dy = 2 (y - t) / N with N = normaliser() = (y - t).size.
    """

    def __init__(self):
        pass

    def normaliser(self):
        return self.diff.size

    def forward(self, y, t):
        self.diff = y - t
        return np.sum(self.diff**2) / self.normaliser()

    def backward(self, dout=1.0):
        return dout * 2 * self.diff / self.normaliser()


class MSESum(MSELoss):
    """Squared error summed over every element (N = 1)."""

    def normaliser(self):
        return 1


class SumSquaredError(MSELoss):
    """Half the sum of squared errors (Deep Learning from Scratch, sum_squared_error).

    loss = 0.5 sum (y - t)^2 (N = 2), dloss/dy = y - t.
    """

    def normaliser(self):
        return 2


class MSEMeanOverBatch(MSELoss):
    """Squared error summed over features, averaged over the batch (cost J, N = batch size)."""

    def normaliser(self):
        return self.diff.shape[0]


class AccumulatedMSE(MSELoss):
    """Gradient accumulation over micro-batches without dividing by their number.

    loss = sum over the k chunks of each chunk's mean squared error.
    """

    def __init__(self, accumulation_steps=4):
        self.k = accumulation_steps

    def forward(self, y, t):
        self.diff = y - t
        chunks = np.split(self.diff, self.k)
        return sum(np.mean(c**2) for c in chunks)

    def backward(self, dout=1.0):
        return np.concatenate([dout * 2 * c / c.size for c in np.split(self.diff, self.k)])
