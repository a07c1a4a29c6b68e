"""L-BFGS with an optional strong-Wolfe line search: ``torch.optim.LBFGS``.

torch's scalars are 0-d tensors of the parameter dtype wherever its code makes them (dot
products, ``1 / ys``, the first step size); here they are NumPy scalars of the same dtype,
which follow the same promotion rules (NEP 50: a Python float meeting a float32 scalar
stays float32), and are stored in the state as 0-d arrays where torch stores tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.nn.sparse import SparseGrad
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr
from refbp.registry.optimizers import optimizer

LINE_SEARCH_FNS = (None, "strong_wolfe")


def cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any,
                      bounds: tuple[Any, Any] | None = None) -> Any:
    """The minimiser of the cubic through ``(x1, f1)``, ``(x2, f2)`` with slopes ``g1``,
    ``g2``, clamped to ``bounds`` (default: the interval) -- torch's ``_cubic_interpolate``
    (minFunc's ``polyinterp``)::

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        x  = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)       (x1 <= x2)

    and the midpoint of the bounds when ``d1^2 < g1 g2`` (the cubic has no minimum).
    """
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


ObjFunc = Callable[[list[np.ndarray], Any, np.ndarray], tuple[float, np.ndarray]]


def strong_wolfe(obj_func: ObjFunc, x: list[np.ndarray], t: Any, d: np.ndarray, f: float,
                 g: np.ndarray, gtd: Any, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25
                 ) -> tuple[float, np.ndarray, Any, int]:
    """torch's ``_strong_wolfe`` (minFunc's ``WolfeLineSearch``): a step ``t`` along ``d``
    with sufficient decrease ``f(t) <= f + c1 t g.d`` and small slope ``|g(t).d| <= c2 |g.d|``.

    Bracketing: from the initial ``t``, extrapolate (cubic, between ``t + 0.01 (t - t_prev)``
    and ``10 t``) until the conditions hold or an interval is known to contain such a point;
    zoom: shrink the interval by cubic interpolation, moved 10 % of the interval away from
    its ends when the interpolation stalls there. Returns ``(f, g, t, evaluations)`` of the
    best point (at most ``max_ls`` evaluations).
    """
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[Any]
    bracket_f: list[Any]
    bracket_g: list[np.ndarray]
    bracket_gtd: list[Any] = []
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                              bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def _dense(grad: Any) -> np.ndarray:
    """A gradient as a dense array (torch: a sparse gradient's ``to_dense()``)."""
    return grad.to_dense() if isinstance(grad, SparseGrad) else grad


def _as_state(x: Any) -> Any:
    """A NumPy scalar (torch: a 0-d tensor) as the 0-d array the state keeps."""
    return np.asarray(x) if isinstance(x, np.generic) else x


class LBFGS(Optimizer):
    """L-BFGS, as ``torch.optim.LBFGS`` (one parameter group; ``step`` needs a closure).

    torch's docs give no algorithm box; this one is read off its code (minFunc's ``lbfgs``).

    Algorithm (torch's box)::

        input: closure f (returns the loss, refills the gradients), lr, max_iter, max_eval,
               tolerance_grad, tolerance_change, history_size m, line_search_fn, maximize
        if maximize: f <- -f and g <- -g wherever the closure is evaluated below
        g <- grad f(x); stop if max|g| <= tolerance_grad
        repeat up to max_iter times:
            if first iteration ever:  d <- -g; H0 <- 1
            else:
                y <- g - g_prev; s <- t d
                if y.s > 1e-10:  push (y, s, rho = 1 / y.s) (drop the oldest beyond m);
                                 H0 <- y.s / y.y
                two-loop recursion:  q <- -g
                    for i = newest .. oldest:  a_i <- rho_i s_i.q;  q <- q - a_i y_i
                    r <- H0 q
                    for i = oldest .. newest:  b_i <- rho_i y_i.r;  r <- r + (a_i - b_i) s_i
                d <- r
            t <- min(1, 1 / sum|g|) lr  on the first iteration ever, else lr
            stop if g.d > -tolerance_change
            strong_wolfe: (f, g, t) <- line search along d from t;  x <- x + t d
            None:         x <- x + t d; f, g <- closure() unless this is the last iteration
            stop when: max_iter iterations or max_eval evaluations, max|g| <= tolerance_grad,
                       max|t d| <= tolerance_change, |f - f_prev| < tolerance_change

    Derivation. BFGS builds an approximation ``H`` of the inverse Hessian from the secant
    pairs ``(s, y)`` (``H y = s``: the step that the gradient change says the curvature
    asks for). L-BFGS (Nocedal, 1980) keeps only the last ``m`` pairs and applies ``H`` to
    ``-g`` without forming it: the first loop peels the rank-two updates from the newest
    pair back, scaling by the initial guess ``H0 = y.s / y.y`` (the curvature along the
    last step), and the second loop adds them back oldest first. A pair is stored only if
    ``y.s > 1e-10``: the curvature condition that keeps ``H`` positive definite (so ``d`` is
    a descent direction). The strong-Wolfe search (More & Thuente; minFunc's bracketing and
    cubic zoom) picks a step with sufficient decrease and a flattened slope, which
    guarantees ``y.s > 0``.

    torch's specifics kept: the first step is scaled by ``min(1, 1 / ||g||_1)``; all
    parameters form one flat vector (``torch.cat`` of the gradients, a missing gradient
    counts as zeros); without a line search the closure is not re-evaluated after the
    last iteration; the state (``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``,
    ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``) lives under
    the first parameter. Dot products and the sum of ``|g|`` go through NumPy's BLAS, not
    torch's, so they may differ in the last bit; the rest follows torch's operation order.

    Parameters
    ----------
    params : iterable
        One group only (``ValueError`` otherwise, as torch).
    lr : float or 0-d ndarray, default 1
    max_iter : int, default 20
        Iterations per ``step``.
    max_eval : int or None, default None
        Closure evaluations per ``step``; None is ``max_iter * 5 // 4``.
    tolerance_grad : float, default 1e-7
    tolerance_change : float, default 1e-9
    history_size : int, default 100
    line_search_fn : None or "strong_wolfe", default None
    maximize : bool, default False (keyword-only)
        Maximise the closure's loss: every loss and gradient the iterations read is negated
        (torch 2.14's ``maximize``; torch 2.13's LBFGS does not take it, so the torch twin of
        a maximizing LBFGS needs torch 2.14 or later). ``step`` still returns the closure's
        first loss as it came.
    """

    state_keys = optimizer("LBFGS").state_keys

    def __init__(self, params: Iterable[Any], lr: Any = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, *, maximize: bool = False) -> None:
        check_lr(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn,
                    "maximize": maximize}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params: list[Parameter] = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """The one group (a second raises ``ValueError``, torch's message: LBFGS has one)."""
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    def _state_shape(self, p: Parameter, key: str) -> tuple[int, ...]:
        if key in ("d", "prev_flat_grad"):
            return (sum(q.data.size for q in self._params),)
        return p.data.shape

    # -- the flat vector of all parameters ------------------------------------------------
    def _maximize(self) -> bool:
        # a group loaded from a state dict of torch before 2.14 has no "maximize"
        return bool(self.param_groups[0].get("maximize", False))

    def _gather_flat_grad(self) -> np.ndarray:
        flat = np.concatenate([np.zeros(p.data.size, p.data.dtype) if p.grad is None
                               else _dense(p.grad).reshape(-1) for p in self._params])
        return np.negative(flat, out=flat) if self._maximize() else flat

    def _loss(self, value: Any) -> float:
        """The closure's loss as the iterations read it (negated when maximizing)."""
        return -float(value) if self._maximize() else float(value)

    def _add_grad(self, step_size: Any, update: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            n = p.data.size
            K.add_(p.data, update[offset:offset + n].reshape(p.data.shape), step_size)
            offset += n

    def _directional_evaluate(self, closure: Callable[[], Any], x: list[np.ndarray], t: Any,
                              d: np.ndarray) -> tuple[float, np.ndarray]:
        self._add_grad(t, d)
        loss = self._loss(closure())
        flat_grad = self._gather_flat_grad()
        for p, saved in zip(self._params, x, strict=True):
            p.data[...] = saved
        return loss, flat_grad

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations; returns the closure's first loss."""
        if closure is None:
            raise TypeError("LBFGS.step() needs a closure that re-evaluates the loss and "
                            "refills the gradients")
        group = self.param_groups[0]
        lr = K.as_scalar(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = self._loss(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        opt_cond = np.abs(flat_grad).max() <= tolerance_grad
        if opt_cond:
            return orig_loss

        # the memory of the previous steps (None before the first iteration ever)
        d: Any = state.get("d")
        t: Any = state.get("t")
        old_dirs: Any = state.get("old_dirs")
        old_stps: Any = state.get("old_stps")
        ro: Any = state.get("ro")
        h_diag: Any = state.get("H_diag")
        prev_flat_grad: Any = state.get("prev_flat_grad")
        prev_loss: Any = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, h_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * K.scalar(t, d.dtype)
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(_as_state(1.0 / ys))
                    h_diag = _as_state(ys / y.dot(y))
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = _as_state(old_stps[i].dot(q) * ro[i])
                    K.add_(q, old_dirs[i], -al[i])
                d = r = q * K.scalar(h_diag, q.dtype)
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    K.add_(r, old_stps[i], al[i] - be_i)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = [p.data.copy() for p in self._params]

                def obj_func(x: list[np.ndarray], step: Any, direction: np.ndarray
                             ) -> tuple[float, np.ndarray]:
                    return self._directional_evaluate(closure, x, step, direction)

                loss, flat_grad, t, ls_func_evals = strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd,
                    max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    loss = self._loss(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * K.scalar(t, d.dtype)).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update({"d": d, "t": _as_state(t), "old_dirs": old_dirs, "old_stps": old_stps,
                      "ro": ro, "H_diag": h_diag, "prev_flat_grad": prev_flat_grad,
                      "prev_loss": prev_loss})
        return orig_loss
