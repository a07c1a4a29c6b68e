"""AdaptiveLogSoftmaxWithLoss: the adaptive softmax of Grave et al. (2017), with torch's names,
arguments, defaults, parameter layout, errors and return value.

The head is a :class:`refbp.nn.linear.Linear` named ``head`` and each cluster a
``Sequential(Linear, Linear)`` in the ``ModuleList`` named ``tail``, as in torch, so
``state_dict()`` keys match torch's (``head.weight``, ``head.bias``, ``tail.<i>.0.weight``,
``tail.<i>.1.weight``) and ``from_torch`` copies the weights by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from refbp._checks import as_float_array
from refbp.nn.container import ModuleList, Sequential
from refbp.nn.functional_cross_entropy import log_softmax
from refbp.nn.linear import Linear
from refbp.nn.module import Cache, Module


class ASMOutput(NamedTuple):
    """What :meth:`AdaptiveLogSoftmaxWithLoss.forward` returns (torch's ``_ASMoutput``)."""

    output: np.ndarray
    loss: np.ndarray


def check_cutoffs(cutoffs: Sequence[Any], n_classes: int) -> list[int]:
    """torch's validation of ``cutoffs`` (ValueError with torch's messages)."""
    values = list(cutoffs)
    if len(values) == 0:
        raise ValueError("cutoffs should be a sequence of length larger than 0")
    if (values != sorted(values) or min(values) <= 0 or max(values) > n_classes - 1
            or len(set(values)) != len(values) or any(int(c) != c for c in values)):
        raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in "
                         "an increasing order, where each value is between 1 and n_classes-1")
    return [int(c) for c in values]


def _one_hot_minus_softmax(logp: np.ndarray, index: np.ndarray) -> np.ndarray:
    """d logp[n, index_n] / d z[n, :] = e_{index_n} - softmax(z_n), one row per sample."""
    g = -np.exp(logp)
    g[np.arange(len(index)), index] += 1.0
    return g


