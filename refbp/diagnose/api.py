"""The checks of user code: :func:`check_optimizer`, :func:`check_layer`, :func:`check_loss`.

Each check has two halves (:mod:`refbp.diagnose.check`): the user side loads and drives the
user's code and returns plain data, the verdict side recomputes the problem and runs torch,
the variants and the comparison. Code given as a spec string (``"path/to/file.py:Name"``,
``"package.module:Name"``) runs its side in a child process (:mod:`refbp.diagnose.isolation`,
as ``refbp check-*`` does), so nothing it does reaches the calling process or the verdict; an
object runs in the calling process (refbp never pickles, so it cannot hand an object to
another process), and so does a spec string with ``isolate=False``.
"""

from __future__ import annotations

from typing import Any

from refbp.diagnose.catalog import family
from refbp.diagnose.check import (
    LR_FACTOR,
    optimizer_user_run,
    optimizer_verdict,
    resolve_oracle,
)
from refbp.diagnose.check_layers import (
    DEFAULT_BATCH,
    check_layer_limits,
    layer_user_run,
    layer_verdict,
    loss_user_run,
    loss_verdict,
)
from refbp.diagnose.diagnosis import Diagnosis
from refbp.diagnose.guard import DEFAULT_TIMEOUT
from refbp.diagnose.isolation import check_in_child, wants_child

__all__ = ["check_layer", "check_loss", "check_optimizer"]


def check_optimizer(user: Any, like: str = "Adam", options: dict[str, Any] | None = None, *,
                    steps: int = 20, seed: int = 0, oracle: str = "auto",
                    lr_factor: float | None = LR_FACTOR, thread_noise: bool = False,
                    isolate: bool | None = None, timeout: float = DEFAULT_TIMEOUT) -> Diagnosis:
    """Check a user optimizer against ``torch.optim.<like>`` and the catalogued variants.

    Parameters
    ----------
    user : str, class, instance or factory
        ``"path/to/file.py:ClassName"`` or the object (see :mod:`refbp.diagnose.adapters`).
    like : str
        A declared family (``OptimInfo.families`` in :mod:`refbp.registry.optimizers`:
        ``"Adam"``, ``"SGD"``, ``"Rprop"``, ...).
    options : dict, optional
        Hyperparameters under torch's names, for both sides.
    steps, seed : int
        Length of the gradient sequence and its seed.
    oracle : {"auto", "torch", "refbp"}
    lr_factor : float or None
        The learning rate is multiplied by this factor after ``steps // 2`` steps (None: no
        change). Skipped, with a note, when the user's optimizer exposes no learning rate.
    thread_noise : bool
        Also measure how far torch moves from itself between thread counts 1 and 2 (two runs each).
    isolate : bool or None
        Run the user's code in a child process (:mod:`refbp.diagnose.isolation`), so that
        nothing it does (``os._exit``, a signal, patching NumPy or torch) reaches this process
        or the verdict; a process it ended raises :class:`UserCodeError` naming it. ``None``
        (default): isolated when ``user`` is a spec string, in this process when it is an
        object (refbp never pickles; ``isolate=True`` with an object is refused).
    timeout : float
        Seconds the isolated check may take (each side); past it, :class:`UserCodeError`
        names the call of the user's code that did not return.
    """
    resolve_oracle(oracle)
    if wants_child(user, isolate):
        return check_in_child("optimizer", user, like, options,
                              problem={"steps": steps, "seed": seed}, oracle=oracle,
                              thread_noise=thread_noise, timeout=timeout,
                              user_only={"lr_factor": lr_factor})
    run = optimizer_user_run(user, like, options, steps=steps, seed=seed, lr_factor=lr_factor)
    return optimizer_verdict(run, like, options, steps=steps, seed=seed, oracle=oracle,
                             thread_noise=thread_noise)



def check_layer(user: Any, like: str = "Linear", options: dict[str, Any] | None = None, *,
                steps: int = 3, batch: int = DEFAULT_BATCH, seed: int = 0, oracle: str = "auto",
                thread_noise: bool = False, isolate: bool | None = None,
                timeout: float = DEFAULT_TIMEOUT, allow_large: bool = False) -> Diagnosis:
    """Check a user layer (forward, backward, parameter gradients, buffers) against
    ``torch.nn.<like>`` and the catalogued variants.

    Sizes default to ``in_features=4, out_features=3`` (Linear), ``num_features=4``
    (BatchNorm1d) and 5 features (activations) and can be overridden in ``options``. The user
    layer is built from the parameter arrays, its own size names or positional sizes, or no
    arguments (see :mod:`refbp.diagnose.layer_styles`); its parameters are then set to the
    same seeded values as torch's. Its running statistics are read, never set.

    ``isolate`` and ``timeout``: as in :func:`~refbp.diagnose.check_optimizer` (by default a
    spec string runs in a child process, an object in this one). Sizes beyond
    :mod:`refbp.limits` (the layer's parameters, the activations of all steps) raise
    :class:`refbp.errors.LimitError` before the user's code runs; ``allow_large`` raises the
    limits 100-fold.
    """
    resolve_oracle(oracle)
    if wants_child(user, isolate):
        return check_in_child("layer", user, like, options,
                              problem={"steps": steps, "batch": batch, "seed": seed},
                              oracle=oracle, thread_noise=thread_noise, timeout=timeout,
                              allow_large=allow_large)
    family(like, "layer")
    check_layer_limits(like, options, {"steps": steps, "batch": batch}, allow_large)
    run = layer_user_run(user, like, options, steps=steps, batch=batch, seed=seed)
    return layer_verdict(run, like, options, steps=steps, batch=batch, seed=seed,
                         oracle=oracle, thread_noise=thread_noise)



def check_loss(user: Any, like: str = "MSELoss", options: dict[str, Any] | None = None, *,
               steps: int = 3, batch: int = DEFAULT_BATCH, seed: int = 0, oracle: str = "auto",
               thread_noise: bool = False, isolate: bool | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Diagnosis:
    """Check a user loss (value and d loss / d prediction) against ``torch.nn.<like>`` and
    the catalogued variants (``"MSELoss"``, ``"CrossEntropyLoss"`` or ``"BCELoss"``); see
    :mod:`refbp.diagnose.loss_styles` for the accepted styles.

    ``isolate`` and ``timeout``: as in :func:`~refbp.diagnose.check_optimizer`.
    """
    resolve_oracle(oracle)
    if wants_child(user, isolate):
        return check_in_child("loss", user, like, options,
                              problem={"steps": steps, "batch": batch, "seed": seed},
                              oracle=oracle, thread_noise=thread_noise, timeout=timeout)
    run = loss_user_run(user, like, options, steps=steps, batch=batch, seed=seed)
    return loss_verdict(run, like, options, steps=steps, batch=batch, seed=seed,
                        oracle=oracle, thread_noise=thread_noise)
