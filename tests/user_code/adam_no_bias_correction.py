"""Adam without bias correction."""

import numpy as np


class Adam:
    """Adam over dicts of arrays, update(params, grads) style (numpy-ml / DLFS)."""

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.iter = 0
        self.m = None
        self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        for key in params:
            g = grads[key] + self.weight_decay * params[key]
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * g
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * g**2
            params[key] -= self.lr * self.m[key] / (np.sqrt(self.v[key]) + self.eps)
