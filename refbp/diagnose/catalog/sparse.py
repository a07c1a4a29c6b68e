"""SparseAdam conventions that differ from ``torch.optim.SparseAdam`` (refbp, no torch).

In a check the gradients have about half their rows exactly zero at every step; torch and
refbp receive the rows that are not as a sparse gradient, the user's code receives the dense
array. torch (``refbp.optim.sparse_adam``) updates the touched rows only, with the optimizer's
step count and the bias correction folded into the step size::

    m[i] += (1 - b1) (g[i] - m[i]);  v[i] += (1 - b2) (g[i]^2 - v[i])
    theta[i] -= lr sqrt(1 - b2^t) / (1 - b1^t) * m[i] / (sqrt(v[i]) + eps)

    "sparseadam_dense":            every row is updated as torch's dense Adam does (untouched
                                   rows: g = 0, their moments decay and they keep moving)
    "sparseadam_adam_eps":         touched rows only, eps added after the correction of v,
                                   m_hat / (sqrt(v_hat) + eps) (dense Adam's placement)
    "sparseadam_row_step_counts":  touched rows only, each row's bias correction uses the
                                   number of steps that touched it
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant, with_update
from refbp.nn.sparse import SparseGrad
from refbp.optim import SparseAdam


def sparse_adam_variant_update(param: np.ndarray, grad: SparseGrad, state: dict[str, Any], *,
                               lr: Any, betas: tuple[float, float], eps: float, maximize: bool,
                               dense: bool = False, adam_eps: bool = False,
                               row_counts: bool = False) -> None:
    """One SparseAdam update with the switches of the module docstring (float64)."""
    b1, b2 = betas
    lr = float(lr)
    state["step"] += 1
    g = (-grad if maximize else grad).coalesce()
    idx = np.arange(param.shape[0]) if dense else g.indices
    values = g.to_dense()[idx] if dense else g.values
    if values.size == 0:
        return
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m[idx] += (1 - b1) * (values - m[idx])
    v[idx] += (1 - b2) * (values * values - v[idx])
    t: Any = float(state["step"])
    if row_counts:
        counts = state.setdefault("row_steps", np.zeros(param.shape[0]))
        counts[idx] += 1
        t = counts[idx].reshape((-1,) + (1,) * (param.ndim - 1))
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    if dense or adam_eps:
        param[idx] -= lr / bc1 * m[idx] / (np.sqrt(v[idx]) / np.sqrt(bc2) + eps)
    else:
        param[idx] -= lr * np.sqrt(bc2) / bc1 * m[idx] / (np.sqrt(v[idx]) + eps)


_sparse_adam = partial(with_update, SparseAdam, sparse_adam_variant_update)


VARIANTS = [
    Variant("sparseadam_dense", ("SparseAdam",),
            "every row is updated as dense Adam updates it: the moments of the rows the "
            "gradient does not touch decay and those rows keep moving (torch's SparseAdam "
            "leaves them as they are)",
            "torch.optim.Adam on the dense gradient; Kingma & Ba (2015), Alg. 1",
            lambda p, o, like: _sparse_adam(p, o, dense=True)),
    Variant("sparseadam_adam_eps", ("SparseAdam",),
            "eps is added after the bias correction, m_hat / (sqrt(v_hat) + eps), as dense "
            "Adam does (torch's SparseAdam folds the correction into the step size and adds "
            "eps to the uncorrected sqrt(v))",
            "torch.optim.Adam vs. torch.optim.SparseAdam (_functional.sparse_adam)",
            lambda p, o, like: _sparse_adam(p, o, adam_eps=True)),
    Variant("sparseadam_row_step_counts", ("SparseAdam",),
            "each row's bias correction uses the number of steps that touched that row "
            "(torch uses the optimizer's step count, the same for every row)",
            "lazy-Adam implementations with per-row counters (e.g. some recommender-system "
            "embedding optimizers); tf.keras LazyAdam uses the global step, as torch",
            lambda p, o, like: _sparse_adam(p, o, row_counts=True)),
]
