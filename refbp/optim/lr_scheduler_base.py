"""Scheduler machinery: the ``LRScheduler`` base and the non-chainable schedulers.

Import the schedulers from ``refbp.optim.lr_scheduler``. This module holds the base class
(with the param-group helpers every scheduler shares) and the schedulers that do not follow
the "scale the current lr" pattern: ``OneCycleLR`` and ``ReduceLROnPlateau``. The chainable
ones and ``SequentialLR`` live in ``refbp.optim.lr_scheduler``.

Semantics are torch 2.13's ``torch/optim/lr_scheduler.py``, line for line where it matters:
the same attribute names (so ``state_dict()`` has torch's keys and a torch scheduler state
dict loads here), the same floating-point expressions in the same order (so the learning
rates are bit-identical), the same validation messages. One deliberate difference: refbp does
not wrap ``optimizer.step`` to warn when ``scheduler.step()`` runs before it.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsFloat

import numpy as np

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


# -- param-group helpers (an ndarray lr is copied on read and filled in place on write) ------
def _copy_value(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _group_values(optimizer: Any, key: str) -> list[Any]:
    """``[group[key] for group in optimizer.param_groups]`` without aliasing arrays."""
    return [_copy_value(group[key]) for group in optimizer.param_groups]


def set_group_value(group: dict[str, Any], key: str, value: Any) -> None:
    """Set ``group[key]``, in place when it holds an array (a tensor lr stays that array)."""
    if isinstance(group[key], np.ndarray):
        group[key][...] = value
    else:
        group[key] = value


def _format_param(name: str, optimizer: Any, param: Any) -> list[Any]:
    """One value per param group: a list/tuple must match their number, a scalar is repeated."""
    n_groups = len(optimizer.param_groups)
    if isinstance(param, (list, tuple)):
        if len(param) != n_groups:
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has {n_groups}."
            )
        return [_copy_value(p) for p in param]
    return [_copy_value(param)] * n_groups


def per_group(optimizer: Any, value: Any, error: str) -> list[Any]:
    """One value per param group without copying: a list/tuple must match their number (else
    ``ValueError(error.format(expected=n_groups, got=len(value)))``), a scalar is repeated."""
    n_groups = len(optimizer.param_groups)
    if not isinstance(value, (list, tuple)):
        return [value] * n_groups
    if len(value) != n_groups:
        raise ValueError(error.format(expected=n_groups, got=len(value)))
    return list(value)


def check_optimizer(optimizer: Any) -> None:
    """Raise TypeError unless ``optimizer`` has ``param_groups`` (dicts with an ``lr``)."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
        raise TypeError(
            f"{type(optimizer).__name__} is not an Optimizer (expected an object whose "
            "param_groups is a list of dicts holding 'lr')"
        )


@contextmanager
def flag(obj: Any, name: str) -> Iterator[None]:
    """Set the boolean attribute ``name`` of ``obj`` for the duration of a block."""
    setattr(obj, name, True)
    try:
        yield
    finally:
        setattr(obj, name, False)


