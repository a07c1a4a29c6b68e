r"""Graph ops of ``torch.nn.functional`` calls a model makes in its own code: the losses
(``F.mse_loss``, ``F.nll_loss``, ``F.kl_div``, ...), ``F.interpolate`` and ``F.logsigmoid``.

Each runs the refbp layer of the same maths, built from the ATen arguments, so the forward
and backward are those of ``refbp.nn`` (their derivations are in the layers' docstrings).
ATen passes a loss's reduction as an integer: 0 ``'none'``, 1 ``'mean'``, 2 ``'sum'``.

The target of a loss op gets no gradient here (``None``): in a captured model it is a data
input or a constant; the gradient of a target that requires grad is
``refbp.nn.Loss.grad("target")`` of the loss layer. Conventions: ``refbp.nn.ops``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from refbp.nn import functional_interp as fi
from refbp.nn.activation_smooth import LogSigmoid
from refbp.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    HuberLoss,
    L1Loss,
    Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from refbp.nn.loss_likelihood import KLDivLoss, PoissonNLLLoss
from refbp.nn.loss_margin import (
    HingeEmbeddingLoss,
    MultiLabelMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
)
from refbp.nn.ops import unbroadcast

Grads = tuple[Any, ...]
REDUCTIONS = ("none", "mean", "sum")


def _loss(layer: Loss, x: np.ndarray, target: np.ndarray) -> tuple[Any, Any]:
    return layer.forward(x, target), layer


def loss_backward(g: np.ndarray, layer: Loss) -> Grads:
    """The loss layer's ``backward(g)``: dL/d input; no gradient for the target and the
    options (see the module docstring)."""
    return (layer.backward(g),)


def l1_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.L1Loss``."""
    return _loss(L1Loss(reduction=REDUCTIONS[reduction]), x, target)


def mse_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.MSELoss``."""
    return _loss(MSELoss(reduction=REDUCTIONS[reduction]), x, target)


def smooth_l1_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1, beta: float = 1.0
                   ) -> tuple[Any, Any]:
    """``refbp.nn.SmoothL1Loss``."""
    return _loss(SmoothL1Loss(reduction=REDUCTIONS[reduction], beta=beta), x, target)


def huber_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1, delta: float = 1.0
               ) -> tuple[Any, Any]:
    """``refbp.nn.HuberLoss``."""
    return _loss(HuberLoss(reduction=REDUCTIONS[reduction], delta=delta), x, target)


def binary_cross_entropy(x: np.ndarray, target: np.ndarray, weight: Any = None,
                         reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.BCELoss``."""
    return _loss(BCELoss(weight=weight, reduction=REDUCTIONS[reduction]), x, target)


def binary_cross_entropy_with_logits(x: np.ndarray, target: np.ndarray, weight: Any = None,
                                     pos_weight: Any = None, reduction: int = 1
                                     ) -> tuple[Any, Any]:
    """``refbp.nn.BCEWithLogitsLoss``."""
    layer = BCEWithLogitsLoss(weight=weight, reduction=REDUCTIONS[reduction],
                              pos_weight=pos_weight)
    return _loss(layer, x, target)


def kl_div(x: np.ndarray, target: np.ndarray, reduction: int = 1, log_target: bool = False
           ) -> tuple[Any, Any]:
    """``refbp.nn.KLDivLoss`` (ATen's reduction has no 'batchmean': ``F.kl_div`` divides
    the sum by the batch size itself)."""
    return _loss(KLDivLoss(reduction=REDUCTIONS[reduction], log_target=log_target), x, target)


def poisson_nll_loss(x: np.ndarray, target: np.ndarray, log_input: bool, full: bool,
                     eps: float, reduction: int) -> tuple[Any, Any]:
    """``refbp.nn.PoissonNLLLoss``."""
    layer = PoissonNLLLoss(log_input=log_input, full=full, eps=eps,
                           reduction=REDUCTIONS[reduction])
    return _loss(layer, x, target)


