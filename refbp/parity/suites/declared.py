"""The op checks declared in ``refbp.registry``: each ``OpInfo`` sample as a scenario
(forward and every gradient of one batch, no update), and each ``defaults_check`` as a
``defaults-<id>`` scenario (the op built from its required arguments only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.suites.common import op_check as _op
from refbp.registry.opinfo import EXTREME, Data, OpInfo, Sample
from refbp.registry.ops import OPS, of_kind
from refbp.tolerances import OVERRIDES

_EXTREME_TEXT = "on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4)"


def _spec(layer: tuple[str, Mapping[str, Any]]) -> Spec:
    return Spec(layer[0], dict(layer[1]))


def _data(data: Data | None, model: list[Spec]) -> DataSpec:
    """The data of a sample; ``tensors`` with ``outputs=0`` get the target shape of the
    model's output on one input of ``(features, *size)``."""
    d = data or EXTREME
    if d.kind == "tensors" and d.outputs == 0:
        target = _output_shape(model, (d.features, *d.extra["size"]))
        return DataSpec(d.kind, n=d.n, features=d.features, outputs=int(np.prod(target)),
                        extra={**d.extra, "target_shape": target})
    return DataSpec(d.kind, n=d.n, features=d.features, outputs=d.outputs, extra=dict(d.extra))


def _output_shape(model: list[Spec], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample output shape of the refbp model ``model`` on one input of ``shape``."""
    from refbp import nn as rnn

    x = np.zeros((1, *shape))
    for spec in model:
        x = getattr(rnn, spec.type)(**spec.args)(x)
    return tuple(x.shape[1:])


def _tolerance(op: OpInfo, sample: Sample, dtype: str) -> dict[str, float]:
    """The sample's tolerance exception in ``dtype``, else the op's (none: {})."""
    key = sample.tolerance.get(dtype) or op.tolerance.get(dtype)
    return dict(OVERRIDES[key]) if key else {}


def _model(op: OpInfo, sample: Sample) -> tuple[list[Spec], Spec]:
    """The model and loss of a sample: a layer or activation between the sample's ``before``
    and ``after`` layers, closed by the sample's loss (``SSELoss`` by default); a loss after
    ``before`` (``Identity`` when empty)."""
    spec = Spec(op.name, dict(sample.options))
    before = [_spec(b) for b in sample.before]
    if op.kind == "loss":
        return before or [Spec("Identity")], spec
    return ([*before, spec, *(_spec(a) for a in sample.after)],
            _spec(sample.loss or ("SSELoss", {})))


def declared_op_checks(dtype: str, *kinds: str) -> list[Scenario]:
    """The op checks of every sample declared in ``refbp.registry`` for ops of ``kinds``
    (models as :func:`_model` builds them)."""
    out: list[Scenario] = []
    for op in of_kind(*kinds):
        for sample in op.samples:
            model, loss = _model(op, sample)
            if op.kind == "loss":
                text = sample.description or f"{loss.describe()} op check"
            else:
                text = sample.description or f"{op.name} {_EXTREME_TEXT}"
            out.append(_op(sample.id, model, loss, _data(sample.data, model), dtype, text,
                           tolerance=_tolerance(op, sample, dtype),
                           target_grad=op.target_grad and not sample.target_grad_note))
    return out


def declared_default_checks() -> list[Scenario]:
    """The ``defaults-<id>`` op checks, float64: every declared ``defaults_check``, the op
    built from its required arguments only (the harness builds each side from the specs, so
    a refbp default that differs from torch's fails)."""
    out: list[Scenario] = []
    for op in OPS:
        sample = op.defaults_check
        if sample is None:
            continue
        model, loss = _model(op, sample)
        text = f"{' > '.join(sp.describe() for sp in model)}, {loss.describe()}: defaults"
        out.append(_op(f"defaults-{sample.id}", model, loss, _data(sample.data, model),
                       "float64", text, tolerance=_tolerance(op, sample, "float64"),
                       target_grad=op.target_grad and not sample.target_grad_note))
    return out
