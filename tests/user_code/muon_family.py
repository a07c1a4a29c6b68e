"""Muon in the update(params, grads) style (float64 Newton-Schulz), one class a convention.

NumPy has no bfloat16: ``Muon`` is torch's algorithm with the iteration in float64.
"""

import numpy as np

A, B, C = 3.4445, -4.775, 2.0315


class Muon:
    """torch's Muon, Newton-Schulz in float64."""

    def __init__(self, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, eps=1e-7,
                 ns_steps=5):
        self.lr, self.wd, self.mu, self.nesterov = lr, weight_decay, momentum, nesterov
        self.eps, self.ns_steps = eps, ns_steps
        self.buf = {}

    def normalise(self, x):
        return x / max(np.linalg.norm(x), self.eps)

    def orthogonalise(self, g):
        tall = g.shape[0] > g.shape[1]
        x = self.normalise(g.T if tall else g)
        for _ in range(self.ns_steps):
            gram = x @ x.T
            x = A * x + (B * gram + C * gram @ gram) @ x
        return x.T if tall else x

    def lr_factor(self, shape):
        return np.sqrt(max(1, shape[0] / shape[1]))

    def update(self, params, grads):
        for key, p in params.items():
            g = grads[key]
            buf = self.buf.setdefault(key, np.zeros_like(g))
            buf += (1 - self.mu) * (g - buf)
            u = g + self.mu * (buf - g) if self.nesterov else buf
            p *= 1 - self.lr * self.wd
            p -= self.lr * self.lr_factor(p.shape) * self.orthogonalise(u)


class MuonNoAdjust(Muon):
    """No shape factor on the learning rate."""

    def lr_factor(self, shape):
        return 1.0


class MuonMatchRms(Muon):
    """Moonshot's 0.2 * sqrt(max(A, B))."""

    def lr_factor(self, shape):
        return 0.2 * np.sqrt(max(shape))


class MuonNormPlusEps(Muon):
    """X / (||X|| + eps)."""

    def normalise(self, x):
        return x / (np.linalg.norm(x) + self.eps)
