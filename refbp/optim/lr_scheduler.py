r"""Learning-rate schedulers with torch 2.13 semantics (``torch.optim.lr_scheduler``).

A scheduler owns no learning rate of its own: it rewrites ``group['lr']`` in the optimizer's
``param_groups``. Construction records ``group['initial_lr']`` (the *base lr*) and performs
the initial step (``last_epoch = 0``); each ``step()`` after ``optimizer.step()`` advances
``last_epoch`` and writes the next rates; ``get_last_lr()`` returns them.

Most torch schedulers are *chainable*: they multiply the **current** lr by a factor instead of
recomputing it from the base lr, so several schedulers can act on the same optimizer. refbp
keeps exactly that recursive arithmetic (e.g. ``CosineAnnealingLR``'s ratio of cosines) so the
rates agree with torch bit for bit, not just to rounding. The closed forms in the docstrings
are what the recursions approximate; ``step(epoch)`` (deprecated, warns) uses them.

Where things are: this module holds the chainable schedulers, ``CosineAnnealingWarmRestarts``
and ``SequentialLR``; the ``LRScheduler`` base, ``OneCycleLR`` and ``ReduceLROnPlateau`` are
implemented in ``refbp.optim.lr_scheduler_base``, ``CyclicLR`` and ``ChainedScheduler`` in
``refbp.optim.lr_scheduler_cyclic``; all are re-exported here.

``state_dict()`` holds every attribute except the optimizer, under torch's names (so a torch
scheduler's state dict loads here and vice versa); lambdas are stored as ``None`` (callable
objects as their ``__dict__``), as in torch.
"""

from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from refbp.optim.lr_scheduler_base import (
    EPOCH_DEPRECATION_WARNING,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    WrapsSchedulers,
    check_optimizer,
    check_wrapped,
    flag,
    per_group,
    set_group_value,
)
from refbp.optim.lr_scheduler_cyclic import ChainedScheduler, CyclicLR

__all__ = [
    "EPOCH_DEPRECATION_WARNING", "ConstantLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR",
    "MultiStepLR", "MultiplicativeLR", "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau",
    "SequentialLR", "StepLR", "CyclicLR", "ChainedScheduler",
]

LrLambda = Callable[[int], float]


