"""``CyclicLR`` and ``ChainedScheduler`` (torch 2.13 semantics); import them from
``refbp.optim.lr_scheduler``."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from typing import Any

from refbp.optim.lr_scheduler_base import (
    LRScheduler,
    WrapsSchedulers,
    _format_param,
    _group_values,
    check_optimizer,
    check_wrapped,
    set_group_value,
)

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (Smith, 2017): the lr runs between ``base_lr`` and ``max_lr``.

    With ``T = step_size_up + step_size_down`` and ``r = step_size_up / T``, at step ``t``
    (``last_epoch``, counted in batches)::

        cycle = floor(1 + t / T)                      (1, 2, ...)
        x     = 1 + t / T - cycle                     (position in the cycle, [0, 1))
        s     = x / r            if x <= r            (rising)
                (x - 1) / (r - 1) otherwise           (falling)
        lr    = base_lr + (max_lr - base_lr) * s * scale(c)

    where ``scale`` is 1 (``triangular``), ``1 / 2^(cycle - 1)`` (``triangular2``: the
    amplitude halves every cycle) or ``gamma^t`` (``exp_range``), and ``c`` is ``cycle``
    (``scale_mode="cycle"``) or ``t`` (``"iterations"``); the modes set their own scale
    mode, a custom ``scale_fn`` takes ``scale_mode``. With ``cycle_momentum`` the momentum
    (``betas[0]`` for an optimizer with ``betas``) runs the other way,
    ``max_momentum - (max_momentum - base_momentum) * s * scale(c)``, and the constructor
    sets it to ``max_momentum`` and records ``max_momentum``/``base_momentum`` in each group.

    Not chainable: the rates are recomputed from ``base_lr`` every step, exactly in torch's
    order of operations. As torch, the constructor sets every group's lr to ``base_lr``
    (``last_epoch=-1``). ``state_dict()`` stores a custom ``scale_fn`` only when it is a
    callable object (as its ``__dict__``), as torch.
    """

    def __init__(self, optimizer: Any, base_lr: float | list[float], max_lr: float | list[float],
                 step_size_up: int = 2000, step_size_down: int | None = None,
                 mode: str = "triangular", gamma: float = 1.0,
                 scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum: float = 0.8,
                 max_momentum: float = 0.9, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = _format_param("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                set_group_value(group, "lr", lr)
        self.max_lrs = _format_param("max_lr", optimizer, max_lr)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in CYCLIC_MODES and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in defaults
            self.base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_mom, b_mom, group in zip(self.max_momentums, self.base_momentums,
                                               optimizer.param_groups, strict=True):
                    self._set_momentum(group, m_mom)
                    group["max_momentum"] = m_mom
                    group["base_momentum"] = b_mom
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        """The mode's scale function and scale mode (a custom ``scale_fn`` keeps its own)."""
        if self._scale_fn_custom is not None:
            return
        if self.mode in ("triangular", "triangular2"):
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self.scale_mode = "iterations"

    def scale_fn(self, x: float) -> float:
        """The amplitude factor at ``x`` (the cycle or the iteration, per ``scale_mode``)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return float(self.gamma**x)

    def _set_momentum(self, group: dict[str, Any], value: Any) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _compute_lr(self) -> list[Any]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        at = cycle if self.scale_mode == "cycle" else self.last_epoch
        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True):
            base_height = (max_lr - base_lr) * scale_factor
            lrs.append(base_lr + base_height * self.scale_fn(at))
        if self.cycle_momentum:
            for group, base_m, max_m in zip(self.optimizer.param_groups, self.base_momentums,
                                            self.max_momentums, strict=True):
                base_height = (max_m - base_m) * scale_factor
                self._set_momentum(group, max_m - base_height * self.scale_fn(at))
        return lrs

    def state_dict(self) -> dict[str, Any]:
        """As the base class; a custom ``scale_fn`` is kept only as a callable object's
        ``__dict__`` (a function or lambda becomes ``None``), as torch."""
        state = self._own_state("_scale_fn_custom")
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (fn.__dict__.copy() if fn is not None
                                     and not isinstance(fn, types.FunctionType) else None)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As the base class; a saved callable object's ``__dict__`` updates the current
        ``scale_fn`` (torch's rule). torch's own state dict (no ``_scale_fn_ref``, which
        refbp does not keep either) loads as is."""
        fn = state_dict.get("_scale_fn_custom")
        self._load_own_state(state_dict, "_scale_fn_custom")
        if fn is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_fn()


class ChainedScheduler(WrapsSchedulers):
    """Step several schedulers of one optimizer together, in order, every ``step()``.

    Each chainable scheduler scales the lr the previous one wrote, so the rate is the
    product of their factors (e.g. ``ConstantLR`` warm-up times ``ExponentialLR`` decay).
    Unlike ``SequentialLR`` it does not undo their initial steps: each already stepped once
    when it was built. ``optimizer`` defaults to the first scheduler's; every scheduler must
    belong to it, and ``ReduceLROnPlateau`` (its ``step`` takes a metric) is refused, with
    torch's messages. ``state_dict()`` holds the wrapped schedulers' state dicts under
    ``_schedulers``.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Any = None) -> None:
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{name} expects at least one scheduler to be chained, but got "
                             "no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        check_wrapped(name, optimizer, schedulers)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _group_values(self._schedulers[-1].optimizer, "lr")

    def step(self, epoch: int | None = None) -> None:
        """Step every scheduler in order (``epoch`` is not supported)."""
        if epoch is not None:
            raise TypeError("ChainedScheduler.step() takes no epoch argument")
        for sched in self._schedulers:
            sched.step()
        self._last_lr = _group_values(self._schedulers[-1].optimizer, "lr")
