"""The worked examples: their numbers, their printed steps and their figures (no torch).

Every example runs once per test session (module fixture) into a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from refbp import nn
from refbp.examples import EXAMPLES, get_example, run_example
from refbp.examples import chain_rule as cr
from refbp.examples import conv_im2col as ci
from refbp.examples import gd_variants as gv
from refbp.examples import graph_apples as ga
from refbp.examples import line_gd as lg
from refbp.examples import linear_regression as lr
from refbp.examples import sigmoid_ce as sc
from refbp.metrics import discrepancy
from refbp.tolerances import GRADCHECK_RTOL, tolerance_for

TOL = tolerance_for(np.float64)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Run = tuple[dict[str, Any], list[str], Path]


def assert_close(actual: Any, expected: Any, what: str = "") -> None:
    d = discrepancy(actual, expected, TOL)
    assert d.passed, f"{what}: refbp {d.a_value!r} vs expected {d.b_value!r} ({d})"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    out: dict[str, Run] = {}
    for name in EXAMPLES:
        lines: list[str] = []
        d = tmp_path_factory.mktemp(name) / "figs" / "nested"
        out[name] = (run_example(name, d, echo=lines.append), lines, d)
    return out


# -- registry -------------------------------------------------------------------------------
def test_registry_lists_the_examples() -> None:
    assert list(EXAMPLES) == ["line_gd", "chain_rule", "sigmoid_ce", "graph_apples",
                              "gd_variants", "linear_regression", "conv_im2col", "bptt"]
    for name, spec in EXAMPLES.items():
        assert spec.name == name and spec.figures and spec.title


def test_unknown_example_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown example 'nope'; known examples: line_gd, "
                                         "chain_rule"):
        run_example("nope", None)
    with pytest.raises(ValueError, match="linear_regression"):
        get_example("")


def test_default_echo_prints_and_no_out_dir_writes_nothing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = run_example("graph_apples", None)
    printed = capsys.readouterr().out
    assert "Mul     pay: dout = 1 -> d/dapple_price = 1.1, d/dtax = 20" in printed
    assert r["apple.pay"] == pytest.approx(22.0, rel=TOL.rtol)
    assert list(tmp_path.iterdir()) == []


# -- figures --------------------------------------------------------------------------------
def assert_real_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 400, img.shape
    rgb = img[..., :3]
    inked = float(np.mean(np.any(rgb < 0.9, axis=-1)))
    assert 0.01 < inked < 0.9, f"{path.name}: {inked:.1%} of the pixels are drawn"
    q = (rgb * 255).astype(np.uint32)
    colours = np.unique((q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2])
    assert len(colours) > 20, f"{path.name} has only {len(colours)} colours"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_figure_is_a_real_plot(runs: dict[str, Run], name: str) -> None:
    _, lines, out_dir = runs[name]
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted(EXAMPLES[name].figures)
    for fig in EXAMPLES[name].figures:
        assert_real_png(out_dir / fig)
    assert len(lines) >= 5 and lines[0].startswith(name)


# -- line_gd --------------------------------------------------------------------------------
def test_line_gd_converges_to_closed_form(runs: dict[str, Run]) -> None:
    r = runs["line_gd"][0]
    x, y = lg.data()
    w_star = float(x @ y / (x @ x))
    assert_close(r["w_closed_form"], w_star, "closed form")
    assert_close(r["w_final"], w_star, "w after gradient descent")
    assert_close(r["w"][1], lg.W0 + lg.ETA * float(np.sum((y - lg.W0 * x) * x)), "first step")
    assert_close(r["dE_dw"][0], -float(np.sum(y * x)), "dE/dw at w = 0")
    # E is non-increasing up to rounding (it stalls at E(w*) after ~80 steps)
    assert np.all(np.diff(r["E"]) <= TOL.rtol * r["E"][1:]) and r["E"].shape == (lg.STEPS,)
    assert r["w"].shape == (lg.STEPS + 1,)


# -- chain_rule -----------------------------------------------------------------------------
def test_chain_rule_single_neuron_formulas(runs: dict[str, Run]) -> None:
    r, lines, _ = runs["chain_rule"]
    a, z = r["single.a"], r["single.z"]
    sp = a[1:] * (1 - a[1:])                                    # sigma'(z^l)
    dc_da_last = 2 * (a[3] - cr.SINGLE_Y)
    assert_close(r["single.cost"], (a[3] - cr.SINGLE_Y) ** 2, "C0")
    assert_close(r["single.dC_dw"][2], a[2] * sp[2] * dc_da_last, "dC0/dw^L")
    assert_close(r["single.dC_db"][2], sp[2] * dc_da_last, "dC0/db^L")
    assert_close(r["single.dC_da"][2], cr.SINGLE_W[2] * sp[2] * dc_da_last, "dC0/da^(L-1)")
    for layer in (1, 2):                                        # the recursion
        delta = sp[layer - 1] * r["single.dC_da"][layer]
        assert_close(r["single.dC_db"][layer - 1], delta, f"delta^{layer}")
        assert_close(r["single.dC_dw"][layer - 1], a[layer - 1] * delta, f"dC0/dw^{layer}")
    assert_close(z[0], cr.SINGLE_W[0] * cr.SINGLE_X + cr.SINGLE_B[0], "z^1")
    assert r["single.fd_passed"] and r["multi.fd_passed"]
    assert any("dC0/dw^L = a^(L-1) sigma'(z^L) 2(a^L - y)" in ln for ln in lines)


def test_chain_rule_multi_neuron_matches_refbp_nn(runs: dict[str, Run]) -> None:
    """The hand-written w_jk recursion equals refbp.nn's Linear/Sigmoid/MSELoss(sum) / n."""
    r = runs["chain_rule"][0]
    ws, bs = cr.multi_params()
    xs, ys = cr.multi_data()
    model = nn.Sequential(*(m for w in ws for m in (nn.Linear(w.shape[1], w.shape[0]),
                                                     nn.Sigmoid())))
    model.load_state_dict({f"{2 * i}.{k}": v for i, (w, b) in enumerate(zip(ws, bs,
                                                                              strict=True))
                           for k, v in (("weight", w), ("bias", b))})
    loss = nn.MSELoss(reduction="sum")
    n = len(xs)
    cost = float(loss(model(xs), ys)) / n
    model.backward(loss.backward(np.asarray(1.0 / n)))
    assert_close(r["multi.cost"], cost, "C")
    assert_close(r["multi.cost"], r["multi.cost_per_sample"].mean(), "mean of C0_i")
    for i in range(3):
        assert_close(r[f"multi.dC_dW{i + 1}"], model[2 * i].weight.grad, f"dC/dW^{i + 1}")
        assert_close(r[f"multi.dC_db{i + 1}"], model[2 * i].bias.grad, f"dC/db^{i + 1}")


