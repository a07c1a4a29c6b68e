"""Check your own code against refbp and torch, from your own tests.

- :func:`assert_parity` / :func:`parity_table` / :func:`run_parity`: convert a torch model to
  refbp (``refbp.mirror.from_torch``), run both sides through the parity harness and raise a
  "refbp vs torch" AssertionError / return the tidy results table / return the raw result.
  With ``refbp_model=`` ("bring both halves") your own refbp module of the same structure is
  the refbp side instead of the conversion, paired with the torch model by ``state_dict``
  names (``refbp.testing.pairing``), so models with custom ``forward`` code can be checked.
- :func:`assert_close`: one array against a reference with the harness's tolerance, metrics
  and "refbp vs torch" message (no torch needed).
- :func:`check_gradients`: check the backward pass of your own NumPy layer (or a refbp module,
  or a function) against float64 finite differences and optionally a torch function.

The pytest plugin (``refbp.pytest_plugin``) wraps ``assert_parity`` in a ``parity`` fixture and
writes every check of a test session to one report (``--refbp-report DIR``).

Importing this package does not import torch; the parity functions do, on first use (so
``check_gradients`` without ``torch_fn`` works where torch is not installed).

Error messages for invalid arguments (asserted by the tests):

- unsupported operator: a model that is not a tree of known layers is captured with
  ``torch.export``; an ATen operator refbp does not declare raises ``cannot run Sequential in
  refbp: ATen operator aten.cumprod.default (graph node 'cumprod', from model.py:12 in forward:
  return torch.cumprod(x, 1)) is not supported. Supported operators: ...``
  (:class:`refbp.errors.UnsupportedOpError`, a TypeError, from ``refbp.mirror.from_torch``)
- wrong dtype: ``inputs must be a floating-point array, got dtype bool`` (TypeError; integer
  inputs are token indices for an ``Embedding`` and get no input gradient)
- empty batch: ``inputs is an empty batch (shape (0, 4)); need at least one sample``
- NaN/Inf: ``inputs contains a non-finite value nan at index (1, 2)``; weights:
  ``torch_model parameter '0.weight' contains a non-finite value inf at index (0, 0)``
- batch sizes differ: ``inputs and targets must have the same number of samples (first
  dimension), got inputs.shape=(4, 3) and targets.shape=(5,)``
- halves that do not pair: ``refbp_model and torch_model do not pair by state_dict names:
  only in refbp_model: out.weight, out.bias; head.weight: shape (4, 8) in torch_model, (5, 8)
  in refbp_model`` (ValueError)
- bad shapes: ``torch_model cannot be applied to inputs of shape (4, 5) (float64): ...`` and
  ``targets do not fit the model output for MSELoss: output shape (4, 2), targets shape (4, 3)``
- a loss of more than an input and a target: ``MarginRankingLoss takes 3 arguments (input1,
  input2, target); a parity run gives the loss the model's output and the targets only: check
  this loss with refbp.mirror.compare_loss``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refbp._lazy import lazy_exports
from refbp.testing.close import assert_close
from refbp.testing.gradients import GradientCheck, GradientReport, check_gradients

_PARITY = ("assert_parity", "parity_table", "run_parity", "assertion_message", "loss_names")

__all__ = ["GradientCheck", "GradientReport", "assert_close", "check_gradients",
           "assert_parity", "parity_table", "run_parity", "assertion_message", "loss_names"]

__getattr__, _ = lazy_exports(__name__, dict.fromkeys(_PARITY, "parity"))


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # the real signatures for type checkers; at run time torch loads on first use
    from refbp.testing.parity import (
        assert_parity,
        assertion_message,
        loss_names,
        parity_table,
        run_parity,
    )