def hinge_embedding_loss(x: np.ndarray, target: np.ndarray, margin: float = 1.0,
                         reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.HingeEmbeddingLoss``."""
    return _loss(HingeEmbeddingLoss(margin=margin, reduction=REDUCTIONS[reduction]), x, target)


def soft_margin_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.SoftMarginLoss``."""
    return _loss(SoftMarginLoss(reduction=REDUCTIONS[reduction]), x, target)


def multilabel_margin_loss(x: np.ndarray, target: np.ndarray, reduction: int = 1
                           ) -> tuple[Any, Any]:
    """``refbp.nn.MultiLabelMarginLoss``."""
    return _loss(MultiLabelMarginLoss(reduction=REDUCTIONS[reduction]), x, target)


def multi_margin_loss(x: np.ndarray, target: np.ndarray, p: float = 1, margin: float = 1,
                      weight: Any = None, reduction: int = 1) -> tuple[Any, Any]:
    """``refbp.nn.MultiMarginLoss``."""
    layer = MultiMarginLoss(p=int(p), margin=margin, weight=weight,
                            reduction=REDUCTIONS[reduction])
    return _loss(layer, x, target)


def nll_loss(x: np.ndarray, target: np.ndarray, weight: Any = None, reduction: int = 1,
             ignore_index: int = -100) -> tuple[Any, Any]:
    """``refbp.nn.NLLLoss`` (any number of trailing dimensions, as ``nll_loss_nd``)."""
    layer = NLLLoss(weight=weight, ignore_index=int(ignore_index),
                    reduction=REDUCTIONS[reduction])
    return _loss(layer, x, target)


def log_sigmoid(x: np.ndarray) -> tuple[Any, Any]:
    """``refbp.nn.LogSigmoid``: ``log sigmoid(x) = -softplus(-x)``."""
    layer = LogSigmoid()
    return layer.forward(x), layer


def log_sigmoid_backward(g: np.ndarray, layer: LogSigmoid) -> Grads:
    """``d log sigmoid(x) / dx = sigmoid(-x)`` (``refbp.nn.LogSigmoid.backward``)."""
    return (layer.backward(g),)


def broadcast_tensors(tensors: Sequence[np.ndarray]) -> tuple[Any, Any]:
    """The tensors broadcast to their common shape (read-only views, as torch's expand)."""
    return list(np.broadcast_arrays(*tensors)), [np.shape(t) for t in tensors]


def broadcast_tensors_backward(g: list[Any], shapes: list[tuple[int, ...]]) -> Grads:
    """Each input gets its output's gradient summed over the dimensions it was broadcast
    along (``refbp.nn.ops.unbroadcast``); None where its output got no gradient."""
    return [None if gi is None else unbroadcast(gi, shape)
            for gi, shape in zip(g, shapes, strict=True)],


def _upsample(x: np.ndarray, output_size: Sequence[int] | None,
              scale_factors: Sequence[float] | None, mode: str, align_corners: bool,
              antialias: bool = False) -> tuple[Any, Any]:
    """``F.interpolate``'s kernels (``refbp.nn.functional_interp``, ``refbp.nn.Upsample``'s
    maths): the output size is ``output_size``, else ``floor(in * scale)``; given scale
    factors map the coordinates (as ``recompute_scale_factor=False``), else in / out."""
    spatial = x.shape[2:]
    out = (list(output_size) if output_size is not None
           else fi.output_size(spatial, None, list(scale_factors or ())))
    y, mats = fi.interpolate(x, [int(n) for n in out], mode, align_corners,
                             fi.scale_list(None if scale_factors is None
                                           else list(scale_factors), len(spatial)),
                             antialias)
    return y, mats


def upsample_backward(g: np.ndarray, mats: list[np.ndarray]) -> Grads:
    """The interpolation is linear, ``y = M x`` axis by axis: ``dx = M^T g``
    (``refbp.nn.functional_interp.interpolate_backward``)."""
    return (fi.interpolate_backward(g, mats),)


def upsample_nearest(x: np.ndarray, output_size: Sequence[int] | None,
                     scale_factors: Sequence[float] | None = None) -> tuple[Any, Any]:
    """``F.interpolate(mode='nearest')`` of 1-D, 2-D or 3-D inputs."""
    return _upsample(x, output_size, scale_factors, "nearest", False)


def upsample_nearest_exact(x: np.ndarray, output_size: Sequence[int] | None,
                           scale_factors: Sequence[float] | None = None) -> tuple[Any, Any]:
    """``F.interpolate(mode='nearest-exact')``."""
    return _upsample(x, output_size, scale_factors, "nearest-exact", False)


def upsample_linear(x: np.ndarray, output_size: Sequence[int] | None, align_corners: bool,
                    scale_factors: Sequence[float] | None = None) -> tuple[Any, Any]:
    """``F.interpolate`` with mode linear, bilinear or trilinear (one kernel per axis)."""
    return _upsample(x, output_size, scale_factors, "linear", bool(align_corners))


def upsample_bicubic(x: np.ndarray, output_size: Sequence[int] | None, align_corners: bool,
                     scale_factors: Sequence[float] | None = None) -> tuple[Any, Any]:
    """``F.interpolate(mode='bicubic')``."""
    return _upsample(x, output_size, scale_factors, "bicubic", bool(align_corners))


def upsample_bilinear_aa(x: np.ndarray, output_size: Sequence[int] | None,
                         align_corners: bool, scale_factors: Sequence[float] | None = None
                         ) -> tuple[Any, Any]:
    """``F.interpolate(mode='bilinear', antialias=True)``: the triangle filter widened by the
    scale when downsampling (``refbp.nn.functional_interp.aa_matrix``)."""
    return _upsample(x, output_size, scale_factors, "bilinear", bool(align_corners), True)


def upsample_bicubic_aa(x: np.ndarray, output_size: Sequence[int] | None,
                        align_corners: bool, scale_factors: Sequence[float] | None = None
                        ) -> tuple[Any, Any]:
    """``F.interpolate(mode='bicubic', antialias=True)``: Keys' cubic with ``A = -0.5``,
    widened by the scale when downsampling (``refbp.nn.functional_interp.aa_matrix``)."""
    return _upsample(x, output_size, scale_factors, "bicubic", bool(align_corners), True)