# -- sigmoid_ce -----------------------------------------------------------------------------
def test_sigmoid_ce_recursion_and_refbp_nn(runs: dict[str, Run]) -> None:
    r = runs["sigmoid_ce"][0]
    assert_close(r["dl_dz2"], r["a"] - sc.Y, "dl/dz out = a - y")
    assert_close(r["dl_dW2"], np.outer(r["dl_dz2"], r["h"]), "dl/dw_jk = dl/dz_j h_k")
    assert r["fd_passed"]
    p = sc.params()
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid())
    model.load_state_dict({"0.weight": p["W1"], "0.bias": p["b1"], "2.weight": p["W2"],
                           "2.bias": p["b2"]})
    bce = nn.BCELoss(reduction="sum")
    assert_close(r["loss"], float(bce(model(sc.X), sc.Y)), "loss vs BCELoss(sum)")
    model.backward(bce.backward())
    assert_close(r["dl_dW1"], model[0].weight.grad, "dl/dW1")
    assert_close(r["dl_db2"], model[2].bias.grad, "dl/db2")


# -- graph_apples ---------------------------------------------------------------------------
def test_graph_apples_values(runs: dict[str, Run]) -> None:
    r, lines, _ = runs["graph_apples"]
    for key, value in ga.EXPECTED.items():
        assert_close(r[key], value, key)
    assert "  Add     all_price: dout = 1.1 -> d/dapple_price = 1.1, d/dorange_price = 1.1" \
        in lines


