"""Layer conventions that differ from ``torch.nn`` (refbp implementations, no torch).

Linear::

    "linear_grad_mean_over_batch":  dW = dout^T x / N,  db = mean(dout)   (torch: sums)

BatchNorm1d running statistics (torch: r = (1 - m) r + m * stat, unbiased running variance)::

    "batchnorm_keras_momentum":        r = m r + (1 - m) stat
    "batchnorm_biased_running_var":    running variance from the biased batch variance
    "batchnorm_keras_momentum_biased": both (the "Deep Learning from Scratch" layer)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.diagnose.variant import Family, Variant
from refbp.nn.batchnorm import BatchNorm1d
from refbp.nn.linear import Linear


@dataclass(frozen=True)
class LayerSpec:
    """What a layer check needs: default sizes, input shape, tensors and gradients."""

    sizes: dict[str, int]
    params: tuple[str, ...]
    buffers: tuple[str, ...] = ()

    def input_shape(self, sizes: dict[str, int], batch: int) -> tuple[int, ...]:
        return (batch, next(iter(sizes.values())))


SPECS = {
    "Linear": LayerSpec({"in_features": 4, "out_features": 3}, ("weight", "bias")),
    "BatchNorm1d": LayerSpec({"num_features": 4}, ("weight", "bias"),
                             ("running_mean", "running_var")),
}


class LinearGradMean(Linear):
    """``Linear`` whose parameter gradients are averaged over the batch (Ng's dW = dZ A^T / m)."""

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        n = grad_out.reshape(-1, self.out_features).shape[0]
        gx = super().backward(grad_out / n, input_grad=input_grad)
        return None if gx is None else gx * n


class BatchNormVariant(BatchNorm1d):
    """``BatchNorm1d`` with the Keras momentum convention and/or a biased running variance."""

    keras_momentum = True
    biased_running_var = False

    def _update_stats(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        f = self._factor()
        keep, new = (f, 1 - f) if self.keras_momentum else (1 - f, f)
        stat_var = var if self.biased_running_var else var * (count / (count - 1))
        self.running_mean[...] = keep * self.running_mean + new * mean
        self.running_var[...] = keep * self.running_var + new * stat_var


def _bn(options: dict[str, Any], keras: bool, biased: bool) -> BatchNorm1d:
    cls = type("BatchNormVariant", (BatchNormVariant,),
               {"keras_momentum": keras, "biased_running_var": biased})
    return cls(**options)  # type: ignore[no-any-return]


FAMILIES = [
    Family("Linear", "layer", Linear),
    Family("BatchNorm1d", "layer", BatchNorm1d),
]

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
            lambda o: _bn(o, True, False)),
    Variant("batchnorm_biased_running_var", ("BatchNorm1d",),
            "the running variance is updated with the biased batch variance (divide by N; "
            "torch uses the unbiased N - 1)",
            "tf.keras.layers.BatchNormalization moving_variance; Ioffe & Szegedy (2015) use "
            "the unbiased estimate only at inference",
            lambda o: _bn(o, False, True)),
    Variant("batchnorm_keras_momentum_biased_var", ("BatchNorm1d",),
            "the running statistics use the Keras momentum convention and the biased batch "
            "variance",
            "Saito, 'Deep Learning from Scratch' (common/layers.py BatchNormalization, "
            "momentum=0.9)",
            lambda o: _bn(o, True, True)),
]
