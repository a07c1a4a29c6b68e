"""refbp.data: batch sizes per mode, the documented shuffle contract, drop_last, validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp.data import Batch, BatchIterator, batches, epoch_indices, resolve_batch_size

X = np.arange(20.0).reshape(10, 2)
Y = np.arange(10) * 10


def test_modes_pick_the_batch_size() -> None:
    assert [len(i) for i in epoch_indices(10, mode="batch", shuffle=False)] == [10]
    assert [len(i) for i in epoch_indices(10, mode="sgd", shuffle=False)] == [1] * 10
    assert [len(i) for i in epoch_indices(10, batch_size=4, shuffle=False)] == [4, 4, 2]
    assert [len(i) for i in epoch_indices(10, batch_size=4, shuffle=False,
                                          drop_last=True)] == [4, 4]
    assert [len(i) for i in epoch_indices(10, batch_size=25, shuffle=False)] == [10]


def test_shuffle_contract_is_one_permutation_per_epoch() -> None:
    got = epoch_indices(10, batch_size=3, rng=np.random.default_rng(7))
    order = np.random.default_rng(7).permutation(10)
    np.testing.assert_array_equal(np.concatenate(got), order)
    assert all(i.dtype == np.int64 for i in got)


def test_iterator_yields_matching_rows_and_new_order_each_epoch() -> None:
    it = BatchIterator(X, Y, batch_size=4, rng=3)
    assert len(it) == 3
    first = list(it)
    second = list(it)
    for b in first:
        assert isinstance(b, Batch)
        np.testing.assert_array_equal(b.x, X[b.indices])
        np.testing.assert_array_equal(b.y, Y[b.indices])
    seen = np.concatenate([b.indices for b in first])
    assert sorted(seen.tolist()) == list(range(10))
    assert not np.array_equal(seen, np.concatenate([b.indices for b in second]))
    # the documented contract: epoch k is the k-th permutation drawn from default_rng(seed)
    gen = np.random.default_rng(3)
    expected = [gen.permutation(10), gen.permutation(10)]
    np.testing.assert_array_equal(seen, expected[0])
    np.testing.assert_array_equal(np.concatenate([b.indices for b in second]), expected[1])


def test_same_seed_same_batches_on_both_sides() -> None:
    a = BatchIterator(X, Y, mode="sgd", rng=11)
    b = BatchIterator(X * 2, None, mode="sgd", rng=11)
    for _ in range(3):
        ia, ib = a.next_epoch_indices(), b.next_epoch_indices()
        assert [i.tolist() for i in ia] == [i.tolist() for i in ib]


def test_unshuffled_full_batch_and_unpacking() -> None:
    (idx, xb, yb), = list(batches(X, Y, mode="batch", shuffle=False))
    np.testing.assert_array_equal(idx, np.arange(10))
    np.testing.assert_array_equal(xb, X)
    np.testing.assert_array_equal(yb, Y)
    only_x = list(batches(X, mode="sgd", shuffle=False))
    assert len(only_x) == 10 and only_x[3].y is None and only_x[3].x.tolist() == [[6.0, 7.0]]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(Y=np.zeros(9)), ValueError, "same number of samples"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
    (dict(batch_size=2.5), TypeError, "batch_size must be a positive int or None, got float"),
    (dict(batch_size=True), TypeError, "got bool"),
    (dict(batch_size=None), ValueError, "mode='minibatch' needs a batch_size"),
    (dict(mode="full"), ValueError, "mode must be one of"),
    (dict(mode="sgd", batch_size=2), ValueError, "mode='sgd' implies batch_size=1"),
    (dict(mode="batch", batch_size=3), ValueError, "mode='batch' implies batch_size=10"),
    (dict(batch_size=11, drop_last=True), ValueError, "leaves no batch"),
    (dict(batch_size=2, rng=None), ValueError, "shuffle=True needs rng"),
    (dict(batch_size=2, rng=1.5), TypeError, "rng must be a numpy.random.Generator"),
])
def test_validation(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    options = {"Y": Y, "rng": 0, **kwargs}
    y = options.pop("Y")
    with pytest.raises(exc, match=message.replace("(", r"\(").replace("[", r"\[")):
        BatchIterator(X, y, **options)


def test_validation_of_sizes() -> None:
    with pytest.raises(ValueError, match="need at least one sample"):
        epoch_indices(0, batch_size=2, shuffle=False)
    with pytest.raises(ValueError, match="0-d array"):
        BatchIterator(np.float64(3.0), batch_size=1, shuffle=False)
    assert resolve_batch_size(7, "batch", 7) == 7
