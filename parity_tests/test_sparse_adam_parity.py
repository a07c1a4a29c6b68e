"""refbp's SparseAdam, SGD and Adagrad with Embedding(sparse=True) against torch's.

The sparse gradient of ``Embedding(sparse=True)`` must be torch's entry for entry (indices in
input order, padding entries dropped, uncoalesced, a second backward appended); SparseAdam
then runs every declared option set and torch's ``optim_db`` sets (both default dtypes) with
identical sparse gradients on two embedding tables (float64, float32), 100 steps, each step
on a fresh batch of token ids (so rows come and go), and state dicts cross the boundary.
SGD (momentum, dampening, Nesterov: a sparse momentum buffer) and Adagrad (torch's sparse
branch) run the same identical-gradient trajectories; weight decay with a sparse gradient is
refused by both libraries.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

import refbp.nn as rnn
from parity_tests.test_optim_parity import (
    Trajectory,
    _one_torch_thread,  # noqa: F401  (the autouse fixture: one torch thread)
    assert_same_state,
    db_kwargs,
    default,  # noqa: F401  (the fixture: torch's and refbp's default dtype)
    option_sets,
)
from refbp import optim
from refbp.mirror import to_torch
from refbp.mirror.optim import optimizer_state_from_torch, optimizer_state_to_torch
from refbp.nn.sparse import SparseGrad
from refbp.parity.optim_cases import OptimCase, cases_for
from refbp.testing import assert_close

pytestmark = pytest.mark.parity

STEPS = 100
CASES = cases_for("SparseAdam")
DTYPES = (np.float64, np.float32)


def tables(seed: int = 0) -> list[rnn.Embedding]:
    gen = np.random.default_rng(seed)
    return [rnn.Embedding(12, 3, sparse=True, padding_idx=2, dtype=dt, generator=gen)
            for dt in DTYPES]


def backward(emb: Any, idx: np.ndarray, grad_out: np.ndarray) -> None:
    """One backward of ``emb`` (refbp or torch) with ``grad_out`` for the tokens ``idx``."""
    if isinstance(emb, torch.nn.Module):
        emb(torch.from_numpy(idx)).backward(torch.from_numpy(grad_out))
    else:
        emb(idx)
        emb.backward(grad_out)


def to_torch_grad(g: SparseGrad) -> torch.Tensor:
    return torch.sparse_coo_tensor(torch.from_numpy(g.indices[None].copy()),
                                   torch.from_numpy(g.values.copy()), g.shape,
                                   check_invariants=True)


def test_embedding_sparse_gradient_is_torchs_layout() -> None:
    """One backward: torch's entries exactly. Coalesced, the entries of a row are summed in
    order here and in torch's own order there, and a second backward appends its entries
    where torch merges the two sparse tensors: sums may differ in the last bit (compared at
    the dtype's tolerance)."""
    rng = np.random.default_rng(1)
    for emb in tables():
        temb = to_torch(emb)
        assert temb.sparse and temb.padding_idx == 2
        idx = rng.integers(0, 12, (4, 5))
        g = rng.standard_normal((4, 5, 3)).astype(emb.weight.data.dtype)
        backward(emb, idx, g)
        backward(temb, idx, g)
        ours, theirs = emb.weight.grad, temb.weight.grad
        assert isinstance(ours, SparseGrad) and theirs.is_sparse and not theirs.is_coalesced()
        assert np.array_equal(ours.indices, theirs._indices()[0].numpy())
        assert np.array_equal(ours.values, theirs._values().numpy())
        c, tc = ours.coalesce(), theirs.coalesce()
        assert np.array_equal(c.indices, tc._indices()[0].numpy())
        assert_close(c.values, tc._values().numpy(), dtype=np.dtype(c.dtype).name,
                     name="coalesced rows")
        idx = rng.integers(0, 12, (4, 5))
        backward(emb, idx, g)
        backward(temb, idx, g)
        assert emb.weight.grad.nnz == ours.nnz + np.count_nonzero(idx != 2)
        assert_close(emb.weight.grad.to_dense(), temb.weight.grad.to_dense().numpy(),
                     dtype=np.dtype(emb.weight.data.dtype).name, name="two backwards")


def run(case_options: dict[str, Any], topts_kwargs: dict[str, Any], steps: int,
        seed: int = 0, name: str = "SparseAdam") -> Trajectory:
    """``steps`` steps of refbp's and torch's optimizer ``name`` on the two tables, identical
    sparse gradients (refbp's Embedding computes them; torch gets a copy)."""
    embs = tables(seed)
    tembs = [to_torch(e) for e in embs]
    opt = getattr(optim, name)([{"params": [e.weight]} for e in embs], **case_options)
    topt = getattr(torch.optim, name)([{"params": [t.weight]} for t in tembs],
                                      **topts_kwargs)
    rng = np.random.default_rng([seed, 1])
    traj = Trajectory([f"{np.dtype(dt).name} weight" for dt in DTYPES])
    for _ in range(steps):
        for e, t in zip(embs, tembs, strict=True):
            e.zero_grad()
            idx = rng.integers(0, 12, (3, 4))
            backward(e, idx, rng.standard_normal((3, 4, 3)).astype(e.weight.data.dtype))
            t.weight.grad = to_torch_grad(e.weight.grad)
        opt.step()
        with torch.sparse.check_sparse_tensor_invariants():  # Adagrad builds sparse tensors
            topt.step()
        traj.record([e.weight for e in embs], [t.weight for t in tembs])
    return traj


def torch_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
            for k, v in options.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_parity_with_identical_sparse_gradients(case: OptimCase) -> None:
    traj = run(case.options, torch_options(case.options), STEPS)
    assert len(traj.check(case.id)) == 2 and len(traj.a) == STEPS


@pytest.mark.parametrize("index, desc",
                         [(i, d) for i, (d, _) in enumerate(option_sets("SparseAdam",
                                                                        torch.float32))])
def test_optim_db_option_set(index: int, desc: str, default: torch.dtype) -> None:  # noqa: F811
    ours, kwargs = db_kwargs("SparseAdam", index, desc, default)
    run(ours, kwargs, 30).check(f"SparseAdam ({desc}), default dtype {default}")


def three_steps(embs: list[Any], tembs: list[Any], opt: Any, topt: Any, seed: int) -> None:
    """Three steps of both optimizers on identical sparse gradients of small batches."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        for e, t in zip(embs, tembs, strict=True):
            e.zero_grad()
            backward(e, rng.integers(0, 12, (2, 3)), rng.standard_normal((2, 3, 3)).astype(
                e.weight.data.dtype))
            t.weight.grad = to_torch_grad(e.weight.grad)
        opt.step()
        topt.step()


def test_state_dict_interop() -> None:
    """torch's state (an int step) loads into refbp and refbp's into torch; both continue."""
    embs, tembs = tables(), [to_torch(e) for e in tables()]
    opt = optim.SparseAdam([e.weight for e in embs], lr=0.05)
    topt = torch.optim.SparseAdam([t.weight for t in tembs], lr=0.05)
    three_steps(embs, tembs, opt, topt, seed=5)
    back = optimizer_state_from_torch(topt.state_dict())
    assert all(type(s["step"]) is int for s in back["state"].values())
    assert_same_state(opt.state_dict(), back)
    fresh = optim.SparseAdam([rnn.Parameter(e.weight.data.copy()) for e in embs], lr=0.05)
    fresh.load_state_dict(back)
    tfresh = torch.optim.SparseAdam([torch.nn.Parameter(t.weight.detach().clone())
                                     for t in tembs], lr=0.05)
    tfresh.load_state_dict(optimizer_state_to_torch(opt.state_dict()))
    assert_same_state(fresh.state_dict(), optimizer_state_from_torch(tfresh.state_dict()))


def test_dense_and_sparse_gradients_are_refused_as_in_torch() -> None:
    emb = tables()[0]
    emb(np.array([[1, 3]]))
    emb.backward(np.ones((1, 2, 3)))
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optim.Adam([emb.weight]).step()
    emb.weight.grad = emb.weight.grad.to_dense()
    with pytest.raises(RuntimeError, match="^SparseAdam does not support dense gradients, "
                       "please consider Adam instead$"):
        optim.SparseAdam([emb.weight]).step()
    t = torch.nn.Parameter(torch.zeros(3))
    t.grad = torch.zeros(3)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        torch.optim.SparseAdam([t]).step()


SPARSE_DENSE = [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}),
                ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "maximize": True}),
                ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
                ("Adagrad", {"lr": 0.1}),
                ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.5,
                             "eps": 1e-6, "maximize": True})]


@pytest.mark.parametrize("name, options", SPARSE_DENSE, ids=lambda x: str(x))
def test_sgd_and_adagrad_take_sparse_gradients_as_torch(name: str, options: dict[str, Any]
                                                        ) -> None:
    """torch's SGD and Adagrad accept sparse gradients (their sparse branches); refbp's
    follow them on the same identical-gradient trajectory (60 steps, rows come and go)."""
    run(options, options, 60, name=name).check(f"{name} sparse {options}")


def test_sparse_sgd_state_dict_holds_a_sparse_buffer() -> None:
    """Both momentum buffers are sparse and hold the same values (torch merges some entries
    of an uncoalesced sum where refbp concatenates them: the layouts may differ)."""
    embs, tembs = tables(), [to_torch(e) for e in tables()]
    opt = optim.SGD([e.weight for e in embs], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([t.weight for t in tembs], lr=0.1, momentum=0.9)
    three_steps(embs, tembs, opt, topt, seed=6)
    for e, t in zip(embs, tembs, strict=True):
        ours, theirs = opt.state[e.weight]["momentum_buffer"], topt.state[t.weight][
            "momentum_buffer"]
        assert isinstance(ours, SparseGrad) and theirs.is_sparse
        assert_close(ours.to_dense(), theirs.to_dense().numpy(),
                     dtype=np.dtype(ours.dtype).name, name="momentum buffer")
    back = optimizer_state_from_torch(topt.state_dict())
    fresh = optim.SGD([rnn.Parameter(e.weight.data.copy()) for e in embs], lr=0.1,
                      momentum=0.9)
    fresh.load_state_dict(back)
    tfresh = torch.optim.SGD([torch.nn.Parameter(t.weight.detach().clone()) for t in tembs],
                             lr=0.1, momentum=0.9)
    tfresh.load_state_dict(optimizer_state_to_torch(opt.state_dict()))
    for i, e in enumerate(embs):
        buf = tfresh.state_dict()["state"][i]["momentum_buffer"]
        assert buf.is_sparse
        assert_close(fresh.state[fresh.param_groups[0]["params"][i]]["momentum_buffer"]
                     .to_dense(), buf.to_dense().numpy(), dtype=np.dtype(e.weight.dtype).name,
                     name="reloaded buffer")


@pytest.mark.parametrize("name, message", [
    ("SGD", "add(sparse, dense) is not supported"),
    ("Adagrad", "weight_decay option is not compatible with sparse gradients")])
def test_weight_decay_with_sparse_gradients_is_refused_as_in_torch(name: str,
                                                                  message: str) -> None:
    emb = tables()[0]
    temb = to_torch(emb)
    backward(emb, np.array([[1, 3]]), np.ones((1, 2, 3)))
    backward(temb, np.array([[1, 3]]), np.ones((1, 2, 3)))
    with pytest.raises(RuntimeError, match=re.escape(message)):
        getattr(optim, name)([emb.weight], lr=0.1, weight_decay=0.1).step()
    with pytest.raises(RuntimeError, match=re.escape(message)):
        getattr(torch.optim, name)([temb.weight], lr=0.1, weight_decay=0.1).step()
