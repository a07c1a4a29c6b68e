"""L-BFGS in the update(params, grads) style: one iteration per gradient, one class a convention.

``LBFGS`` follows torch (curvature check y.s > 1e-10, two-loop recursion newest pair first,
H_0 = (y.s / y.y) I, first step min(1, 1/||g||_1) * lr, oldest pair dropped when full).
"""

import numpy as np


class LBFGS:
    """torch's L-BFGS iteration, without line search."""

    def __init__(self, lr=1.0, history_size=100, tolerance_change=1e-9):
        self.lr, self.m, self.tol = lr, history_size, tolerance_change
        self.s, self.y, self.rho = [], [], []
        self.n, self.h = 0, 1.0
        self.prev_g = self.d = self.t = None

    def accept(self, ys):
        return ys > 1e-10

    def scale(self, ys, y):
        return ys / y.dot(y)

    def first_step(self, g):
        return min(1.0, 1.0 / np.abs(g).sum()) * self.lr

    def store(self, s, y, ys):
        if len(self.s) == self.m:
            self.s.pop(0)
            self.y.pop(0)
            self.rho.pop(0)
        self.s.append(s)
        self.y.append(y)
        self.rho.append(1.0 / ys)

    def direction(self, g):
        q = -g
        al = [0.0] * len(self.s)
        for i in reversed(range(len(self.s))):
            al[i] = self.s[i].dot(q) * self.rho[i]
            q = q - al[i] * self.y[i]
        r = q * self.h
        for i in range(len(self.s)):
            be = self.y[i].dot(r) * self.rho[i]
            r = r + (al[i] - be) * self.s[i]
        return r

    def update(self, params, grads):
        g = np.concatenate([grads[k].ravel() for k in params])
        self.n += 1
        if self.n == 1:
            d = -g
        else:
            y = g - self.prev_g
            s = self.d * self.t
            ys = y.dot(s)
            if self.accept(ys):
                self.store(s, y, ys)
                self.h = self.scale(ys, y)
            d = self.direction(g)
        self.prev_g, self.d = g, d
        self.t = self.first_step(g) if self.n == 1 else self.lr
        if g.dot(d) > -self.tol:
            return
        offset = 0
        for p in params.values():
            p += self.t * d[offset:offset + p.size].reshape(p.shape)
            offset += p.size


class LBFGSNoCurvatureCheck(LBFGS):
    """Every pair is stored."""

    def accept(self, ys):
        return True


class LBFGSReversedLoops(LBFGS):
    """The two loops in the opposite order."""

    def direction(self, g):
        q = -g
        al = [0.0] * len(self.s)
        for i in range(len(self.s)):
            al[i] = self.s[i].dot(q) * self.rho[i]
            q = q - al[i] * self.y[i]
        r = q * self.h
        for i in reversed(range(len(self.s))):
            be = self.y[i].dot(r) * self.rho[i]
            r = r + (al[i] - be) * self.s[i]
        return r


class LBFGSIdentityH0(LBFGS):
    """H_0 = I."""

    def scale(self, ys, y):
        return 1.0


class LBFGSFirstStepLr(LBFGS):
    """The first step length is lr."""

    def first_step(self, g):
        return self.lr


class LBFGSFrozenHistory(LBFGS):
    """New pairs are dropped once the history is full."""

    def accept(self, ys):
        return ys > 1e-10 and len(self.s) < self.m
