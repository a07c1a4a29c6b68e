"""Linear layers in two from-scratch styles (forward(x), backward(dout) returning dx).

The two keep their parameters differently (attributes W, b stored (in, out) versus a params
dict stored (out, in)), so they share no code.
"""

import numpy as np


class Affine:
    """Affine layer in the "Deep Learning from Scratch" style: W stored (in, out), torch's math.

    y = x W + b; dx = dout W^T, dW = x^T dout, db = sum over the batch of dout.
    """

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        dx = dout @ self.W.T
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dx


class Dense:
    """Dense layer in Andrew Ng's convention: parameter gradients averaged over the batch.

    y = x W^T + b with W (out, in); dW = dout^T x / m, db = mean of dout, dx = dout W.
    """

    def __init__(self, n_in, n_out):
        rng = np.random.default_rng(0)
        self.params = {"W": rng.standard_normal((n_out, n_in)) * 0.01, "b": np.zeros(n_out)}
        self.grads = {"W": None, "b": None}
        self.x = None

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dout):
        m = dout.shape[0]
        self.grads["W"] = dout.T @ self.x / m
        self.grads["b"] = np.sum(dout, axis=0) / m
        return dout @ self.params["W"]
