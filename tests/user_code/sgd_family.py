"""SGD with momentum: torch's step() form, and three update(params, grads) conventions.

``SGD`` is torch-like (constructed with params, step() updates them). The update-style
classes share ``Momentum``'s velocity bookkeeping and override only ``apply``, the per-key rule.
"""

import numpy as np


class SGD:
    """SGD with momentum in torch's form, torch-like step() style.

    Constructed with params (objects with .data and .grad), step() updates them:
    b = mu b + (1 - dampening) g (b = g at the first step); p -= lr (g + mu b if nesterov else b).
    """

    def __init__(self, params, lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        self.params = list(params)
        self.param_groups = [dict(lr=lr)]
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.buffers = [None] * len(self.params)

    def step(self):
        lr = self.param_groups[0]["lr"]
        for i, p in enumerate(self.params):
            g = p.grad + self.weight_decay * p.data
            if self.momentum:
                if self.buffers[i] is None:
                    self.buffers[i] = g.copy()
                else:
                    self.buffers[i] = self.momentum * self.buffers[i] + (1 - self.dampening) * g
                g = g + self.momentum * self.buffers[i] if self.nesterov else self.buffers[i]
            p.data -= lr * g


class Momentum:
    """Momentum SGD with the learning rate inside the velocity (CS231n).

    update(params, grads) style, v = mu * v - lr * g; w += v.
    """

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def apply(self, params, grads, key):
        self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
        params[key] += self.v[key]

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.apply(params, grads, key)


class MomentumEma(Momentum):
    """Momentum as an exponential moving average (deeplearning.ai).

    update(params, grads) style, v = beta * v + (1 - beta) * g; w -= lr * v (beta = momentum).
    """

    def apply(self, params, grads, key):
        self.v[key] = self.momentum * self.v[key] + (1 - self.momentum) * grads[key]
        params[key] -= self.lr * self.v[key]


class Nesterov(Momentum):
    """Nesterov momentum in the Sutskever/Bengio form (CS231n, Keras).

    update(params, grads) style: v_prev = v; v = mu v - lr g; w += -mu v_prev + (1 + mu) v.
    """

    def __init__(self, lr=0.01, momentum=0.9, nesterov=True):
        super().__init__(lr, momentum)

    def apply(self, params, grads, key):
        v_prev = self.v[key].copy()
        self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
        params[key] += -self.momentum * v_prev + (1 + self.momentum) * self.v[key]
