r"""``AlphaDropout`` and ``FeatureAlphaDropout``: dropout that keeps SELU's mean and variance.

torch's kernel (``_dropout_impl`` with ``alpha_dropout=true`` in ATen's ``Dropout.cpp``),
with ``alpha = 1.7580993408473766`` (``-SELU(-inf) = scale * alpha`` of SELU), a keep-mask
``m`` of Bernoulli(1 - p) entries drawn by torch and fed to refbp as every dropout mask is
(:mod:`refbp.nn.dropout`), and, in double precision::

    a = 1 / sqrt((alpha^2 p + 1) (1 - p)),      A = alpha a,      B = alpha a p

then, in the input's dtype (``A`` and ``B`` rounded to it once, each operation rounded)::

    b     = (m - 1) * A + B            # B where kept, B - A where dropped
    noise = m * a
    y     = x * noise + b

A dropped element becomes ``B - A = -alpha a (1 - p)``, the affine image of SELU's
saturation value, chosen so that zero-mean unit-variance inputs keep mean 0 and variance 1.

Backward: ``y`` is affine in ``x`` with the fixed factor ``noise``, so ``dx = g * noise``
(``g * a`` where kept, 0 where dropped).

``p == 0``, eval mode, or an empty input: the identity, no draw. ``p == 1``: ``y = x * 0``
(torch multiplies by a zero scalar, without drawing and without the shift), gradient zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn.dropout import _DropoutNd, feature_noise_shape

__all__ = ["ALPHA", "AlphaDropout", "FeatureAlphaDropout", "alpha_dropout_affine"]

#: torch's constant: SELU's ``scale * alpha``, the magnitude of its negative saturation.
ALPHA = 1.7580993408473766


def alpha_dropout_affine(mask: np.ndarray, p: float,
                         dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(noise, b)`` of ``y = x * noise + b`` for a keep-mask, rounded as torch's kernel
    (module docstring): ``b = (m - 1) * A + B``, ``noise = m * a`` in ``dtype``."""
    dt = np.dtype(dtype).type
    a = 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
    m = mask.astype(dt)
    b = (m - dt(1)) * dt(ALPHA * a) + dt(ALPHA * a * p)
    return m * dt(a), b


class _AlphaDropoutNd(_DropoutNd):
    """The alpha-dropout forward and backward on top of the dropout layers' mask source."""

    def forward(self, x: Any) -> np.ndarray:
        """``x * noise + b`` in training (module docstring); the identity otherwise."""
        x = as_float_array(x, f"{self._name} input")
        if not self.training or self.p == 0.0 or x.size == 0:
            self._cache.save(noise=None, shape=x.shape)
            return x
        if self.p == 1.0:
            zero = np.zeros((), dtype=x.dtype)
            self._cache.save(noise=zero, shape=x.shape)
            return x * zero
        noise, b = alpha_dropout_affine(self._mask(x), self.p, x.dtype)
        self._cache.save(noise=noise, shape=x.shape)
        return x * noise + b


class AlphaDropout(_AlphaDropoutNd):
    r"""Element-wise alpha dropout, as ``torch.nn.AlphaDropout`` (maths in the module
    docstring): a dropped element is set to SELU's saturation value, then the whole tensor is
    rescaled and shifted to keep zero mean and unit variance.

    Parameters
    ----------
    p : float, default 0.5
        Probability of an element to be dropped; ``0 <= p <= 1``.
    inplace : bool, default False
        Stored, and ignored as torch's module ignores it (its forward never passes it on).
    generator : numpy.random.Generator, optional (refbp only, keyword)
        Draws masks when none are fed.

    Shapes
    ------
    x : any shape; y : same shape.
    """

    _name = "AlphaDropout"


class FeatureAlphaDropout(_AlphaDropoutNd):
    r"""Channel-wise alpha dropout, as ``torch.nn.FeatureAlphaDropout``: one draw per
    (sample, channel), the mask of shape (N, C, 1, ...) shared by the feature map, then the
    alpha-dropout affine map of the module docstring (broadcast over the map).

    Backward: ``dx[n, c] = g[n, c] * noise[n, c]``. The input needs at least 2 dimensions
    in training (torch's RuntimeError otherwise); every rank is read as batched.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel to be dropped.
    inplace : bool, default False
        Stored, and ignored as torch's module ignores it.
    generator : numpy.random.Generator, optional (refbp only, keyword)
    """

    _name = "FeatureAlphaDropout"

    def _noise_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return feature_noise_shape(x)
