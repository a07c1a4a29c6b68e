"""Softmax cross-entropy with label smoothing (forward(x, t), backward(dout=1.0)).

``SoftmaxWithLoss`` follows torch (eps / K on every class, mean over the batch); the
subclasses override only ``smoothed_targets`` or ``normaliser``.
"""

import numpy as np


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxWithLoss:
    """Softmax cross-entropy with torch's label smoothing (eps/K on every class), mean.

    q = (1 - eps) onehot(t) + eps / K; loss = -sum q log softmax(x) / n; dx = (y - q) / n.
    """

    def __init__(self, label_smoothing=0.0):
        self.eps = label_smoothing

    def smoothed_targets(self, n, k, t):
        q = np.full((n, k), self.eps / k)
        q[np.arange(n), t] += 1 - self.eps
        return q

    def normaliser(self, n):
        return n

    def forward(self, x, t):
        n, k = x.shape
        self.y = softmax(x)
        self.q = self.smoothed_targets(n, k, t)
        return -np.sum(self.q * np.log(self.y)) / self.normaliser(n)

    def backward(self, dout=1.0):
        return dout * (self.y - self.q) / self.normaliser(self.y.shape[0])


class SoftmaxWithLossKMinus1(SoftmaxWithLoss):
    """Softmax cross-entropy whose smoothing gives eps/(K-1) to the wrong classes, 1 - eps to
    the right one."""

    def smoothed_targets(self, n, k, t):
        q = np.full((n, k), self.eps / (k - 1))
        q[np.arange(n), t] = 1 - self.eps
        return q


class SoftmaxWithLossSum(SoftmaxWithLoss):
    """Softmax cross-entropy summed over the batch (not averaged)."""

    def normaliser(self, n):
        return 1
