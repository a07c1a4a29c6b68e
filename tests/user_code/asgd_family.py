"""ASGD in the update(params, grads) style, one class a convention.

``ASGD`` is torch's algorithm written in NumPy: its step size ``eta`` and averaging weight
``mu`` stay in float64, where torch keeps them in a float32 0-d tensor (``ASGDTorchScalars``
rounds them as torch does). The average of the iterates is kept in ``self.ax``.
"""

import numpy as np


class ASGD:
    """torch's ASGD with eta and mu in float64."""

    def __init__(self, lr=0.01, lambd=1e-4, alpha=0.75, t0=1e6):
        self.lr, self.lambd, self.alpha, self.t0 = lr, lambd, alpha, t0
        self.t = 0
        self.eta_t, self.mu = self.scalar(lr), 1.0
        self.ax = {}

    def scalar(self, x):
        return x

    def decayed(self, t):
        return self.lr / (1 + self.lambd * self.lr * t) ** self.alpha

    def step_size(self):
        return self.eta_t

    def weight(self):
        return self.mu

    def shrink(self, p, eta):
        p *= 1 - self.lambd * eta

    def update(self, params, grads):
        self.t += 1
        eta, mu = self.step_size(), self.weight()
        for key, p in params.items():
            self.shrink(p, eta)
            p -= eta * grads[key]
            ax = self.ax.setdefault(key, np.zeros_like(p))
            if mu != 1:
                ax += (p - ax) * mu
            else:
                ax[...] = p
        self.eta_t = self.scalar(self.decayed(self.t))
        self.mu = self.scalar(1 / max(1, self.t - self.t0))


class ASGDTorchScalars(ASGD):
    """eta and mu rounded to float32, as torch's 0-d tensors are."""

    def scalar(self, x):
        return float(np.float32(x))


class ASGDEtaNow(ASGD):
    """The step size of the current step, eta_t, is used at step t."""

    def step_size(self):
        return self.decayed(self.t)


class ASGDAverageEarly(ASGD):
    """The averaging weight of the current step, 1 / (t - t0), is used at step t."""

    def weight(self):
        return 1 / max(1, self.t - self.t0)


class ASGDNoShrink(ASGD):
    """The weights are not shrunk by (1 - lambd * eta)."""

    def shrink(self, p, eta):
        pass


class ASGDDecayWithoutLr(ASGD):
    """eta_t = lr / (1 + lambd * t) ** alpha."""

    def decayed(self, t):
        return self.lr / (1 + self.lambd * t) ** self.alpha