class LRScheduler:
    """Base class of every scheduler (torch.optim.lr_scheduler.LRScheduler).

    The constructor records ``initial_lr`` in each param group (``base_lrs``) and performs the
    initial step, so ``last_epoch`` is 0 after construction. ``step()`` increments
    ``last_epoch``, asks ``get_lr()`` for the new rates and writes them into the optimizer's
    ``param_groups``. Subclasses implement ``_compute_lr()`` (torch's ``get_lr`` body).

    Parameters
    ----------
    optimizer : Optimizer
        Anything with a ``param_groups`` list of dicts holding ``'lr'`` (refbp optimizers).
    last_epoch : int
        ``-1`` starts a new schedule; another value resumes one and needs ``'initial_lr'`` in
        every param group (KeyError otherwise, as in torch).
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy_value(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming scheduler with last_epoch >= 0."
                    )
        self.base_lrs: list[Any] = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        with flag(self, "_is_initial"):
            self.step()

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of every attribute except the optimizer (torch's keys)."""
        return self._own_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes from ``state_dict`` (refbp's or torch's); unknown keys raise."""
        self._load_own_state(state_dict)

    def _own_state(self, *exclude: str) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                if k != "optimizer" and k not in exclude}

    def _load_own_state(self, state_dict: dict[str, Any], *nested: str) -> None:
        """Validate the keys of ``state_dict``; copy all of them except ``nested`` ones."""
        expected = set(self.state_dict())
        unknown = sorted(set(state_dict) - expected)
        if unknown:
            raise KeyError(
                f"unexpected key(s) in {type(self).__name__} state_dict: {unknown}; "
                f"expected keys among {sorted(expected)}"
            )
        self.__dict__.update(
            {k: copy.deepcopy(v) for k, v in state_dict.items() if k not in nested})

    # -- learning rates ---------------------------------------------------------------------
    def get_last_lr(self) -> list[Any]:
        """The learning rates written by the last ``step()``, one per param group."""
        return self._last_lr

    def get_lr(self) -> list[Any]:
        """The next learning rates; warns outside ``step()`` (use ``get_last_lr``), as torch."""
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, "
                          "please use `get_last_lr()`.", UserWarning, stacklevel=2)
        return self._compute_lr()

    def _compute_lr(self) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def _scaled(self, factor: Any) -> list[Any]:
        """Every current group lr times ``factor`` (the chainable update)."""
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _unchanged(self) -> list[Any]:
        return _group_values(self.optimizer, "lr")

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (call after ``optimizer.step()``); ``epoch`` is deprecated."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        with flag(self, "_get_lr_called_within_step"):
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed: Callable[[], list[Any]] | None = getattr(
                    self, "_get_closed_form_lr", None)
                values = closed() if closed is not None else self.get_lr()
        self._apply(values)

    def _apply(self, values: list[Any]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            set_group_value(group, "lr", lr)
        self._last_lr: list[Any] = _group_values(self.optimizer, "lr")


def check_wrapped(name: str, optimizer: Any, schedulers: Any) -> None:
    """Validate the schedulers ``SequentialLR``/``ChainedScheduler`` wrap, with torch's
    messages: each has an ``optimizer``, none is ``ReduceLROnPlateau``, all share
    ``optimizer``."""
    for idx, sched in enumerate(schedulers):
        if not hasattr(sched, "optimizer"):
            raise TypeError(f"{name} at index {idx} should have `optimizer` as its attribute.")
        if isinstance(sched, ReduceLROnPlateau):
            raise ValueError(
                f"{name} does not support `ReduceLROnPlateau` scheduler as it requires "
                "additional kwargs to be specified when calling `step`, but got one at "
                f"index {idx} in the given schedulers sequence.")
        if optimizer != sched.optimizer:
            raise ValueError(
                f"{name} expects all schedulers to belong to the same optimizer, but got "
                f"scheduler {type(sched).__name__} at index {idx} has {sched.optimizer}, "
                f"which is different from {type(optimizer).__name__}.")


class WrapsSchedulers(LRScheduler):
    """The state of a scheduler that wraps others (``_schedulers``): its own attributes plus
    the list of the wrapped state dicts, as torch's ``SequentialLR``/``ChainedScheduler``."""

    _schedulers: list[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        """Own attributes plus ``_schedulers``: the list of the wrapped state dicts."""
        own = self._own_state("_schedulers")
        own["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return own

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state of this scheduler and of each of its child schedulers."""
        self._load_own_state(state_dict, "_schedulers")
        for sched, sd in zip(self._schedulers, state_dict["_schedulers"], strict=True):
            sched.load_state_dict(sd)


_ONE_CYCLE_PHASE_KEYS = ("start_lr", "end_lr", "start_momentum", "end_momentum")


def _phases(*rows: tuple[float, str, str, str, str]) -> list[dict[str, Any]]:
    return [{"end_step": r[0], **dict(zip(_ONE_CYCLE_PHASE_KEYS, r[1:], strict=True))}
            for r in rows]


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected positive integer {name}, but got {value}")
    return value


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin): warm up to ``max_lr``, then anneal far below.

    With ``initial_lr = max_lr / div_factor`` and ``min_lr = initial_lr / final_div_factor``,
    step ``t`` lies in a phase ``[s, e]`` (``e = pct_start * total_steps - 1`` for the first)
    and gets ``anneal(start, end, pct)`` with ``pct = (t - s) / (e - s)``:

    - cos:    ``end + (start - end) / 2 * (cos(pi * pct) + 1)``
    - linear: ``(end - start) * pct + start``

    Two phases (default): initial -> max -> min. ``three_phase``: initial -> max -> initial
    (symmetric) -> min. With ``cycle_momentum`` the momentum (or ``betas[0]`` when the
    optimizer has ``betas``) runs inversely, max_momentum -> base_momentum -> max_momentum.
    Not chainable; stepping past ``total_steps`` raises ValueError.
    """

    def __init__(
        self,
        optimizer: Any,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(epochs, "epochs")
                                * _positive_int(steps_per_epoch, "steps_per_epoch"))
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = _phases(
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"))
        else:
            self._schedule_phases = _phases(
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"))
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy}")
        self._anneal_func_type = anneal_strategy
        max_lrs = _format_param("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for idx, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = max_lrs[idx] / div_factor
                group["max_lr"] = max_lrs[idx]
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in defaults
            max_ms = _format_param("max_momentum", optimizer, max_momentum)
            base_ms = _format_param("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_mom, b_mom, group in zip(max_ms, base_ms, optimizer.param_groups,
                                               strict=True):
                    self._set_momentum(group, m_mom)
                    group["max_momentum"] = m_mom
                    group["base_momentum"] = b_mom
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: Any) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal_func(self, start: Any, end: Any, pct: float) -> Any:
        if self._anneal_func_type == "cos":
            cos_out = math.cos(math.pi * pct) + 1
            return end + (start - end) / 2.0 * cos_out
        return (end - start) * pct + start

    def _compute_lr(self) -> list[Any]:
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"Tried to step {step_num} times. "
                             f"The specified number of total steps is {self.total_steps}")
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == last:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lrs.append(self._anneal_func(group[phase["start_lr"]],
                                                 group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal_func(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start_step = phase["end_step"]
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric stops improving for ``patience`` steps.

    ``step(metric)``: the metric is *better* than ``best`` when (mode/threshold_mode)

    - min/rel: ``a < best * (1 - threshold)``     - min/abs: ``a < best - threshold``
    - max/rel: ``a > best * (threshold + 1)``     - max/abs: ``a > best + threshold``

    A better metric resets the bad-step counter, otherwise it grows; during ``cooldown`` steps
    after a reduction bad steps are ignored. When the counter exceeds ``patience`` every group
    gets ``new_lr = max(lr * factor, min_lr)``, applied only if ``lr - new_lr > eps``.
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: list[float] | float = 0, eps: float = 1e-8) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor
        check_optimizer(optimizer)
        self.optimizer = optimizer
        min_lrs = per_group(optimizer, min_lr, "expected {expected} min_lrs, got {got}")
        self.default_min_lr: float | None = (None if isinstance(min_lr, (list, tuple))
                                             else min_lr)
        self.min_lrs = min_lrs
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _group_values(optimizer, "lr")
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        """True while the cooldown after a reduction lasts (no new reduction then)."""
        return self.cooldown_counter > 0

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record one metric value and reduce the lr when it has plateaued."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` ({len(groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), "
                    "usually due to a new param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length of the `optimizer` "
                    "param groups.")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for i, group in enumerate(groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                set_group_value(group, "lr", new_lr)

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in {"min", "max"}:
            raise ValueError("mode " + mode + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + threshold_mode + " is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict (refbp's or torch's) and rebuild the comparison rule from it."""
        super().load_state_dict(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold,
                             threshold_mode=self.threshold_mode)
