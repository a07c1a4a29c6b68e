"""Building blocks of the built-in suites: op checks, training scenarios, small MLPs and the
data sets they share (``refbp.parity.suites`` and ``refbp.parity.suites.options`` use them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from refbp.dtypes import DTYPE_NAMES, FLOAT_TYPES
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.registry.optimizers import optimizer
from refbp.tolerances import OVERRIDES, merge_overrides

DTYPES = DTYPE_NAMES
SHORT = {t.name: t.short for t in FLOAT_TYPES}


def op_check(name: str, layers: Iterable[Spec], loss: Spec, data: DataSpec, dtype: str,
             description: str, tolerance: dict[str, float] | None = None,
             target_grad: bool = False) -> Scenario:
    """An op check: one forward and backward pass of the whole batch, no update
    (``target_grad``: the target's gradient compared too)."""
    return Scenario(name=f"op-{name}-{SHORT[dtype]}", model=tuple(layers), loss=loss,
                    data=data, batching="batch", batch_size=None, dtype=dtype, seed=0, steps=1,
                    tolerance=tolerance or {}, description=description,
                    target_grad=target_grad)


def mlp(inp: int, hidden: int, out: int, act: str = "Tanh", *,
        bias: bool = True) -> tuple[Spec, ...]:
    """Linear, activation, Linear (``bias=False``: weight matrices only)."""
    extra = {} if bias else {"bias": False}
    return (Spec("Linear", {"in_features": inp, "out_features": hidden, **extra}), Spec(act),
            Spec("Linear", {"in_features": hidden, "out_features": out, **extra}))


def optimizer_mlp(optimizer_name: str, inp: int, hidden: int, out: int) -> tuple[Spec, ...]:
    """:func:`mlp` for training with ``optimizer_name``: without biases when the optimizer
    takes 2-D parameters only (``OptimInfo.matrices_only``: Muon)."""
    return mlp(inp, hidden, out, bias=not optimizer(optimizer_name).matrices_only)


def optimizer_training(optimizer_name: str, prefix: str = "mlp-mse", hidden: int = 16
                       ) -> tuple[str, tuple[Spec, ...], DataSpec]:
    """The scenario prefix, model and data a training run with ``optimizer_name`` uses:
    ``prefix``, :func:`optimizer_mlp` (4-hidden-3) and the regression data; for an optimizer of
    sparse gradients (``OptimInfo.sparse_grads``: SparseAdam) ``emb-mse``, an
    ``Embedding(10, 3, sparse=True)`` and :data:`TOKEN_DATA`."""
    if optimizer(optimizer_name).sparse_grads:
        return "emb-mse", (Spec("Embedding", {"num_embeddings": 10, "embedding_dim": 3,
                                              "sparse": True}),), TOKEN_DATA
    return prefix, optimizer_mlp(optimizer_name, 4, hidden, 3), REG_DATA


def optimizer_batching(optimizer_name: str) -> str:
    """``"batch"`` for an optimizer whose step re-evaluates the loss through a closure
    (``OptimInfo.closure``: L-BFGS expects a deterministic objective), else ``"minibatch"``."""
    return "batch" if optimizer(optimizer_name).closure else "minibatch"


def optimizer_tolerance(optimizer_name: str, dtype: str,
                        float32_key: str | None = None) -> dict[str, float] | None:
    """The tolerance exceptions of a scenario training with ``optimizer_name``: the
    optimizer's own in ``dtype`` (``OptimInfo.tolerance``), then ``float32_key`` in float32
    (keys of ``refbp.tolerances.OVERRIDES``); None when there is none."""
    keys = [optimizer(optimizer_name).tolerance.get(dtype),
            float32_key if dtype == "float32" else None]
    merged = merge_overrides(*(OVERRIDES[k] for k in keys if k is not None))
    return merged or None


def train(name: str, model: tuple[Spec, ...], loss: Spec, opt: Spec, data: DataSpec, dtype: str,
          *, steps: int = 20, batching: str = "minibatch", batch_size: int | None = 8,
          scheduler: Spec | None = None, seed: int = 0, description: str = "",
          tolerance: dict[str, float] | None = None, **options: Any) -> Scenario:
    """A training scenario; ``options`` are further :class:`Scenario` fields (``training``,
    ``clip_grad_norm``, ``micro_batches``, ``checkpoint``, ``scheduler_epoch``)."""
    return Scenario(name=f"{name}-{SHORT[dtype]}" + (f"-s{seed}" if seed else ""), model=model,
                    loss=loss, optimizer=opt, scheduler=scheduler, data=data, batching=batching,
                    batch_size=batch_size if batching == "minibatch" else None, dtype=dtype,
                    seed=seed, steps=steps, description=description,
                    tolerance=tolerance or {}, **options)


# Op-check data (16 samples, 5 features) and training data (64 samples, 4 features).
SMALL_REG = DataSpec("regression", n=16, features=5, outputs=5)
SMALL_CLS = DataSpec("classification", n=16, features=5, outputs=5)
REG_DATA = DataSpec("regression", n=64, features=4, outputs=3)
CLS_DATA = DataSpec("classification", n=64, features=4, outputs=3)
BIN_DATA = DataSpec("binary", n=64, features=4, outputs=1)
#: Token sequences (vocabulary 10, length 4) with a target vector per token: the training
#: data of an optimizer of sparse gradients (an Embedding(sparse=True) and MSE).
TOKEN_DATA = DataSpec("tokens", n=64, features=10, outputs=3,
                      extra={"seq_len": 4, "target": "steps"})
