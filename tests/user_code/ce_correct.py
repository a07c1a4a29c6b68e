"""Softmax cross-entropy with torch's label smoothing (eps/K on every class), mean."""

import numpy as np


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxWithLoss:
    def __init__(self, label_smoothing=0.0):
        self.eps = label_smoothing

    def forward(self, x, t):
        n, k = x.shape
        self.y = softmax(x)
        self.q = np.full((n, k), self.eps / k)
        self.q[np.arange(n), t] += 1 - self.eps
        return -np.sum(self.q * np.log(self.y)) / n

    def backward(self, dout=1.0):
        return dout * (self.y - self.q) / self.y.shape[0]