class _LambdaScheduler(LRScheduler):
    """Shared plumbing of LambdaLR / MultiplicativeLR: one function per param group."""

    def __init__(self, optimizer: Any, lr_lambda: LrLambda | list[LrLambda],
                 last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        self.lr_lambdas: list[LrLambda] = per_group(
            optimizer, lr_lambda, "Expected {expected} lr_lambdas, but got {got}")
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """Attributes plus ``lr_lambdas``: ``None`` for functions, ``__dict__`` for objects."""
        state = self._own_state("lr_lambdas")
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._load_own_state(state_dict, "lr_lambdas")
        for fn, attrs in zip(self.lr_lambdas, state_dict["lr_lambdas"], strict=True):
            if attrs is not None:
                fn.__dict__.update(attrs)


class LambdaLR(_LambdaScheduler):
    r"""``lr_t = base_lr * lr_lambda(t)`` (one function, or a list with one per group)."""

    def _compute_lr(self) -> list[Any]:
        return [base_lr * lmbda(self.last_epoch)
                for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaScheduler):
    r"""``lr_t = lr_{t-1} * lr_lambda(t)`` for t >= 1 (chainable)."""

    def __init__(self, optimizer: Any, lr_lambda: LrLambda | list[LrLambda],
                 last_epoch: int = -1) -> None:
        for fn in lr_lambda if isinstance(lr_lambda, (list, tuple)) else [lr_lambda]:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, lr_lambda, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self._is_initial:
            return self._unchanged()
        return [group["lr"] * lmbda(self.last_epoch)
                for lmbda, group in zip(self.lr_lambdas, self.optimizer.param_groups,
                                        strict=True)]


class StepLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** (t // step_size)``; chainable: ``lr *= gamma`` at multiples.

    ``step_size`` must be a positive integer: torch accepts 0 (or a negative number) here and
    then fails with ZeroDivisionError (or decays at the wrong steps) during training; refbp
    refuses it when the scheduler is built.
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._unchanged()
        return self._scaled(self.gamma)

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** (number of milestones <= t)`` (repeated milestones count)."""

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self.last_epoch not in self.milestones:
            return self._unchanged()
        return self._scaled(self.gamma ** self.milestones[self.last_epoch])

    def _get_closed_form_lr(self) -> list[Any]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""``lr_t = base_lr * factor`` for ``t < total_iters``, then ``base_lr``.

    Chainable form: ``lr *= factor`` at t = 0 and ``lr *= 1 / factor`` at ``t = total_iters``.
    """

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self.last_epoch == 0:
            return self._scaled(self.factor)
        if self.last_epoch != self.total_iters:
            return self._unchanged()
        return self._scaled(1.0 / self.factor)

    def _get_closed_form_lr(self) -> list[Any]:
        done = self.last_epoch >= self.total_iters
        return [base_lr * (self.factor + done * (1 - self.factor)) for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Factor moving linearly from ``start_factor`` to ``end_factor`` over ``total_iters``.

    Closed form ``lr_t = base_lr * (s + (e - s) * min(t, T) / T)``; the chainable form used by
    ``step()`` multiplies by ``1 + (e - s) / (T * s + (t - 1) * (e - s))`` for 1 <= t <= T.
    """

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 "
                             "and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self.last_epoch == 0:
            return self._scaled(self.start_factor)
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._unchanged()
        slope = self.end_factor - self.start_factor
        return self._scaled(1.0 + slope / (self.total_iters * self.start_factor
                                           + (self.last_epoch - 1) * slope))

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** t``; chainable: ``lr *= gamma`` every step."""

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self._is_initial:
            return self._unchanged()
        return self._scaled(self.gamma)

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""``lr_t = base_lr * (1 - min(t, T) / T) ** power``.

    Chainable form: ``lr *= ((1 - t/T) / (1 - (t-1)/T)) ** power`` for 1 <= t <= T.
    """

    def __init__(self, optimizer: Any, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._unchanged()
        decay_factor = ((1.0 - self.last_epoch / self.total_iters)
                        / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return self._scaled(decay_factor)

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for base_lr in self.base_lrs]


def _cosine_closed_form(eta_min: float, base_lr: Any, t: float, period: float) -> Any:
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / period)) / 2`` (SGDR)."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps (no restart).

    Closed form (SGDR): ``eta_t = eta_min + (base_lr - eta_min) * (1 + cos(pi t / T_max)) / 2``.
    ``step()`` uses torch's recursion instead, which agrees with it up to rounding:

    ``eta_t = eta_min + (eta_{t-1} - eta_min) * (1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T))``

    except where the denominator vanishes (``(t - 1 - T) % 2T == 0``), where it adds
    ``(base_lr - eta_min) * (1 - cos(pi / T)) / 2``. Past ``T_max`` the lr climbs back up (the
    cosine keeps going), exactly as in torch.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        groups = self.optimizer.param_groups
        if self._is_initial:
            return self._unchanged()
        if self._step_count == 1 and self.last_epoch > 0:
            return [_cosine_closed_form(self.eta_min, b, self.last_epoch, self.T_max)
                    for b in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            bump = 1 - math.cos(math.pi / self.T_max)
            return [group["lr"] + (base_lr - self.eta_min) * bump / 2
                    for base_lr, group in zip(self.base_lrs, groups, strict=True)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [_cosine_closed_form(self.eta_min, b, self.last_epoch, self.T_max)
                for b in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR: cosine annealing restarted every ``T_i`` steps, ``T_{i+1} = T_mult * T_i``.

    ``eta_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` where ``T_cur``
    counts the steps since the last restart (closed form, so no recursion error).
    ``step(epoch)`` accepts a fractional epoch (e.g. ``epoch + i / iters``) without warning.
    """

    def __init__(self, optimizer: Any, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def _compute_lr(self) -> list[Any]:
        return [_cosine_closed_form(self.eta_min, b, self.T_cur, self.T_i) for b in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """Advance one step, or jump to (possibly fractional) ``epoch``."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        elif epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** (n)
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        with flag(self, "_get_lr_called_within_step"):
            values = self.get_lr()
        self._apply(values)


class SequentialLR(WrapsSchedulers):
    """Run ``schedulers[i]`` between ``milestones[i-1]`` and ``milestones[i]``.

    At construction every group lr is reset to ``initial_lr``, the initial steps of the
    wrapped schedulers are undone (``last_epoch -= 1``) and only the first one re-steps. At a
    milestone the next scheduler restarts through its closed form at epoch 0 (torch's
    ``_update_lr(0)``), afterwards it is stepped normally.
    """

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{name} expects at least one scheduler, but got no scheduler.")
        check_wrapped(name, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to {len(milestones)}")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            set_group_value(group, "lr", group["initial_lr"])
        self.recursive_undo()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Undo the initial step of every wrapped scheduler (recursively)."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self, epoch: int | None = None) -> None:
        """Step the scheduler that owns the new epoch (``epoch`` is not supported)."""
        if epoch is not None:
            raise TypeError("SequentialLR.step() takes no epoch argument")
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()
