"""Adafactor in the update(params, grads) style, one class a convention.

``Adafactor`` follows torch (relative step min(lr, 1/sqrt(t)) times max(eps2, RMS(p)),
beta2_t = 1 - t^beta2_decay, denominators clamped at eps1, update clipped to RMS d).
"""

import numpy as np


def rms(x):
    return np.sqrt(np.mean(x * x))


class Adafactor:
    """torch's Adafactor."""

    def __init__(self, lr=0.01, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0):
        self.lr, self.beta2_decay, self.eps, self.d = lr, beta2_decay, eps, d
        self.t = 0
        self.row, self.col, self.var = {}, {}, {}

    def weight(self):
        return self.t ** self.beta2_decay

    def relative_step(self):
        return min(self.lr, 1 / np.sqrt(self.t))

    def scale(self, p, eps2):
        return max(eps2, rms(p))

    def squared(self, g, eps1):
        return g * g

    def denominator(self, v, mean_row, eps1):
        return v / max(mean_row, eps1), eps1 * eps1

    def clip(self, u):
        return u / max(1.0, rms(u) / self.d)

    def update(self, params, grads):
        self.t += 1
        w = self.weight()
        for key, p in params.items():
            g = grads[key]
            eps1 = np.finfo(p.dtype).eps if self.eps[0] is None else self.eps[0]
            alpha = self.scale(p, self.eps[1]) * self.relative_step()
            g2 = self.squared(g, eps1)
            if g.ndim > 1:
                r = self.row.setdefault(key, np.zeros((g.shape[0], 1)))
                c = self.col.setdefault(key, np.zeros((1, g.shape[1])))
                r += w * (g2.mean(axis=1, keepdims=True) - r)
                c += w * (g2.mean(axis=0, keepdims=True) - c)
                v, floor = self.denominator(r @ c, r.mean(), eps1)
            else:
                v = self.var.setdefault(key, np.zeros_like(g))
                v += w * (g2 - v)
                floor = eps1 * eps1
            u = g / np.sqrt(np.maximum(v, floor))
            p -= alpha * self.clip(u)


class AdafactorNoParameterScale(Adafactor):
    """alpha = rho (Hugging Face scale_parameter=False)."""

    def scale(self, p, eps2):
        return 1.0


class AdafactorPaperStep(Adafactor):
    """rho = min(1e-2, 1/sqrt(t)), lr unused."""

    def relative_step(self):
        return min(1e-2, 1 / np.sqrt(self.t))


class AdafactorEpsAdded(Adafactor):
    """eps1 added to g^2 (the paper), no clamps."""

    def squared(self, g, eps1):
        return g * g + eps1

    def denominator(self, v, mean_row, eps1):
        return v / mean_row, 0.0


class AdafactorNoClipping(Adafactor):
    """No update clipping."""

    def clip(self, u):
        return u


class AdafactorFixedBeta2(Adafactor):
    """beta2 = 0.999 at every step."""

    def weight(self):
        return 1 - 0.999
