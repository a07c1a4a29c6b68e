"""L-BFGS conventions that differ from ``torch.optim.LBFGS`` (refbp implementations, no torch).

In a check every optimizer step is one L-BFGS iteration on the step's gradient (the check's
closure returns a constant loss, so torch's loop stops after one iteration; see
``refbp.diagnose.trajectories.needs_closure``). torch's iteration (``refbp.optim.lbfgs``)::

    y = g - g_prev;  s = t_prev * d_prev;  if y.s > 1e-10: store (s, y), drop the oldest
                                                            pair beyond history_size,
                                                            H_diag = y.s / y.y
    d = two-loop(-g): first loop newest -> oldest, second oldest -> newest, H_0 = H_diag I
    t = min(1, 1/||g||_1) * lr on the very first iteration, lr after

Each variant changes one piece (they override the hooks of :class:`refbp.optim.LBFGS`)::

    "lbfgs_no_curvature_check":     every pair is stored, also when y.s <= 1e-10
    "lbfgs_two_loop_reversed":      first loop oldest -> newest, second newest -> oldest
    "lbfgs_identity_initial_hessian": H_0 = I (no y.s / y.y scaling)
    "lbfgs_first_step_lr":          the first step length is lr (no 1/||g||_1 cap)
    "lbfgs_history_frozen":         once history_size pairs are stored, new pairs are
                                    dropped instead of the oldest
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant
from refbp.nn.module import Parameter
from refbp.optim import LBFGS
from refbp.optim import _kernels as K


def _reversed_two_loop(q: np.ndarray, old_dirs: list[np.ndarray], old_stps: list[np.ndarray],
                       ro: list[Any], h_diag: Any, al: list[Any]) -> np.ndarray:
    """The two loops with their orders swapped (oldest pair first in the first loop)."""
    num_old = len(old_dirs)
    for i in range(num_old):
        al[i] = old_stps[i].dot(q) * ro[i]
        K.add_(q, old_dirs[i], -al[i])
    r = q * K.scalar(h_diag, q.dtype)
    for i in range(num_old - 1, -1, -1):
        be_i = old_dirs[i].dot(r) * ro[i]
        K.add_(r, old_stps[i], al[i] - be_i)
    return r


class _FrozenHistory(LBFGS):
    """L-BFGS whose history stops taking pairs once it holds ``history_size`` of them."""

    def _accept_pair(self, ys: Any) -> bool:  # type: ignore[override]
        state = self.state.get(self._params[0], {})
        full = len(state.get("old_dirs") or []) >= self.param_groups[0]["history_size"]
        return bool(ys > 1e-10) and not full


def _lbfgs(params: list[Parameter], options: dict[str, Any], **hooks: Any) -> LBFGS:
    cls = type("LBFGSVariant", (LBFGS,), {k: staticmethod(v) for k, v in hooks.items()})
    opt: LBFGS = cls(params, **options)
    return opt


def _short_history(options: dict[str, Any]) -> bool:
    """The history fills up within a check (torch's default history_size is 100)."""
    return int(options.get("history_size", 100)) < 20


VARIANTS = [
    Variant("lbfgs_no_curvature_check", ("LBFGS",),
            "every (s, y) pair is stored, also when the curvature y.s is not positive "
            "(torch skips pairs with y.s <= 1e-10, which keeps the inverse-Hessian estimate "
            "positive definite)",
            "Nocedal & Wright (2006), Sec. 7.2 and eq. 6.7 (curvature condition)",
            lambda p, o, like: _lbfgs(p, o, _accept_pair=lambda ys: True)),
    Variant("lbfgs_two_loop_reversed", ("LBFGS",),
            "the two loops of the recursion run in the opposite order (first loop from the "
            "oldest pair to the newest, second from the newest to the oldest; Nocedal & "
            "Wright's Alg. 7.4 and torch: newest first, then oldest first)",
            "Nocedal & Wright (2006), Alg. 7.4; a common from-scratch slip",
            lambda p, o, like: _lbfgs(p, o, _two_loop=_reversed_two_loop)),
    Variant("lbfgs_identity_initial_hessian", ("LBFGS",),
            "the initial inverse Hessian is the identity, H_0 = I (torch scales it by "
            "y.s / y.y of the newest pair)",
            "Nocedal & Wright (2006), eq. 7.20 (the scaling torch uses) vs. H_0 = I",
            lambda p, o, like: _lbfgs(p, o, _initial_scale=lambda ys, y: 1.0)),
    Variant("lbfgs_first_step_lr", ("LBFGS",),
            "the first step length is lr (torch: min(1, 1/||g||_1) * lr on the first "
            "iteration)",
            "torch.optim.LBFGS (t = min(1., 1./flat_grad.abs().sum()) * lr); "
            "minFunc's first-iteration scaling",
            lambda p, o, like: _lbfgs(p, o, _first_step=lambda g, lr: lr)),
    Variant("lbfgs_history_frozen", ("LBFGS",),
            "once history_size pairs are stored, new pairs are dropped (torch drops the "
            "oldest pair and keeps the newest)",
            "Nocedal & Wright (2006), Alg. 7.5 (discard the oldest pair)",
            lambda p, o, like: _FrozenHistory(p, **o), _short_history),
]
