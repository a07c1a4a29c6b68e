"""Momentum as an exponential moving average (deeplearning.ai)."""

import numpy as np


class Momentum:
    """update(params, grads) style, v = beta * v + (1 - beta) * g; w -= lr * v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.beta = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] = self.beta * self.v[key] + (1 - self.beta) * grads[key]
            params[key] -= self.lr * self.v[key]
