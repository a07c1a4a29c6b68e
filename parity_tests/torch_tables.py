"""What the two parity tests built on torch's own test tables share (``test_module_db.py``,
``test_common_nn.py``): nested tensors as NumPy, the seeded upstream gradients, torch's
backward, the comparison of every output, input gradient, parameter gradient and buffer, and
the static status of a case, and the generated tables of statuses.

Imported by those test files as a plain module (``pythonpath`` in pyproject's pytest options
puts this directory on ``sys.path``; run as scripts, they find it beside them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from refbp.metrics import Discrepancy, discrepancy
from refbp.nn import Module
from refbp.nn.sparse import SparseGrad
from refbp.tolerances import Tolerance
from refbp.versions import PINNED_TORCH, torch_release


def as_numpy(v: Any) -> Any:
    """A NumPy copy of every tensor in nested tuples/lists (a sparse tensor densified)."""
    if isinstance(v, torch.Tensor):
        return (v.to_dense() if v.is_sparse else v).detach().numpy().copy()
    if isinstance(v, list | tuple):
        return type(v)(as_numpy(x) for x in v)
    return v


def leaves(v: Any) -> list[Any]:
    """The leaves of nested tuples/lists (an LSTM's ``(output, (h_n, c_n))``), depth first."""
    if isinstance(v, tuple | list):
        return [leaf for x in v for leaf in leaves(x)]
    return [v]


def upstream(t: Any, rng: np.random.Generator) -> Any:
    """A seeded standard-normal gradient in the dtype of a floating-point output, in its
    nested layout (a pair for LSTM's ``(h_n, c_n)``); ``None`` for an output that has none."""
    if isinstance(t, tuple | list):
        return tuple(upstream(x, rng) for x in t)
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        return rng.standard_normal(tuple(t.shape)).astype(as_numpy(t).dtype)
    return None


def torch_backward(touts: tuple[Any, ...]) -> tuple[list[Any], bool]:
    """Seeded upstream gradients for torch's outputs (seed 0, one per output, nested like
    it; ``None`` for an output without one), and torch's backward through every output
    that requires grad. Returns the gradients that are not None, in order, and whether
    torch ran a backward at all."""
    rng = np.random.default_rng(0)
    grads = [upstream(t, rng) for t in touts]
    pairs = [(t, torch.from_numpy(g)) for t, g in zip(leaves(touts), leaves(grads),
                                                       strict=True)
             if g is not None and t.requires_grad]
    if pairs:
        torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
    return [g for g in grads if g is not None], bool(pairs)


def compare_outputs(routs: Any, touts: Any, tol: Tolerance) -> dict[str, Discrepancy]:
    """``output``, ``output1``, ...: every leaf of the outputs, depth first (a leaf that is
    None on both sides, such as MultiheadAttention's weights with need_weights=False, is
    skipped; None on one side only is a failure of the test)."""
    out: dict[str, Discrepancy] = {}
    for k, (r, t) in enumerate(zip(leaves(routs), leaves(touts), strict=True)):
        if t is None or r is None:
            assert r is None and t is None, f"output {k} is None on one side only"
            continue
        out[f"output{k or ''}"] = discrepancy(np.asarray(r), as_numpy(t), tol)
    return out


def compare_input_grads(targs: Any, rgrads: list[Any], tol: Tolerance
                        ) -> dict[str, Discrepancy]:
    """``grad_input``, ``grad_input1``, ...: refbp's gradient of every torch input leaf that
    received one, in depth-first order."""
    out: dict[str, Discrepancy] = {}
    for k, (first, mine) in enumerate(zip(leaves(targs), rgrads, strict=False)):
        if isinstance(first, torch.Tensor) and first.requires_grad and first.grad is not None:
            out[f"grad_input{k or ''}"] = discrepancy(np.asarray(mine), as_numpy(first.grad),
                                                      tol)
    return out


def compare_state(rmodule: Module, tmodule: torch.nn.Module, tol: Tolerance
                  ) -> dict[str, Discrepancy]:
    """``grad:<name>`` of every parameter (a gradient missing on either side counts as
    zeros; a sparse one densified) and ``buffer:<name>`` of every floating-point buffer."""
    out: dict[str, Discrepancy] = {}
    rparams = dict(rmodule.named_parameters())
    for name, p in tmodule.named_parameters():
        mine = rparams[name].grad
        if isinstance(mine, SparseGrad):  # Embedding(sparse=True): torch's is sparse too
            mine = mine.to_dense()
        ref = np.zeros(tuple(p.shape), as_numpy(p).dtype) if p.grad is None \
            else as_numpy(p.grad)
        out[f"grad:{name}"] = discrepancy(np.zeros_like(ref) if mine is None else mine, ref,
                                          tol)
    rbufs = dict(rmodule.named_buffers())
    for name, b in tmodule.named_buffers():
        if b.is_floating_point():
            out[f"buffer:{name}"] = discrepancy(rbufs[name], as_numpy(b), tol)
    return out


def first_status(*checks: tuple[str, str | None]) -> str:
    """``<label>: <reason>`` of the first ``(label, reason)`` with a reason, else ``pass``:
    a case's status in a generated table, decided without running it."""
    for label, reason in checks:
        if reason is not None:
            return f"{label}: {reason}"
    return "pass"


def assert_table_current(table: Path, render: Callable[[], str], script: str) -> None:
    """A generated table's currency test: the file equals ``render()``. Skipped under
    another torch release than the pinned one, whose tables list other cases."""
    if torch_release(torch.__version__) != PINNED_TORCH:
        pytest.skip(f"{table.name} lists the cases of torch {PINNED_TORCH} (constraints.txt); "
                    f"torch {torch.__version__}'s tables differ (their cases run above)")
    assert table.exists(), f"{table} is missing: run python {script}"
    assert table.read_text() == render(), f"{table.name} is out of date: run python {script}"


def write_table(table: Path, text: str, cases: int) -> None:
    """Replace ``table`` with ``text`` (written beside it first, then renamed)."""
    tmp = table.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(table)
    print(f"wrote {table} ({cases} cases)", file=sys.stderr)
