"""The rounding floor: how far a correct computation may move when its roundings change.

Two correct implementations of the same step (refbp in NumPy, torch with its own kernels) round
every intermediate result differently: another summation order, another ``tanh``, a fused
multiply-add. Their difference is then not zero but it is *explained by rounding*. This module
measures, per tensor, step and element, how large such a difference can be -- the *noise
floor* -- by running an ensemble of refbp trajectories in which every intermediate is moved by
one unit in the last place (ulp) in a random direction, next to the unperturbed run.

Derivation
----------
To first order, the computed value of an element ``z`` of any tensor of the step is

    z_hat = z + sum_j (dz / dv_j) * delta_j,    |delta_j| <= u |v_j|,

where ``v_j`` runs over every intermediate the computation rounds (layer outputs, the values a
layer keeps for its backward pass, input gradients, parameter gradients, updated parameters and
optimizer state) and ``u`` is the unit roundoff of the dtype (``eps / 2``). Two correct
implementations differ by ``sum_j (dz/dv_j) (delta_j - delta'_j)``. The worst case is
``2 u sum_j |dz/dv_j v_j|``; rounding errors of independent operations behave like random
variables of mean zero, and the sum then concentrates around ``u sqrt(sum_j (dz/dv_j v_j)^2)``
(probabilistic rounding error analysis, Higham and Mary, SIAM J. Sci. Comput. 41 (2019)).

Moving every ``v_j`` by one ulp (``|delta_j| ~ 2 u |v_j|``) with an independent random sign, as
each ensemble member does, draws exactly this sum with random signs. Its spread over ``K``
members, ``s = max_k |z_k - z|``, estimates the random-sign sum from above for most draws;
the floor is ``FACTOR * s`` (``FACTOR`` = 8, ``MEMBERS`` = 3). The safety factor covers what
the perturbation model cannot see: roundings inside a single kernel's reduction (a dot product
of length n accumulates up to n roundings where the model sees one per operand). Measured on
the quick suite (every tensor of every step, float64 and float32), the largest ratio of the
actual refbp-vs-torch difference to ``s`` is reported by ``benchmarks/noise_floor.py``.

The members are whole trajectories, so the floor also carries what earlier steps did: a
gradient whose true value is 0 (a bias before BatchNorm, tied logits) is computed as a rounding
residue of either sign; Adam divides it by ``sqrt(v) + eps`` and the members move that
parameter by a different amount each, as refbp and torch do. Every later tensor that depends on
that parameter inherits the spread -- and nothing else does: a tensor that does not depend on
the noisy parameter keeps a floor of a few ulps, so a real difference there still fails.

What it is not: the members run refbp's code, so the floor measures the *conditioning of the
step* (how much rounding can move it), never whether refbp is right. A bug that changes a value
by more than a few ulps of rounding is outside the floor and fails. Zeros and +-1 stay exact
(the edges where functions change regime are never moved), non-finite values are left alone.

Cost: ``MEMBERS`` more refbp forward/backward passes and optimizer steps per step (no torch).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from refbp.data import Stream, stream_rng
from refbp.nn.module import Cache, Module
from refbp.parity.nudge import nudge
from refbp.parity.trial import RefbpSide, Trial

__all__ = ["FACTOR", "MEMBERS", "Ensemble", "instrument", "nudge", "refbp_copy"]

MEMBERS = 3
"""Perturbed trajectories run beside the unperturbed one."""

FACTOR = 8.0
"""Safety factor between the measured spread and the floor (see the module docstring)."""

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _nudge_nested(v: Any, rng: np.random.Generator) -> Any:
    if isinstance(v, tuple | list):
        return type(v)(_nudge_nested(i, rng) for i in v)
    if isinstance(v, dict):
        return {k: _nudge_nested(i, rng) for k, i in v.items()}
    return nudge(v, rng)


def _nudge_caches(module: Module, before: dict[str, int], rng: np.random.Generator) -> None:
    """Move what ``forward`` just stored for the backward pass (a ``Cache``, or arrays that
    were (re)assigned as attributes during the call)."""
    for name, value in list(module.__dict__.items()):
        if isinstance(value, Cache) and value._values is not None:
            value._values = _nudge_nested(value._values, rng)
        elif isinstance(value, np.ndarray) and before.get(name) != id(value):
            object.__setattr__(module, name, nudge(value, rng))


def instrument(module: Module, rng: np.random.Generator) -> None:
    """Make every computing submodule of ``module`` round its results one ulp differently.

    Each non-container module's ``forward`` inputs and output, the values it caches for
    backward, and its ``backward`` input and output are nudged (:func:`nudge`). Works on any
    refbp layer or loss that follows the layer contract (forward caches, backward returns the
    input gradient).
    """
    for m in module.modules():
        if type(m).__name__ in _CONTAINERS:
            continue
        _wrap(m, rng)


def _wrap(m: Module, rng: np.random.Generator) -> None:
    forward, backward = m.forward, m.backward

    def nudged_forward(*args: Any, **kwargs: Any) -> Any:
        before = {k: id(v) for k, v in m.__dict__.items() if isinstance(v, np.ndarray)}
        out = forward(*_nudge_nested(args, rng), **kwargs)
        _nudge_caches(m, before, rng)
        return _nudge_nested(out, rng)

    def nudged_backward(*args: Any, **kwargs: Any) -> Any:
        return _nudge_nested(backward(*_nudge_nested(args, rng), **kwargs), rng)

    object.__setattr__(m, "forward", nudged_forward)
    object.__setattr__(m, "backward", nudged_backward)


def _nudge_in_place(arrays: Iterable[np.ndarray], rng: np.random.Generator) -> None:
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            a[...] = nudge(a, rng)


def refbp_copy(trial: Trial) -> Trial:
    """A trial whose refbp objects (model, loss, optimizer, scheduler) are deep copies; the
    torch objects and the data are shared (only the refbp side of the copy is stepped)."""
    model, loss, opt, sched = copy.deepcopy((trial.model, trial.loss, trial.optimizer,
                                             trial.scheduler))
    return replace(trial, model=model, loss=loss, optimizer=opt, scheduler=sched)


class _Member(RefbpSide):
    """One perturbed refbp trajectory: every intermediate rounded one ulp differently."""

    def __init__(self, trial: Trial, rng: np.random.Generator) -> None:
        super().__init__(trial)
        self.rng = rng
        instrument(trial.model, rng)
        instrument(trial.loss, rng)
        self.values: dict[str, np.ndarray] = {}

    def advance(self, xb: np.ndarray, yb: np.ndarray, masks: list[np.ndarray] | None) -> None:
        t = self.trial
        self.masks = masks
        values = self.forward_backward(xb, yb)
        _nudge_in_place((p.grad for p in t.model.parameters() if p.grad is not None), self.rng)
        values = {k: np.array(v, copy=True) for k, v in values.items()}
        after = self.update(float(values["loss"]))
        if t.optimizer is not None:
            _nudge_in_place((p.data for p in t.model.parameters()), self.rng)
            _nudge_in_place((v for st in t.optimizer.state.values()
                             for k, v in st.items() if k != "step"), self.rng)
        values.update({k: np.array(v, copy=True) for k, v in after.items()})
        self.values = values


class Ensemble:
    """``members`` perturbed copies of a trial's refbp trajectory, stepped beside the real one.

    Build it from the trial *before* the first step (its refbp objects are deep-copied), call
    :meth:`step` with every batch, then :meth:`floor` for each tensor of that step.
    """

    def __init__(self, trial: Trial, *, seed: int, members: int = MEMBERS,
                 factor: float = FACTOR) -> None:
        self.factor = factor
        self.members = [_Member(refbp_copy(trial), stream_rng(seed, Stream.ENSEMBLE, k))
                        for k in range(members)]

    def step(self, xb: np.ndarray, yb: np.ndarray,
             masks: list[np.ndarray] | None = None) -> None:
        """Advance every member by one step on the batch ``(xb, yb)`` with the step's dropout
        ``masks`` (drawn by torch, shared by every side)."""
        for mem in self.members:
            mem.advance(xb, yb, masks)

    def spread(self, tensor: str, value: np.ndarray) -> np.ndarray | None:
        """Elementwise ``max_k |member_k - value|`` in float64 (None if a member lacks it)."""
        ref = np.asarray(value, dtype=np.float64)
        out = np.zeros(ref.shape)
        for mem in self.members:
            v = mem.values.get(tensor)
            if v is None or np.shape(v) != ref.shape:
                return None
            with np.errstate(invalid="ignore"):
                d = np.abs(np.asarray(v, dtype=np.float64) - ref)
            out = np.fmax(out, np.where(np.isfinite(d), d, 0.0))
        return out

    def floor(self, tensor: str, value: np.ndarray) -> np.ndarray | None:
        """The elementwise noise floor of ``tensor`` at this step: ``factor * spread``."""
        s = self.spread(tensor, value)
        return None if s is None else self.factor * s
