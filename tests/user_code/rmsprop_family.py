"""RMSprop in the update(params, grads) style, one class a convention.

``RMSprop`` follows torch (eps after the square root); the subclass overrides ``denominator``.
"""

import numpy as np


class RMSprop:
    """RMSprop with torch's convention (eps after the square root), update(params, grads) style.

    h = alpha h + (1 - alpha) g^2; p -= lr g / (sqrt(h) + eps).
    """

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8):
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.h = None

    def denominator(self, key):
        return np.sqrt(self.h[key]) + self.eps

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] = self.alpha * self.h[key] + (1 - self.alpha) * grads[key] ** 2
            params[key] -= self.lr * grads[key] / self.denominator(key)


class RMSpropEpsInsideSqrt(RMSprop):
    """RMSprop with epsilon inside the square root (TensorFlow 1): p -= lr g / sqrt(h + eps)."""

    def denominator(self, key):
        return np.sqrt(self.h[key] + self.eps)
