"""Rprop in the update(params, grads) style, one class a convention.

``Rprop`` follows torch (iRprop-: no move and a stored 0 after a sign change); the subclass
overrides ``after_sign_change``. Hyperparameters under the names of Riedmiller's paper.
"""

import numpy as np


class Rprop:
    """iRprop-, as torch.optim.Rprop."""

    def __init__(self, lr=0.01, eta_minus=0.5, eta_plus=1.2, delta_min=1e-6, delta_max=50.0):
        self.lr = lr
        self.eta_minus, self.eta_plus = eta_minus, eta_plus
        self.delta_min, self.delta_max = delta_min, delta_max
        self.prev, self.delta = {}, {}

    def after_sign_change(self, g, flipped):
        g[flipped] = 0.0
        return g

    def update(self, params, grads):
        for key in params:
            g = grads[key].copy()
            if key not in self.prev:
                self.prev[key] = np.zeros_like(g)
                self.delta[key] = np.full_like(g, self.lr)
            prod = g * self.prev[key]
            factor = np.where(prod > 0, self.eta_plus, np.where(prod < 0, self.eta_minus, 1.0))
            self.delta[key] = np.clip(self.delta[key] * factor, self.delta_min, self.delta_max)
            g = self.after_sign_change(g, prod < 0)
            params[key] -= np.sign(g) * self.delta[key]
            self.prev[key] = g


class RpropMinus(Rprop):
    """Rprop-: the element moves even after a sign change, and its gradient is kept."""

    def after_sign_change(self, g, flipped):
        return g


class RpropPlus(Rprop):
    """Rprop+: after a sign change the element's previous move is undone (backtracking)."""

    def update(self, params, grads):
        self.last = getattr(self, "last", {})
        for key in params:
            g = grads[key].copy()
            if key not in self.prev:
                self.prev[key] = np.zeros_like(g)
                self.delta[key] = np.full_like(g, self.lr)
                self.last[key] = np.zeros_like(g)
            prod = g * self.prev[key]
            factor = np.where(prod > 0, self.eta_plus, np.where(prod < 0, self.eta_minus, 1.0))
            self.delta[key] = np.clip(self.delta[key] * factor, self.delta_min, self.delta_max)
            flipped = prod < 0
            move = np.where(flipped, -self.last[key], -np.sign(g) * self.delta[key])
            params[key] += move
            self.last[key] = np.where(flipped, 0.0, move)
            self.prev[key] = np.where(flipped, 0.0, g)
