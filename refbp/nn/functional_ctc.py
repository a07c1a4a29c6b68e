"""Connectionist temporal classification (CTCLoss): the alpha-beta recursion in log space, as
torch's CPU kernel (``aten/src/ATen/native/LossCTC.cpp``) computes it.

For one sample with log-probabilities lp (T, C), target l (S,) and the extended target
l' = (blank, l_1, blank, l_2, ..., l_S, blank) of 2S + 1 states:

- alpha_0(0) = lp_0(blank), alpha_0(1) = lp_0(l_1), -inf elsewhere;
  alpha_t(s) = log(sum of exp alpha_{t-1}(s'), s' in {s, s-1, s-2}) + lp_t(l'_s), where the
  skip from s-2 is allowed only onto a label that differs from l'_{s-2};
- nll = -log(exp alpha_{T-1}(2S) + exp alpha_{T-1}(2S-1));
- beta the same recursion backwards from t = T-1 (beta_t includes lp_t(l'_s) too).

Each log of a sum is torch's ``log(sum exp(a_i - m)) + m`` with m the largest term (0 when
all are -inf), so the rounding follows torch's.

Backward (torch's ``ctc_loss_backward``): with the posterior mass of class c at time t,
post_t(c) = exp(log sum_{s: l'_s = c} exp(alpha_t(s) + beta_t(s)) + nll - lp_t(c)),

grad_t(c) = (exp(lp_t(c)) - post_t(c)) g   for t < T,   0 for t >= T (the padding).

This is **not** d nll / d lp (that is -post_t(c)): torch returns the gradient with respect to
the logits z of lp = log_softmax(z), folding log_softmax's backward in (sum_c exp(lp_t(c)) =
1 and sum_c post_t(c) = 1 make the logit gradient exp(lp) - post). Fed through LogSoftmax's
backward it stays the same (its class sum is 0), so the logits' gradient is right; refbp
returns torch's value, as the parity checks require.
"""

from __future__ import annotations

import numpy as np


def _log_sum(*terms: np.ndarray) -> np.ndarray:
    """log(sum exp(terms)) as torch writes it: the largest term m (0 when -inf) taken out."""
    m = np.maximum.reduce(terms)
    m = np.where(np.isneginf(m), 0, m)
    with np.errstate(divide="ignore"):  # every term -inf: log 0 = -inf, as torch
        return np.log(sum(np.exp(t - m) for t in terms)) + m


def extended(target: np.ndarray, blank: int) -> np.ndarray:
    """l' = (blank, l_1, blank, ..., l_S, blank)."""
    ext = np.full(2 * len(target) + 1, blank, dtype=np.int64)
    ext[1::2] = target
    return ext


def _skip(ext: np.ndarray) -> np.ndarray:
    """Whether state s may be reached from s - 2 (a label that differs from l'_{s-2})."""
    ok = np.zeros(len(ext), bool)
    ok[2:] = ext[2:] != ext[:-2]
    return ok


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` moved k states later (k > 0) or earlier (k < 0), -inf filled."""
    out = np.full_like(a, -np.inf)
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def ctc_alpha(lp: np.ndarray, ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log alphas (T, 2S + 1) of one sample and its nll (0-d)."""
    t_len, n = lp.shape[0], len(ext)
    alpha = np.full((t_len, n), -np.inf, dtype=lp.dtype)
    skip = _skip(ext)
    if t_len == 0:
        return alpha, np.asarray(np.inf if n > 1 else 0.0, lp.dtype)
    alpha[0, 0] = lp[0, ext[0]]
    if n > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, t_len):
        prev = alpha[t - 1]
        alpha[t] = _log_sum(prev, _shift(prev, 1), np.where(skip, _shift(prev, 2), -np.inf)
                            ) + lp[t, ext]
    last = alpha[t_len - 1]
    ll = _log_sum(last[n - 1], last[n - 2]) if n > 1 else _log_sum(last[0])
    return alpha, np.asarray(-ll, lp.dtype)


def ctc_beta(lp: np.ndarray, ext: np.ndarray) -> np.ndarray:
    """The log betas (T, 2S + 1) of one sample (torch's recursion from the end)."""
    t_len, n = lp.shape[0], len(ext)
    beta = np.full((t_len, n), -np.inf, dtype=lp.dtype)
    if t_len == 0:
        return beta
    skip_to = np.zeros(n, bool)  # whether s + 2 may be reached from s
    skip_to[:-2] = _skip(ext)[2:]
    beta[t_len - 1, n - 1] = lp[t_len - 1, ext[n - 1]]
    if n > 1:
        beta[t_len - 1, n - 2] = lp[t_len - 1, ext[n - 2]]
    for t in range(t_len - 2, -1, -1):
        nxt = beta[t + 1]
        beta[t] = _log_sum(nxt, _shift(nxt, -1), np.where(skip_to, _shift(nxt, -2), -np.inf)
                           ) + lp[t, ext]
    return beta


def ctc_grad(lp: np.ndarray, ext: np.ndarray, alpha: np.ndarray, nll: np.ndarray,
             g: float) -> np.ndarray:
    """torch's gradient (T, C) of one sample for upstream g: (exp(lp) - post) g (see the
    module docstring)."""
    beta = ctc_beta(lp, ext)
    ab = alpha + beta
    lcab = np.full(lp.shape, -np.inf, dtype=lp.dtype)
    for c in np.unique(ext):
        cols = ab[:, ext == c]
        m = np.max(cols, axis=1)
        m = np.where(np.isneginf(m), 0, m)
        with np.errstate(divide="ignore"):
            lcab[:, c] = np.log(np.sum(np.exp(cols - m[:, None]), axis=1)) + m
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.exp(lp) - np.exp(lcab + nll - lp)) * g
