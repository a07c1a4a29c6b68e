r"""Weight averaging, as ``torch.optim.swa_utils``: ``AveragedModel`` (SWA and EMA),
the averaging functions, ``SWALR`` and ``update_bn`` (no torch).

Stochastic weight averaging (Izmailov et al., 2018) keeps the running mean of the weights
visited late in training, ``W_swa <- W_swa + (W - W_swa) / (n + 1)`` after ``n`` models
(the incremental form of the mean of all ``n + 1``); an exponential moving average keeps
``W_ema <- decay * W_ema + (1 - decay) * W``. Both end in wider optima than the last iterate.
The first ``update_parameters`` copies the model; later ones apply the averaging function.
Averaged weights have no batch-norm statistics of their own: ``update_bn`` recomputes them
with one pass over the data (cumulative averages, ``momentum=None``), or ``use_buffers=True``
averages the buffers with the parameters.

torch's arithmetic, kept:

- SWA (the default, ``avg_fn=None`` on the CPU) is ``avg + (cur - avg) / (n + 1)`` with ``n``
  an integer; ``get_swa_multi_avg_fn`` is ``avg.lerp_(cur, w)`` with the weight
  ``w = 1 / (n + 1)`` a 0-d tensor of the default dtype (float32 unless the default dtype is
  float64, ``refbp.optim.default_dtype``), so ``w`` is rounded to float32 first.
- EMA: ``get_ema_avg_fn`` is ``decay * ema + (1 - decay) * cur``; ``get_ema_multi_avg_fn``
  is ``ema.lerp_(cur, 1 - decay)`` (torch's two-formula lerp, ``refbp.optim._kernels.lerp_``).
- ``n_averaged`` is an int64 buffer; without ``use_buffers`` the buffers are copied from the
  model at every update.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from refbp.nn.batchnorm import _BatchNorm
from refbp.nn.module import Module
from refbp.optim import _kernels as K
from refbp.optim.default_dtype import scalar_dtype
from refbp.optim.lr_scheduler_base import LRScheduler, _format_param

__all__ = ["SWALR", "AveragedModel", "AveragingFunctionsError", "get_ema_avg_fn",
           "get_ema_multi_avg_fn", "get_swa_avg_fn", "get_swa_multi_avg_fn", "update_bn"]

AvgFn = Callable[[np.ndarray, np.ndarray, Any], np.ndarray]
MultiAvgFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], Any], None]


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_multi_avg_fn(decay: float = 0.999) -> MultiAvgFn:
    """EMA over lists of arrays, in place: ``ema.lerp_(cur, 1 - decay)`` (float arrays;
    others ``ema * decay + cur * (1 - decay)``)."""
    _check_decay(decay)

    def ema_update(ema_list: Sequence[np.ndarray], cur_list: Sequence[np.ndarray],
                   _: Any) -> None:
        for ema, cur in zip(ema_list, cur_list, strict=True):
            if ema.dtype.kind == "f":
                K.lerp_(ema, cur, 1 - decay)
            else:
                ema[...] = ema * decay + cur * (1 - decay)
    return ema_update


def get_swa_multi_avg_fn() -> MultiAvgFn:
    """SWA over lists of arrays, in place: ``avg.lerp_(cur, 1 / (n + 1))`` with the weight a
    0-d tensor of the default dtype (float arrays); others ``avg += (cur - avg) / (n + 1)``."""

    def swa_update(avg_list: Sequence[np.ndarray], cur_list: Sequence[np.ndarray],
                   num_averaged: Any) -> None:
        n = int(num_averaged)
        for avg, cur in zip(avg_list, cur_list, strict=True):
            if avg.dtype.kind == "f":
                K.lerp_(avg, cur, scalar_dtype().type(1 / (n + 1)))
            else:
                avg[...] = avg + (cur - avg) / (n + 1)
    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """EMA of one array: ``decay * ema + (1 - decay) * cur`` (a new array)."""
    _check_decay(decay)

    def ema_update(ema: np.ndarray, cur: np.ndarray, num_averaged: Any) -> np.ndarray:
        dt = ema.dtype
        return K.scalar(decay, dt) * ema + K.scalar(1 - decay, dt) * cur
    return ema_update


def get_swa_avg_fn() -> AvgFn:
    """SWA of one array: ``avg + (cur - avg) / (n + 1)`` (a new array)."""

    def swa_update(avg: np.ndarray, cur: np.ndarray, num_averaged: Any) -> np.ndarray:
        return avg + (cur - avg) / avg.dtype.type(int(num_averaged) + 1)
    return swa_update


class AveragingFunctionsError(ValueError, AssertionError):
    """Both ``avg_fn`` and ``multi_avg_fn`` given to :class:`AveragedModel` (torch raises an
    ``AssertionError`` with this message; refbp's is also a ``ValueError``)."""


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and, with ``use_buffers``, buffers) hold a running
    average of ``model``'s, as ``torch.optim.swa_utils.AveragedModel``.

    Parameters
    ----------
    model : Module
        Deep-copied into ``self.module``; ``forward`` runs the copy.
    device : None
        Accepted for torch's signature; refbp computes on the CPU (anything else raises).
    avg_fn : callable, optional
        ``avg_fn(averaged, current, n_averaged) -> new averaged`` per array
        (``get_ema_avg_fn``, ``get_swa_avg_fn``, or your own).
    multi_avg_fn : callable, optional
        ``multi_avg_fn(averaged_list, current_list, n_averaged)``, in place
        (``get_ema_multi_avg_fn``, ``get_swa_multi_avg_fn``); not both.
    use_buffers : bool, default False
        Average the buffers too (BatchNorm statistics); else copy them from ``model``.

    Passing both ``avg_fn`` and ``multi_avg_fn`` raises :class:`AveragingFunctionsError`,
    torch's message, which is both an ``AssertionError`` (what torch raises, so code written
    for torch catches it) and a ``ValueError`` (what refbp raises for a bad argument).
    """

    def __init__(self, model: Module, device: Any = None, avg_fn: AvgFn | None = None,
                 multi_avg_fn: MultiAvgFn | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AveragingFunctionsError(
                "Only one of avg_fn and multi_avg_fn should be provided")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"refbp computes on the CPU; device={device!r} is not supported")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", np.zeros((), dtype=np.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``self.module(*args, **kwargs)``."""
        return self.module(*args, **kwargs)

    def backward(self, grad_out: Any) -> Any:
        """``self.module.backward(grad_out)``."""
        return self.module.backward(grad_out)

    def _arrays(self, model: Module, own: bool) -> list[np.ndarray]:
        if self.use_buffers:
            m = self.module if own else model
            return [p.data for p in m.parameters()] + [b for _, b in m.named_buffers()]
        if own:
            return [p.data for p in self.parameters()]
        return [p.data for p in model.parameters()]

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s parameters (and buffers) into this model; the first call copies
        them. Without ``use_buffers`` the buffers are copied from ``model``."""
        averaged, current = self._arrays(model, True), self._arrays(model, False)
        if len(averaged) != len(current):
            raise ValueError(f"AveragedModel holds {len(averaged)} arrays to average, the model "
                             f"{len(current)}: not a copy of the averaged model")
        n = int(self.n_averaged)
        if n == 0:
            for a, c in zip(averaged, current, strict=True):
                a[...] = c
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(averaged, current, self.n_averaged.copy())
        else:
            fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
            for a, c in zip(averaged, current, strict=True):
                a[...] = fn(a, c, self.n_averaged.copy())
        if not self.use_buffers:
            for (_, b_avg), (_, b_model) in zip(self.module.named_buffers(),
                                                model.named_buffers(), strict=True):
                b_avg[...] = b_model
        self.n_averaged[...] += 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute every BatchNorm's running statistics with one pass over ``loader``, as
    ``torch.optim.swa_utils.update_bn``: the statistics are reset, the momentum set to None
    (cumulative averages over the batches) and restored afterwards, the model run in training
    mode and put back in its mode. A batch that is a list or tuple is run on its first
    element."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"refbp computes on the CPU; device={device!r} is not supported")
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    for batch in loader:
        model(batch[0] if isinstance(batch, list | tuple) else batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    r"""Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs, then hold it
    (``torch.optim.swa_utils.SWALR``).

    With ``alpha(t)`` the annealing curve (``"cos"``: ``(1 - cos(pi t)) / 2``; ``"linear"``:
    ``t``) and ``t = min(1, step / anneal_epochs)``, torch recovers the lr the annealing
    started from out of the current one, ``lr0 = (lr - alpha(t_prev) swa_lr) / (1 -
    alpha(t_prev))``, and writes ``swa_lr * alpha(t) + lr0 * (1 - alpha(t))``; the same
    expressions here, so the rates are torch's bit for bit. ``state_dict()`` leaves out the
    annealing function (restored from ``_anneal_strategy``).
    """

    def __init__(self, optimizer: Any, swa_lr: float | list[float], anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for value, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: Any, swa_lr: Any, alpha: float) -> Any:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = (self._cosine_anneal if anneal_strategy == "cos"
                            else self._linear_anneal)

    def _compute_lr(self) -> list[Any]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha)
                    for g in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha)
                for g, lr in zip(self.optimizer.param_groups, prev_lrs, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and the annealing function."""
        return self._own_state("anneal_func")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes; the annealing function follows ``_anneal_strategy``."""
        self._load_own_state(state_dict)
        self._set_anneal_func(self._anneal_strategy)

