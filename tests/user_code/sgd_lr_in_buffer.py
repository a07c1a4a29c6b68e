"""Momentum SGD with the learning rate inside the velocity (CS231n)."""

import numpy as np


class Momentum:
    """update(params, grads) style, v = mu * v - lr * g; w += v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]