class AdaptiveLogSoftmaxWithLoss(Module):
    r"""Adaptive softmax with its negative log-likelihood, as
    ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

    ``cutoffs`` [c_1, ..., c_K] (then c_{K+1} = n_classes) split the classes into the
    shortlist [0, c_1) and K clusters [c_i, c_{i+1}). The head is a Linear of ``in_features``
    to c_1 + K logits (bias if ``head_bias``): the shortlist's classes, then one logit per
    cluster. Cluster i is ``tail[i]`` = Linear(in_features, h_i, bias=False) then
    Linear(h_i, c_{i+1} - c_i, bias=False), h_i = int(in_features // div_value**(i+1)).

    Forward, for the input x (N, in_features) and class indices t (N,): with the head's
    log-probabilities a_n = log_softmax(x_n H^T + b), for t_n in the shortlist

        o_n = a_n[t_n]

    and for t_n in cluster i, with s_n = x_n A_i^T (A_i = ``tail[i][0].weight``), the
    cluster's logits c_n = s_n B_i^T (B_i = ``tail[i][1].weight``) and r_n = t_n - c_i,

        o_n = a_n[c_1 + i] + log_softmax(c_n)[r_n].

    ``forward`` returns the named pair (``output`` = o, ``loss`` = mean_n(-o_n)), as torch's
    ``_ASMoutput``; a cluster no target falls in is not evaluated (its parameters get no
    gradient, as in torch). An unbatched input (in_features,) takes a 0-d target and returns
    a 0-d output.

    Backward: with u_n the upstream gradient of o_n (``grad_output``, plus
    ``-grad_loss / N`` from the mean of -o), d log_softmax(z)[k] / dz = e_k - softmax(z), so

        G^head_n = u_n (e_{g_n} - softmax(x_n H^T + b))   (g_n = t_n or c_1 + i)
        G^i_n = u_n (e_{r_n} - softmax(c_n))              (the rows n of cluster i)

    and through the linear maps: dL/dH = (G^head)^T x, dL/db = sum_n G^head_n,
    dL/dB_i = (G^i)^T s, dL/ds = G^i B_i, dL/dA_i = (dL/ds)^T x_S (x_S the rows of
    cluster i), dL/dx = G^head H + the scatter of (dL/ds) A_i into the rows of cluster i.

    ``log_prob(x)`` is the full (N, n_classes) log-distribution (a_n[k] for the shortlist,
    a_n[c_1 + i] + log_softmax(c_n) on cluster i); ``predict(x)`` the most probable class, as
    torch computes it (the head's argmax when it falls in the shortlist). Both are forward
    only (refbp differentiates ``forward``), on a 2-D input as in torch.

    Errors as torch's: cutoffs not unique, positive, increasing integers below n_classes
    (ValueError); a target of rank > 1, input and target of mismatched batch sizes or ranks,
    a target outside [0, n_classes - 1] (RuntimeError).
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0, head_bias: bool = False, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        values = check_cutoffs(cutoffs, n_classes)
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.cutoffs = [*values, self.n_classes]
        self.div_value = div_value
        self.head_bias = bool(head_bias)
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(self.in_features, self.head_size, bias=self.head_bias, dtype=dtype,
                           generator=generator)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(self.in_features // (self.div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(
                Linear(self.in_features, hsz, bias=False, dtype=dtype, generator=generator),
                Linear(hsz, osz, bias=False, dtype=dtype, generator=generator)))
        self._cache = Cache("AdaptiveLogSoftmaxWithLoss")

    def _weights(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        first, second = self.tail[i]
        return first.weight.data, second.weight.data

    def _head_logits(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.head.weight.data.T
        return z if self.head.bias is None else z + self.head.bias.data

    def _batch(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        """torch's checks of the shapes; the input as (N, in_features), the target as (N,)."""
        x = as_float_array(input, "AdaptiveLogSoftmaxWithLoss input")
        t = np.asarray(target)
        if t.ndim == 1:
            if x.shape[0] != t.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch "
                                   "dimension.")
            if x.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found "
                                   f"inputs with size {tuple(x.shape)}")
        elif t.ndim == 0:
            if x.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found "
                                   f"inputs with size {tuple(x.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if t.dtype.kind not in "iu":
            raise RuntimeError(f"expected an integer target (class indices), got dtype "
                               f"{t.dtype}")
        if x.shape[-1] != self.in_features:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                               f"({x.reshape(-1, x.shape[-1]).shape[0]}x{x.shape[-1]} and "
                               f"{self.in_features}x{self.head_size})")
        return x.reshape(-1, x.shape[-1]), t.reshape(-1).astype(np.int64)

    def forward(self, input: Any, target: Any) -> ASMOutput:
        """The target's log-probability per sample and the mean negative log-likelihood."""
        x, t = self._batch(input, target)
        output = np.zeros(len(t), dtype=x.dtype)
        gather = t.copy()
        clusters = []
        used = int(np.count_nonzero((t >= 0) & (t < self.shortlist_size)))
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = np.flatnonzero((t >= low) & (t < high))
            if rows.size == 0:
                continue
            a, b = self._weights(i)
            s = x[rows] @ a.T
            logp = log_softmax(s @ b.T)
            rel = t[rows] - low
            output[rows] = logp[np.arange(rows.size), rel]
            gather[rows] = self.shortlist_size + i
            clusters.append((i, rows, s, logp, rel))
            used += rows.size
        if used != len(t):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but "
                               f"values in range [{t.min()}, {t.max()}] were found. ")
        head_logp = log_softmax(self._head_logits(x))
        output += head_logp[np.arange(len(t)), gather]
        loss = np.asarray(-output.mean() if len(t) else np.nan, dtype=x.dtype)
        self._cache.save(x=x, head_logp=head_logp, gather=gather, clusters=clusters,
                         shape=np.shape(input))
        return ASMOutput(output.reshape(np.shape(target)), loss)

    def backward(self, grad_loss: float = 1.0, grad_output: Any = None) -> np.ndarray:
        """d objective / d input, given d objective / d loss (``grad_loss``, 1 by default:
        torch's ``loss.backward()``) and d objective / d output (``grad_output``, none by
        default); accumulates the head's and the evaluated clusters' parameter gradients.
        Call it once per forward pass."""
        c = self._cache.load()
        x, head_logp, gather = c["x"], c["head_logp"], c["gather"]
        n = len(gather)
        u = np.zeros(n, dtype=x.dtype) if grad_output is None else np.array(
            np.broadcast_to(np.asarray(grad_output, dtype=x.dtype).reshape(-1), (n,)))
        if n:
            u -= np.asarray(grad_loss, dtype=x.dtype) / n
        g_head = u[:, None] * _one_hot_minus_softmax(head_logp, gather)
        grad_x = g_head @ self.head.weight.data
        self.head.weight.accumulate(g_head.T @ x, owned=True)
        if self.head.bias is not None:
            self.head.bias.accumulate(g_head.sum(axis=0), owned=True)
        for i, rows, s, logp, rel in c["clusters"]:
            a, b = self._weights(i)
            g_c = u[rows, None] * _one_hot_minus_softmax(logp, rel)
            g_s = g_c @ b
            self.tail[i][1].weight.accumulate(g_c.T @ s, owned=True)
            self.tail[i][0].weight.accumulate(g_s.T @ x[rows], owned=True)
            grad_x[rows] += g_s @ a
        return grad_x.reshape(c["shape"])

    def _full_log_prob(self, x: np.ndarray, head_logits: np.ndarray) -> np.ndarray:
        head_logp = log_softmax(head_logits)
        out = np.empty((len(x), self.n_classes), dtype=x.dtype)
        out[:, :self.shortlist_size] = head_logp[:, :self.shortlist_size]
        for i in range(self.n_clusters):
            a, b = self._weights(i)
            out[:, self.cutoffs[i]:self.cutoffs[i + 1]] = (
                log_softmax((x @ a.T) @ b.T) + head_logp[:, self.shortlist_size + i, None])
        return out

    def _input_2d(self, input: Any) -> np.ndarray:
        x = as_float_array(input, "AdaptiveLogSoftmaxWithLoss input")
        if x.ndim != 2:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[-{max(x.ndim, 1)}, {max(x.ndim - 1, 0)}], but got 1)")
        return x

    def log_prob(self, input: Any) -> np.ndarray:
        """The log-probabilities of all ``n_classes`` classes, (N, n_classes)."""
        x = self._input_2d(input)
        return self._full_log_prob(x, self._head_logits(x))

    def predict(self, input: Any) -> np.ndarray:
        """The most probable class of each sample, (N,), computed as torch computes it."""
        x = self._input_2d(input)
        head_logits = self._head_logits(x)
        out = np.argmax(head_logits, axis=1)
        rest = out >= self.shortlist_size
        if rest.any():
            out[rest] = np.argmax(self._full_log_prob(x[rest], head_logits[rest]), axis=1)
        return out

    def extra_repr(self) -> str:
        """torch prints no arguments, only the children."""
        return ""