# -- gd_variants ----------------------------------------------------------------------------
def test_gd_variants_batches_and_curves(runs: dict[str, Run]) -> None:
    r = runs["gd_variants"][0]
    steps_per_epoch = {"bgd": 1, "sgd": gv.N, "mbgd": gv.N // 6}
    for variant, k in steps_per_epoch.items():
        idx = gv.batch_indices(variant)
        assert len(idx) == k * gv.EPOCHS
        for e in range(gv.EPOCHS):
            epoch = np.concatenate(idx[e * k:(e + 1) * k])
            assert sorted(epoch.tolist()) == list(range(gv.N))
        for problem in gv.PROBLEMS:
            pre = f"{problem}.{variant}."
            assert r[pre + "step_loss"].shape == (k * gv.EPOCHS,)
            curve = r[pre + "epoch_loss"]
            assert curve.shape == (gv.EPOCHS + 1,) and curve[-1] < 0.7 * curve[0]
    for problem in gv.PROBLEMS:
        assert np.all(np.diff(r[f"{problem}.bgd.epoch_loss"]) < 0)   # BGD descends each epoch
        first = {v: r[f"{problem}.{v}.epoch_loss"][1] for v in steps_per_epoch}
        assert first["sgd"] < first["mbgd"] < first["bgd"]           # more steps per epoch
        final = {v: r[f"{problem}.{v}.epoch_loss"][-1] for v in steps_per_epoch}
        assert max(final["sgd"], final["mbgd"]) < final["bgd"]


def test_gd_variants_bgd_step_equals_full_gradient(runs: dict[str, Run]) -> None:
    """One BGD step from the initial weights: W <- W - lr * 2/n r^T X (MSE), by hand."""
    x, y = gv.problem_data("mse")
    s = gv.initial_state("mse")
    resid = x @ s["weight"].T + s["bias"] - y
    assert_close(gv.train("mse", "bgd")["step_loss"][0], float(np.mean(resid ** 2)), "MSE")
    w1 = s["weight"] - gv.LR * 2 / gv.N * resid.T @ x
    b1 = s["bias"] - gv.LR * 2 / gv.N * resid.sum(axis=0)
    full = x @ w1.T + b1 - y
    assert_close(runs["gd_variants"][0]["mse.bgd.epoch_loss"][1], float(np.mean(full ** 2)),
                 "loss after one BGD step")


# -- linear_regression ----------------------------------------------------------------------
def test_linear_regression_matches_least_squares(runs: dict[str, Run]) -> None:
    r, lines, _ = runs["linear_regression"]
    x, y = lr.data()
    (a_ls, b_ls), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
    assert_close(r["a_closed_form"], a_ls, "a* vs lstsq")
    assert_close(r["b_closed_form"], b_ls, "b* vs lstsq")
    assert_close(r["a_final"], a_ls, "a after 400 epochs")
    assert_close(r["b_final"], b_ls, "b after 400 epochs")
    assert_close(r["loss_final"], float(nn.SSELoss()(a_ls * x + b_ls, y)), "L vs SSELoss")
    assert r["a"][0] == lr.A0 and r["b"][0] == lr.B0
    e0 = lr.A0 * x + lr.B0 - y
    assert_close(r["ga"][0], float(e0 @ x), "ga at init")
    assert_close(r["gb"][0], float(e0.sum()), "gb at init")
    assert_close(r["a"][1], lr.A0 - lr.LR * float(e0 @ x), "a after epoch 1")
    assert r["loss"].shape == (lr.EPOCHS + 1,) and r["loss"][-1] < r["loss"][0] / 10
    assert any(ln.startswith("closed form a = ") for ln in lines)


# -- conv_im2col ----------------------------------------------------------------------------
def test_conv_im2col_by_hand(runs: dict[str, Run]) -> None:
    r, lines, _ = runs["conv_im2col"]
    p = ci.params()
    w, b, g = p["W"][:, 0], p["b"], p["G"]
    x = ci.X[0, 0]
    # column (p, q) of cols is the window at (p, q); y is each filter's dot product with it
    np.testing.assert_array_equal(r["cols"][:, 3], x[1:4, 1:4].ravel())
    for o in range(2):
        for pq in range(4):
            pp, qq = divmod(pq, 2)
            win = x[pp:pp + 3, qq:qq + 3]
            assert r["y"][o, pp, qq] == np.sum(w[o] * win) + b[o]
    # dL/dW[o] sums G[o, (p, q)] times the window at (p, q)
    windows = [x[pp:pp + 3, qq:qq + 3] for pp in range(2) for qq in range(2)]
    expected_dw = sum(g[:, pq, None, None] * windows[pq] for pq in range(4))
    np.testing.assert_array_equal(r["dL_dW"][:, 0], expected_dw)
    np.testing.assert_array_equal(r["dL_db"], g.sum(axis=1))
    # a corner pixel is in one window only: its gradient is one term
    assert r["dL_dx"][0, 0] == w[0, 0, 0] * g[0, 0] + w[1, 0, 0] * g[1, 0]
    assert r["dL_dx"][3, 3] == w[0, 2, 2] * g[0, 3] + w[1, 2, 2] * g[1, 3]
    assert r["fd_passed"] and r["layer_max_abs_diff"] == 0.0
    assert any(ln.startswith("col2im adds each column back") for ln in lines)


def test_numpy_side_runs_without_torch(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from refbp.examples import run_example\n"
            f"r = run_example('linear_regression', {str(tmp_path)!r}, echo=lambda s: None)\n"
            "print(r['a_final'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == pytest.approx(1.2093019543, rel=TOL.rtol)


# -- bptt -----------------------------------------------------------------------------------
def test_bptt_sums_one_term_per_step_and_matches_the_rnn_layer(runs: dict[str, Run]) -> None:
    r, lines, _ = runs["bptt"]
    for name in ("dL_dW_xh", "dL_dW_hh"):
        np.testing.assert_array_equal(r[name], r[name + ".step1"] + r[name + ".step2"])
    np.testing.assert_array_equal(r["dL_db"], r["dL_da1"] + r["dL_da2"])
    # tanh' = 1 - tanh^2 at each step, and dL/dh1 = W_hh^T dL/da2
    d = discrepancy(r["dL_da2"], r["dL_dh2"] * (1 - np.tanh(r["a2"]) ** 2), TOL)
    assert d.passed, str(d)
    assert r["fd_max_rel_err"] <= GRADCHECK_RTOL
    assert r["rnn_layer_max_abs_diff"] <= TOL.atol
    assert r["loss"] == pytest.approx(0.5 * (r["y"][0] - 0.5) ** 2, rel=TOL.rtol)
    assert any(line.startswith("  dL_dW_hh = dL_da1 h_0^T + dL_da2 h_1^T") for line in lines)
