"""BatchNorm in the "Deep Learning from Scratch" style (forward(x, train_flg), backward(dout)).

``BatchNorm`` follows torch; each subclass overrides only ``update_running``, the running
statistics convention (which way momentum weights, biased or unbiased running variance).
"""

import numpy as np


class BatchNorm:
    """BatchNorm with torch's conventions (momentum 0.1 weights the batch, unbiased running var).

    running = (1 - m) running + m batch, with the batch variance times n / (n - 1).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.gamma = np.ones(num_features)
        self.beta = np.zeros(num_features)
        self.eps = eps
        self.momentum = momentum
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)

    def update_running(self, mu, var, n):
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)

    def forward(self, x, train_flg=True):
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc**2, axis=0)
            self.update_running(mu, var, x.shape[0])
            std = np.sqrt(var + self.eps)
        else:
            xc = x - self.running_mean
            std = np.sqrt(self.running_var + self.eps)
        self.train_flg = train_flg
        self.xc, self.std = xc, std
        self.xn = xc / std
        return self.gamma * self.xn + self.beta

    def backward(self, dout):
        n = dout.shape[0]
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        if not self.train_flg:
            return dxn / self.std
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / n) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        return dxc - dmu / n


class BatchNormBiasedVar(BatchNorm):
    """BatchNorm whose running variance uses the biased batch variance (no n / (n - 1))."""

    def update_running(self, mu, var, n):
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var


class BatchNormKerasMomentum(BatchNorm):
    """BatchNorm with the Keras momentum convention (momentum weights the old value).

    running = m running + (1 - m) batch, unbiased running variance; default momentum 0.99.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.99):
        super().__init__(num_features, eps, momentum)

    def update_running(self, mu, var, n):
        m = self.momentum
        self.running_mean = m * self.running_mean + (1 - m) * mu
        self.running_var = m * self.running_var + (1 - m) * var * n / (n - 1)


class BatchNormalization(BatchNorm):
    """BatchNormalization as in "Deep Learning from Scratch" (common/layers.py): built from
    gamma and beta, Keras momentum convention, biased running variance, forward(x, train_flg).
    """

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None,
                 eps=1e-5):
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.running_mean = running_mean
        self.running_var = running_var
        self.eps = eps

    def update_running(self, mu, var, n):
        self.batch_size = n
        self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
        self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var

    def forward(self, x, train_flg=True):
        if self.running_mean is None:
            self.running_mean = np.zeros(x.shape[1])
            self.running_var = np.ones(x.shape[1])
        return super().forward(x, train_flg)


class BatchNormRunningVarPlusEps(BatchNorm):
    """BatchNorm that accumulates the eps-stabilised variance var + eps into the running one."""

    def update_running(self, mu, var, n):
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * (var * n / (n - 1) + self.eps)
