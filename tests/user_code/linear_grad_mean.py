"""Dense layer in Andrew Ng's convention: parameter gradients averaged over the batch."""

import numpy as np


class Dense:
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
