"""Adam and AdamW in the update(params, grads) style (numpy-ml / DLFS), one class a convention.

``Adam`` follows torch (L2 weight decay added to the gradient, bias-corrected moments, eps
outside the square root); each subclass overrides only the piece its convention changes:
``decayed_grad`` (how weight decay enters), ``corrected`` (bias correction), ``step_size`` or
``denominator``.
"""

import numpy as np


class Adam:
    """Adam with torch's conventions (L2 weight decay, eps outside the corrected root).

    p -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t).
    """

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.iter = 0
        self.m = None
        self.v = None

    def decayed_grad(self, params, grads, key):
        """L2: the decay is added to the gradient (coupled)."""
        return grads[key] + self.weight_decay * params[key]

    def corrected(self, key):
        """Bias-corrected first and second moments."""
        return self.m[key] / (1 - self.beta1**self.iter), self.v[key] / (1 - self.beta2**self.iter)

    def step_size(self):
        return self.lr

    def denominator(self, v_hat):
        return np.sqrt(v_hat) + self.eps

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        for key in params:
            g = self.decayed_grad(params, grads, key)
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * g
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * g**2
            m_hat, v_hat = self.corrected(key)
            params[key] -= self.step_size() * m_hat / self.denominator(v_hat)


class AdamEpsInsideSqrt(Adam):
    """Adam with epsilon inside the square root: p -= lr * m_hat / sqrt(v_hat + eps)."""

    def denominator(self, v_hat):
        return np.sqrt(v_hat + self.eps)


class AdamNoBiasCorrection(Adam):
    """Adam without bias correction: p -= lr * m / (sqrt(v) + eps)."""

    def corrected(self, key):
        return self.m[key], self.v[key]


class AdamTfEpsHat(AdamNoBiasCorrection):
    """Adam in TensorFlow's eps-hat form (bias correction folded into the step size).

    p -= lr_t * m / (sqrt(v) + eps), lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
    """

    def step_size(self):
        return self.lr * np.sqrt(1 - self.beta2**self.iter) / (1 - self.beta1**self.iter)


class AdamDecoupledWd(Adam):
    """Adam whose weight decay is decoupled (AdamW style) though asked for Adam."""

    def decayed_grad(self, params, grads, key):
        params[key] *= 1 - self.lr * self.weight_decay
        return grads[key]


class AdamW(AdamDecoupledWd):
    """AdamW with torch's convention (decoupled decay scaled by lr: p *= 1 - lr * wd)."""

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


class AdamWCoupledL2(Adam):
    """'AdamW' that adds the decay to the gradient (L2, coupled), as torch's Adam does."""

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


class AdamWNotScaled(AdamW):
    """AdamW whose decay is not multiplied by the learning rate: p *= 1 - wd."""

    def decayed_grad(self, params, grads, key):
        params[key] *= 1 - self.weight_decay
        return grads[key]
