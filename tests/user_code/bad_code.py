"""Broken user code: each class fails in a way refbp must explain clearly."""

import os

import numpy as np


class UpdateWrongSignature:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, grads):
        pass


class NoUpdateNoStep:
    def __init__(self, lr=0.01):
        self.lr = lr


class OnlyLr:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class ReshapingOptimizer:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] = (params[key] - self.lr * grads[key]).ravel()


class ForwardReturnsNone:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        x @ self.W + self.b

    def backward(self, dout):
        return dout @ self.W.T


class BackwardWrongShape:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T[:, :2]


class NoBackwardArg:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        return x @ self.W + self.b

    def backward(self):
        return None


def not_a_class(x):
    return np.asarray(x)


class ProcessEndsInBackward(BackwardWrongShape):
    def backward(self, dout):
        os._exit(0)
