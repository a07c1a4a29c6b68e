"""SparseAdam on dense gradients whose untouched rows are zero, one class a convention.

``SparseAdam`` follows torch: only the rows with a nonzero gradient change, the step count
is the optimizer's, the bias correction is folded into the step size (eps outside it).
"""

import numpy as np


class SparseAdam:
    """Lazy Adam, as torch.optim.SparseAdam."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m, self.v, self.counts = {}, {}, {}

    def rows(self, g):
        return np.any(g.reshape(g.shape[0], -1) != 0, axis=1)

    def steps(self, key, rows, shape):
        return self.t

    def move(self, m, v, t):
        b1, b2 = self.betas
        size = self.lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return size * m / (np.sqrt(v) + self.eps)

    def update(self, params, grads):
        self.t += 1
        b1, b2 = self.betas
        for key, p in params.items():
            g = grads[key]
            rows = self.rows(g)
            m = self.m.setdefault(key, np.zeros_like(g))
            v = self.v.setdefault(key, np.zeros_like(g))
            m[rows] += (1 - b1) * (g[rows] - m[rows])
            v[rows] += (1 - b2) * (g[rows] ** 2 - v[rows])
            p[rows] -= self.move(m[rows], v[rows], self.steps(key, rows, p.shape))


class SparseAdamDense(SparseAdam):
    """Every row, as dense Adam (eps after the bias correction)."""

    def rows(self, g):
        return np.ones(g.shape[0], dtype=bool)

    def move(self, m, v, t):
        b1, b2 = self.betas
        return self.lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + self.eps)


class SparseAdamAdamEps(SparseAdam):
    """Touched rows, eps after the bias correction."""

    def move(self, m, v, t):
        return SparseAdamDense.move(self, m, v, t)


class SparseAdamRowCounts(SparseAdam):
    """Each row's bias correction counts the steps that touched it."""

    def steps(self, key, rows, shape):
        c = self.counts.setdefault(key, np.zeros(shape[0]))
        c[rows] += 1
        return c[rows].reshape((-1,) + (1,) * (len(shape) - 1))
