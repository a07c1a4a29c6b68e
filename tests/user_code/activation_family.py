"""Activations in the "Deep Learning from Scratch" style, one class per convention."""

import numpy as np


class ReluGradOneAtZero:
    """ReLU whose backward lets the gradient through at x = 0 (mask x >= 0)."""

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * (self.x >= 0)


class Softmax:
    """Softmax with the full Jacobian-vector product (torch's convention)."""

    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        return self.y

    def backward(self, dout):
        return self.y * (dout - np.sum(dout * self.y, axis=1, keepdims=True))


class SoftmaxDiagonal(Softmax):
    """Softmax whose backward treats it elementwise, like a sigmoid: s (1 - s) dout."""

    def backward(self, dout):
        return dout * self.y * (1 - self.y)
