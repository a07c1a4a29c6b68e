"""Nesterov momentum in the Sutskever/Bengio form (CS231n, Keras)."""

import numpy as np


class Nesterov:
    """update(params, grads) style: v_prev = v; v = mu v - lr g; w += -mu v_prev + (1 + mu) v."""

    def __init__(self, lr=0.01, momentum=0.9, nesterov=True):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            v_prev = self.v[key].copy()
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += -self.momentum * v_prev + (1 + self.momentum) * self.v[key]
