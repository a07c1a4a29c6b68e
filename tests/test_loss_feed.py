"""How a scenario feeds its loss (``refbp.parity.feed``), the data of the losses of several
arguments, and the ``target_grad`` option (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.parity.datagen import input_shape, make_data
from refbp.parity.feed import loss_feed
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.toml import scenario_from_dict
from refbp.registry.ops import of_kind


def test_a_loss_of_an_input_and_a_target_gets_the_output_and_the_target() -> None:
    feed = loss_feed(rnn.MSELoss())
    out, y = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    assert feed.arguments(out, y) == (out, y) and feed.target_name == "target"
    loss = rnn.MSELoss(reduction="sum")
    loss(*feed.arguments(out, y))
    assert np.array_equal(feed.output_gradient(loss), [[2.0, 4.0]])  # 2 (x - y)


def test_a_ranking_loss_gets_two_slices_and_their_gradients_stacked_back() -> None:
    loss = rnn.MarginRankingLoss(reduction="sum")
    feed = loss_feed(loss)
    out = np.array([[[1.0, 3.0], [2.0, 1.0]]])  # x1 = [1, 3], x2 = [2, 1]
    y = np.array([[1.0, 1.0]])
    x1, x2, target = feed.arguments(out, y)
    assert np.array_equal(x1, [[1.0, 3.0]]) and np.array_equal(x2, [[2.0, 1.0]])
    assert target is y and feed.target_name == "target"
    # max(0, -y (x1 - x2)): the first pair is on the wrong side (loss 1), the second is not
    assert float(loss(x1, x2, target)) == 1.0
    # d/dx1 = -y, d/dx2 = +y where the hinge is active, stacked along dimension 1
    assert np.array_equal(feed.output_gradient(loss), [[[-1.0, 0.0], [1.0, 0.0]]])


def test_triplets_take_three_slices_and_no_target() -> None:
    feed = loss_feed(rnn.TripletMarginLoss())
    out = np.arange(12.0).reshape(2, 3, 2)
    args = feed.arguments(out, np.zeros((2, 1)))
    assert len(args) == 3 and np.array_equal(args[2], out[:, 2]) and feed.target_name is None


def test_ctc_gets_time_major_log_probs_and_the_targets_columns() -> None:
    feed = loss_feed(rnn.CTCLoss())
    out = np.zeros((2, 7, 5))
    y = np.array([[1, 2, 0, 6, 2], [3, 0, 0, 5, 1]])
    lp, targets, il, tl = feed.arguments(out, y)
    assert lp.shape == (7, 2, 5) and np.array_equal(targets, y[:, :3])
    assert np.array_equal(il, [6, 5]) and np.array_equal(tl, [2, 1])
    assert feed.target_name is None


def test_every_declared_feed_fits_its_losses_arguments() -> None:
    for op in of_kind("loss"):
        if op.feed is not None:
            assert len(op.numpy_class().arguments) > op.feed.inputs or op.feed.inputs == 3


def test_ctc_data_fit_the_loss() -> None:
    spec = DataSpec("ctc", n=6, features=5, outputs=3, extra={"seq_len": 8})
    x, y = make_data(spec, "float64", 0)
    assert x.shape == input_shape(spec) == (6, 8, 5) and y.shape == (6, 5)
    labels, il, tl = y[:, :3], y[:, 3], y[:, 4]
    assert ((tl >= 1) & (tl <= 3)).all() and ((il >= 7) & (il <= 8)).all()
    assert ((labels >= 1) & (labels <= 3)).all(axis=None, where=np.arange(3) < tl[:, None])
    assert (labels == 0).all(axis=None, where=np.arange(3) >= tl[:, None])
    with pytest.raises(ValueError, match="seq_len >= 2 outputs \\+ 1"):
        make_data(DataSpec("ctc", n=2, features=5, outputs=4), "float64", 0)


def test_signs_data_take_a_target_shape() -> None:
    spec = DataSpec("signs", n=5, features=8, outputs=1, extra={"target_shape": []})
    _, y = make_data(spec, "float32", 0)
    assert y.shape == (5,) and set(np.unique(y)) <= {-1.0, 1.0} and y.dtype == np.float32


def test_target_grad_is_a_flag_of_scenarios_and_scenario_files() -> None:
    with pytest.raises(ValueError, match="target_grad must be true or false"):
        Scenario("s", (Spec("Identity"),), Spec("MSELoss"), target_grad=1)  # type: ignore[arg-type]
    s = scenario_from_dict({"name": "t", "model": [{"type": "Identity"}],
                            "loss": {"type": "MSELoss"}, "target_grad": True}, "file")
    assert s.target_grad is True
