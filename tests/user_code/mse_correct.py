"""Mean squared error averaged over every element, as torch's MSELoss."""

import numpy as np


class MSELoss:
    def __init__(self):
        pass

    def forward(self, y, t):
        self.diff = y - t
        return np.mean(self.diff**2)

    def backward(self, dout=1.0):
        return dout * 2 * self.diff / self.diff.size
