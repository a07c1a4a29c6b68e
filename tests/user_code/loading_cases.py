"""User code that is awkward to load or to drive: each class exercises one safeguard."""

import sys

import numpy as np


class CachedLrMomentum:
    """Momentum SGD that copies the learning rate at construction: changing ``lr`` later has no
    effect, so conventions that only show when the learning rate changes cannot be tested."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self._step_size = lr
        self.momentum = momentum
        self.v = {}

    def update(self, params, grads):
        for k in params:
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            v[...] = self.momentum * v - self._step_size * grads[k]
            params[k] += v


class SwallowsKwargs:
    """Plain SGD whose constructor would swallow any option silently."""

    def __init__(self, lr=0.01, **kwargs):
        if kwargs:
            raise RuntimeError(f"options swallowed: {kwargs}")
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class ExitsInClassBody:
    sys.exit(3)
