"""Layer conventions that differ from ``torch.nn`` (refbp implementations, no torch).

Linear::

    "linear_grad_mean_over_batch":  dW = dout^T x / N,  db = mean(dout)   (torch: sums)

BatchNorm1d running statistics (torch: r = (1 - m) r + m * stat, unbiased running variance,
running mean 0 and variance 1 at the start). Three independent switches, each a variant, and
their combinations (built on demand by :func:`batchnorm_combinations`)::

    momentum   "keras":         r = m r + (1 - m) stat
    variance   "biased":        the batch variance divided by N (torch: N - 1)
               "biased_eps" / "unbiased_eps":   var + eps is accumulated
    start      "zeros":         running variance starts at 0 (mean at 0, as torch)
               "first_batch":   running statistics start as the first batch's statistics

Activations: ReLU with gradient 1 at x = 0; softmax backward with the diagonal of the
Jacobian only (dx = s (1 - s) dout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant
from refbp.nn.activation import ReLU, Softmax
from refbp.nn.batchnorm import BatchNorm1d
from refbp.nn.linear import Linear


@dataclass(frozen=True)
class LayerSpec:
    """What a layer check needs: default sizes, tensors, gradients, fixed torch options, and
    the feature count of parameter-free layers; ``kinks`` puts exact zeros in the inputs."""

    sizes: dict[str, int]
    params: tuple[str, ...]
    buffers: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    features: int = 5
    kinks: bool = False

    def input_shape(self, sizes: dict[str, int], batch: int) -> tuple[int, ...]:
        """Shape of the input batch for a layer built with ``sizes``: ``(batch, in_features)``."""
        return (batch, next(iter(sizes.values()), self.features))


SPECS = {
    "Linear": LayerSpec({"in_features": 4, "out_features": 3}, ("weight", "bias")),
    "BatchNorm1d": LayerSpec({"num_features": 4}, ("weight", "bias"),
                             ("running_mean", "running_var")),
    "ReLU": LayerSpec({}, (), kinks=True),
    "Sigmoid": LayerSpec({}, ()),
    "Tanh": LayerSpec({}, ()),
    "Softmax": LayerSpec({}, (), fixed=(("dim", 1),)),
}


class LinearGradMean(Linear):
    """``Linear`` whose parameter gradients are averaged over the batch (Ng's dW = dZ A^T / m)."""

    def backward(  # type: ignore[override]  # one signature for both of Linear's overloads
            self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Linear's backward with the parameter gradients averaged over the batch (the variant's
        convention); the input gradient is unscaled.
        """
        n = grad_out.reshape(-1, self.out_features).shape[0]
        gx = super().backward(grad_out / n, input_grad=input_grad)
        return None if gx is None else gx * n


class BatchNormVariant(BatchNorm1d):
    """``BatchNorm1d`` whose running statistics follow other conventions (module docstring)."""

    keras_momentum = False
    var_mode = "unbiased"
    start = "torch"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.start == "zeros":
            self.running_var[...] = 0.0

    def _update_stats(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        f = self._factor()
        keep, new = (f, 1 - f) if self.keras_momentum else (1 - f, f)
        stat_var = var if self.var_mode.startswith("biased") else var * (count / (count - 1))
        if self.var_mode.endswith("_eps"):
            stat_var = stat_var + self.eps
        if self.start == "first_batch" and int(self.num_batches_tracked) == 1:
            self.running_mean[...] = mean
            self.running_var[...] = stat_var
            return
        self.running_mean[...] = keep * self.running_mean + new * mean
        self.running_var[...] = keep * self.running_var + new * stat_var


def _bn(options: dict[str, Any], keras: bool = False, var_mode: str = "unbiased",
        start: str = "torch") -> BatchNorm1d:
    cls = type("BatchNormVariant", (BatchNormVariant,),
               {"keras_momentum": keras, "var_mode": var_mode, "start": start})
    return cls(**options)  # type: ignore[no-any-return]


class ReLUGradOneAtZero(ReLU):
    """``ReLU`` whose backward passes the gradient at x = 0 (mask x >= 0)."""

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return grad * (x >= 0)


class SoftmaxDiagonal(Softmax):
    """``Softmax`` whose backward keeps only the Jacobian's diagonal: dx = s (1 - s) dout."""

    def _backward(self, grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return grad * y * (1 - y)


_BN_SWITCHES: dict[str, dict[str, Any]] = {
    "batchnorm_keras_momentum": {"keras": True},
    "batchnorm_biased_running_var": {"var_mode": "biased"},
    "batchnorm_running_var_plus_eps": {"var_mode": "unbiased_eps"},
    "batchnorm_running_var_init_zero": {"start": "zeros"},
    "batchnorm_running_stats_from_first_batch": {"start": "first_batch"},
}


def batchnorm_combinations(singles: list[Variant]) -> list[Variant]:
    """Variants combining two or three BatchNorm switches of different kinds (momentum,
    variance, start), e.g. Keras momentum + biased variance + running variance from 0."""
    by_name = {v.name: v for v in singles if v.name in _BN_SWITCHES}
    out = []
    names = list(by_name)
    for i, a in enumerate(names):
        for j, b in enumerate(names[i + 1:], start=i + 1):
            for c in [None, *names[j + 1:]]:
                group = [n for n in (a, b, c) if n is not None]
                keys = [next(iter(_BN_SWITCHES[n])) for n in group]
                if len(set(keys)) < len(keys):
                    continue
                sw: dict[str, Any] = {k: v for n in group for k, v in _BN_SWITCHES[n].items()}
                out.append(Variant("+".join(group), ("BatchNorm1d",),
                                   " and ".join(by_name[n].description for n in group),
                                   "; ".join(dict.fromkeys(by_name[n].reference
                                                           for n in group)),
                                   lambda o, sw=sw: _bn(o, **sw)))
    return out


_EVAL_ZERO = ("until about 1/momentum steps have passed, eval-mode outputs are divided by "
              "sqrt(running_var + eps) with a running variance far below the data's, so they "
              "come out too large")
VARIANTS = [
    Variant("linear_grad_mean_over_batch", ("Linear",),
            "the weight and bias gradients are averaged over the batch (dW = dout^T x / N), a "
            "scale torch leaves to the loss's reduction",
            "Andrew Ng, deeplearning.ai (dW = 1/m dZ A^T); cs229 notes",
            lambda o: LinearGradMean(**o)),
    Variant("batchnorm_keras_momentum", ("BatchNorm1d",),
            "the running statistics use the Keras momentum convention running = momentum * "
            "running + (1 - momentum) * batch (torch: (1 - momentum) * running + momentum * "
            "batch)",
            "tf.keras.layers.BatchNormalization (momentum=0.99)",
            lambda o: _bn(o, keras=True)),
    Variant("batchnorm_biased_running_var", ("BatchNorm1d",),
            "the running variance is updated with the biased batch variance (divide by N; "
            "torch uses the unbiased N - 1)",
            "tf.keras.layers.BatchNormalization moving_variance; Ioffe & Szegedy (2015) use "
            "the unbiased estimate only at inference",
            lambda o: _bn(o, var_mode="biased")),
    Variant("batchnorm_keras_momentum_biased_var", ("BatchNorm1d",),
            "the running statistics use the Keras momentum convention and the biased batch "
            "variance",
            "Saito, 'Deep Learning from Scratch' (common/layers.py BatchNormalization, "
            "momentum=0.9)",
            lambda o: _bn(o, keras=True, var_mode="biased")),
    Variant("batchnorm_running_var_plus_eps", ("BatchNorm1d",),
            "the running variance accumulates var + eps (the eps-stabilised variance) instead "
            "of var, so eval-mode outputs divide by sqrt(running_var + 2 eps)",
            "a common from-scratch slip (storing var + eps for reuse)",
            lambda o: _bn(o, var_mode="unbiased_eps")),
    Variant("batchnorm_running_var_init_zero", ("BatchNorm1d",),
            f"the running variance starts at 0 (torch: 1); {_EVAL_ZERO}",
            "CS231n assignment 2 batchnorm_forward (np.zeros running_var); Saito, 'Deep "
            "Learning from Scratch' (running_var = np.zeros(D))",
            lambda o: _bn(o, start="zeros")),
    Variant("batchnorm_running_stats_from_first_batch", ("BatchNorm1d",),
            "the running statistics start as the first batch's mean and variance (torch: 0 "
            "and 1, moved by momentum), so eval-mode outputs right after training start use "
            "that batch's statistics",
            "eriklindernoren/ML-From-Scratch BatchNormalization",
            lambda o: _bn(o, start="first_batch")),
    Variant("relu_grad_one_at_zero", ("ReLU",),
            "the gradient at x = 0 is 1 (mask x >= 0; torch uses 0 there)",
            "relu'(0) = 1 conventions, e.g. Saito's relu_grad (grad[x >= 0] = 1)",
            lambda o: ReLUGradOneAtZero(**o)),
    Variant("softmax_diagonal_jacobian", ("Softmax",),
            "the backward keeps only the diagonal of the softmax Jacobian, dx = s (1 - s) "
            "dout, dropping the - s_i s_j cross terms",
            "a common from-scratch slip (treating softmax like an elementwise sigmoid)",
            lambda o: SoftmaxDiagonal(**o)),
]
