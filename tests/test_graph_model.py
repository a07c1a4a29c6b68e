"""``refbp.nn.graph_model``: graphs of declared ATen ops, checked by finite differences (no torch).

Every declared op with a backward is run as a one-node graph (plus a parameter where the op
takes a weight) and its input and parameter gradients are checked against float64 central
differences (``refbp.gradcheck``); graphs where one value feeds several nodes check that the
contributions are summed (a skip connection, a weight used twice).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from refbp.gradcheck import check_module
from refbp.nn.batchnorm import BatchNorm2d
from refbp.nn.dropout import feed_masks
from refbp.nn.dropout_alpha import ALPHA
from refbp.nn.fractional_pool import FractionalMaxPool2d
from refbp.nn.graph_model import GraphModel, GraphNode, Ref
from refbp.nn.module import Parameter
from refbp.nn.ops import unbroadcast
from refbp.registry.aten import ATEN_OPS, aten_op, functional_name, supported_aten
from refbp.registry.ops import by_aten, op

X, W = Ref("x"), Ref("w")


def _node(name: str, target: str, *args: Any, **kwargs: Any) -> GraphNode:
    decl = aten_op(target)
    assert decl is not None, target
    fwd, bwd = decl.functions()
    return GraphNode(name, decl.name, target, fwd, bwd, args, kwargs)  # type: ignore[arg-type]


def _graph(nodes: list[GraphNode], shape: tuple[int, ...], weight: np.ndarray | None = None,
           dtype: Any = np.float64, out: str | None = None) -> GraphModel:
    params = [] if weight is None else [("w", "w", Parameter(weight))]
    return GraphModel(nodes, [("x", shape, dtype)], Ref(out or nodes[-1].name), params)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _sum_all(names: list[str]) -> list[GraphNode]:
    """Nodes adding up the (reduced to scalars) values ``names`` into ``y``."""
    nodes = [_node(f"s_{n}", "aten.sum.default", Ref(n)) for n in names]
    total = f"s_{names[0]}"
    for k, n in enumerate(names[1:]):
        nodes.append(_node(f"t{k}", "aten.add.Tensor", Ref(total), Ref(f"s_{n}")))
        total = f"t{k}"
    nodes.append(_node("y", "aten.mul.Tensor", Ref(total), 1.0))
    return nodes


# loss targets and class weights of the (3, 4) inputs (constants of the graph)
T = _rng(5).standard_normal((3, 4))
POSITIVE = _rng(6).uniform(0.1, 1.0, (3, 4))
ZERO_ONE = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
SIGNS, CLASSES = 2.0 * ZERO_ONE - 1.0, np.array([0, 3, 1])
LABELS = np.array([[1, 2, -1, 0], [3, -1, 0, 0], [0, 1, 2, 3]])
W4 = np.array([0.5, 1.0, 1.5, 2.0])

# (id, input shape, weight shape or None, nodes); inputs are standard normals, shifted
# positive where the op needs it (log, sqrt, rsqrt)
CASES: list[tuple[str, tuple[int, ...], tuple[int, ...] | None, list[GraphNode]]] = [
    ("add-broadcast", (3, 4), (4,), [_node("y", "aten.add.Tensor", X, W, alpha=2.0)]),
    ("sub-scalar", (3, 4), None, [_node("y", "aten.sub.Tensor", X, 1.5)]),
    ("rsub", (3, 4), (1, 4), [_node("y", "aten.rsub.Tensor", X, W)]),
    ("mul-broadcast", (2, 3, 4), (3, 1), [_node("y", "aten.mul.Tensor", X, W)]),
    ("div", (3, 4), (4,), [_node("y", "aten.div.Tensor", X, W)]),
    ("neg-pow", (3, 4), None, [_node("a", "aten.neg.default", X),
                               _node("y", "aten.pow.Tensor_Scalar", Ref("a"), 3)]),
    ("cos-sin", (3, 4), None, [_node("a", "aten.cos.default", X),
                               _node("b", "aten.sin.default", X),
                               _node("y", "aten.mul.Tensor", Ref("a"), Ref("b"))]),
    ("exp-tanh-sigmoid", (3, 4), None, [_node("a", "aten.exp.default", X),
                                        _node("b", "aten.tanh.default", Ref("a")),
                                        _node("y", "aten.sigmoid.default", Ref("b"))]),
    ("gelu-silu-relu", (3, 4), None, [_node("a", "aten.gelu.default", X, approximate="tanh"),
                                      _node("b", "aten.silu.default", Ref("a")),
                                      _node("y", "aten.relu.default", Ref("b"))]),
    ("linear", (2, 3, 4), (5, 4), [_node("y", "aten.linear.default", X, W)]),
    ("addmm", (3, 4), (4, 5), [_node("y", "aten.addmm.default", Ref("b"), X, W, beta=0.5,
                                     alpha=2.0)]),
    ("matmul-batched", (2, 3, 4), (4, 2), [_node("y", "aten.matmul.default", X, W)]),
    ("matmul-vector", (4,), (2, 4, 3), [_node("y", "aten.matmul.default", X, W)]),
    ("sum-mean", (2, 3, 4), None, [_node("a", "aten.sum.dim_IntList", X, [1], True),
                                   _node("y", "aten.mean.dim", Ref("a"), [-1])]),
    ("softmax-logsoftmax", (3, 4), None, [_node("a", "aten.softmax.int", X, 1),
                                          _node("y", "aten._log_softmax.default", Ref("a"), 0,
                                                False)]),
    ("view-permute-transpose", (2, 3, 4), None, [
        _node("a", "aten.view.default", X, [6, -1]),
        _node("b", "aten.unsqueeze.default", Ref("a"), 0),
        _node("c", "aten.permute.default", Ref("b"), [2, 0, 1]),
        _node("d", "aten.transpose.int", Ref("c"), 0, -1),
        _node("y", "aten.squeeze.dim", Ref("d"), 1)]),
    ("expand-flatten", (3, 1), None, [_node("a", "aten.expand.default", X, [2, -1, 4]),
                                      _node("y", "aten.flatten.using_ints", Ref("a"), 1)]),
    ("cat-stack", (3, 4), (3, 2), [_node("a", "aten.cat.default", [X, W], 1),
                                   _node("y", "aten.stack.default", [Ref("a"), Ref("a")], 0)]),
    ("split-getitem", (3, 5), None, [_node("a", "aten.split.Tensor", X, 2, 1),
                                     _node("b", "_operator.getitem", Ref("a"), 0),
                                     _node("c", "_operator.getitem", Ref("a"), 2),
                                     _node("y", "aten.mul.Tensor", Ref("b"), Ref("c"))]),
    ("slice-select", (4, 5), None, [_node("a", "aten.slice.Tensor", X, 1, 1, 5, 2),
                                    _node("y", "aten.select.int", Ref("a"), 0, -1)]),
    ("where-masked-fill", (3, 4), (4,), [_node("m", "aten.gt.Scalar", X, 0.0),
                                         _node("a", "aten.where.self", Ref("m"), X, W),
                                         _node("y", "aten.masked_fill.Scalar", Ref("a"),
                                               Ref("m"), -2.0)]),
    ("layer-norm", (2, 3, 4), (4,), [_node("y", "aten.layer_norm.default", X, [4], W, W)]),
    ("conv2d-pool", (2, 2, 6, 6), (3, 2, 3, 3), [
        _node("a", "aten.conv2d.default", X, W, None, [1, 1], [1, 1]),
        _node("b", "aten.max_pool2d.default", Ref("a"), [2, 2]),
        _node("y", "aten.adaptive_avg_pool2d.default", Ref("b"), [2, 1])]),
    ("pad-convtranspose", (2, 2, 3, 3), (2, 3, 2, 2), [
        _node("a", "aten.pad.default", X, [1, 1, 2, 0], "reflect"),
        _node("b", "aten.pad.default", Ref("a"), [1, 0, 0, 1], "replicate"),
        _node("c", "aten.pad.default", Ref("b"), [0, 1, 1, 0], "constant", 0.5),
        _node("y", "aten.conv_transpose2d.input", Ref("c"), W, None, [2, 2], [1, 0])]),
    # the samples are a constant ("u", set below): a ``rand`` node would draw anew at every
    # finite-difference evaluation
    ("fractional-pools", (2, 3, 6, 5), None, [
        _node("a", "aten.fractional_max_pool2d.default", X, [2, 2], [4, 3], Ref("u")),
        _node("b", "_operator.getitem", Ref("a"), 0),
        _node("c", "aten.unsqueeze.default", Ref("b"), 2),
        _node("d", "aten.expand.default", Ref("c"), [-1, -1, 4, -1, -1]),
        _node("e", "aten.fractional_max_pool3d.default", Ref("d"), [2, 2, 1], [2, 2, 2],
              Ref("v")),
        _node("y", "_operator.getitem", Ref("e"), 0)]),
    ("upsample-antialias", (1, 2, 5, 4), None, [
        _node("a", "aten._upsample_bilinear2d_aa.vec", X, [3, 6], False, None),
        _node("y", "aten._upsample_bicubic2d_aa.vec", Ref("a"), None, True, [1.5, 0.5])]),
    ("sdpa-causal", (2, 3, 4), None, [_node("y", "aten.scaled_dot_product_attention.default",
                                            X, X, X, is_causal=True)]),
    ("regression-losses", (3, 4), None, [
        _node("a", "aten.l1_loss.default", X, T, 0),
        _node("b", "aten.mse_loss.default", X, T, 1),
        _node("c", "aten.smooth_l1_loss.default", X, T, 2, 0.5),
        _node("d", "aten.huber_loss.default", X, T, 1, 0.7), *_sum_all(list("abcd"))]),
    ("probability-losses", (3, 4), None, [
        _node("p", "aten.sigmoid.default", X),
        _node("a", "aten.binary_cross_entropy.default", Ref("p"), ZERO_ONE, W4, 1),
        _node("b", "aten.binary_cross_entropy_with_logits.default", X, POSITIVE, None, W4, 0),
        _node("c", "aten.kl_div.default", X, POSITIVE, 2),
        _node("d", "aten.kl_div.default", X, T, 1, log_target=True),
        _node("e", "aten.poisson_nll_loss.default", X, POSITIVE, True, True, 1e-8, 1),
        *_sum_all(list("abcde"))]),
    ("margin-losses", (3, 4), None, [
        _node("a", "aten.hinge_embedding_loss.default", X, SIGNS, 0.5, 0),
        _node("b", "aten.soft_margin_loss.default", X, SIGNS, 2),
        _node("c", "aten.multilabel_margin_loss.default", X, LABELS, 1),
        _node("d", "aten.multi_margin_loss.default", X, CLASSES, 2, 0.5, W4, 0),
        _node("e", "aten.nll_loss_nd.default", X, CLASSES, W4, 1, 1),
        *_sum_all(list("abcde"))]),
    ("broadcast-logsigmoid", (3, 4), (4,), [
        _node("b", "aten.broadcast_tensors.default", [X, W]),
        _node("x2", "_operator.getitem", Ref("b"), 0),
        _node("w2", "_operator.getitem", Ref("b"), 1),
        _node("l", "aten.log_sigmoid.default", Ref("x2")),
        _node("y", "aten.mul.Tensor", Ref("l"), Ref("w2"))]),
    ("upsample-2d", (1, 2, 3, 4), None, [
        _node("a", "aten.upsample_nearest2d.vec", X, [5, 6], None),
        _node("b", "aten.upsample_bilinear2d.vec", X, None, True, [1.5, 2.0]),
        _node("c", "aten.upsample_bicubic2d.vec", X, [4, 5], False, None),
        _node("d", "aten._upsample_nearest_exact2d.vec", X, None, [2.0, 1.5]),
        *_sum_all(list("abcd"))]),
    ("upsample-1d", (1, 2, 3), None, [
        _node("a", "aten.upsample_linear1d.vec", X, [7], False, None),
        _node("b", "aten.upsample_nearest1d.vec", X, None, [2.5]),
        *_sum_all(list("ab"))]),
    ("upsample-3d", (1, 1, 2, 3, 2), None, [
        _node("a", "aten.upsample_trilinear3d.vec", X, None, False, [2.0, 1.5, 1.0]),
        _node("b", "aten.upsample_nearest3d.vec", X, [3, 4, 3], None),
        *_sum_all(list("ab"))]),
    ("rrelu-eval", (3, 4), None, [_node("y", "aten.rrelu.default", X, 0.1, 0.3)]),
    ("rsqrt-sqrt-log", (3, 4), None, [_node("a", "aten.mul.Tensor", X, X),
                                      _node("b", "aten.add.Tensor", Ref("a"), 1.0),
                                      _node("c", "aten.rsqrt.default", Ref("b")),
                                      _node("d", "aten.sqrt.default", Ref("b")),
                                      _node("e", "aten.log.default", Ref("b")),
                                      _node("f", "aten.mul.Tensor", Ref("c"), Ref("d")),
                                      _node("y", "aten.add.Tensor", Ref("e"), Ref("f"))]),
]


@pytest.mark.parametrize(("shape", "wshape", "nodes"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_every_backward_matches_finite_differences(shape: tuple[int, ...],
                                                   wshape: tuple[int, ...] | None,
                                                   nodes: list[GraphNode]) -> None:
    weight = None if wshape is None else _rng(1).standard_normal(wshape) + 1.5
    g = _graph(nodes, shape, weight)
    if nodes[0].op == "addmm" and any(a == Ref("b") for n in nodes for a in n.args):
        g._constants["b"] = _rng(2).standard_normal((5,))
    if any(isinstance(a, Ref) and a.name == "u" for n in nodes for a in n.args):
        g._constants["u"], g._constants["v"] = _rng(4).random((2, 3, 2)), _rng(5).random((2, 3, 3))
    result = check_module(g, _rng().standard_normal(shape))
    assert result.passed, result


def test_a_rand_node_takes_the_fed_samples_in_either_mode() -> None:
    """``torch.rand`` (a fractional max pooling's samples) is fed like a dropout mask, and the
    graph says it draws even when captured in eval mode."""
    nodes = [_node("u", "aten.rand.default", [2, 3, 2], dtype=np.dtype(np.float64)),
             _node("a", "aten.fractional_max_pool2d.default", X, [2, 2], [4, 3], Ref("u")),
             _node("y", "_operator.getitem", Ref("a"), 0)]
    g = GraphModel(nodes, [("x", (2, 3, 6, 5), np.float64)], Ref("y"), [], training=False)
    assert g.may_draw_dropout()
    x, u = _rng().standard_normal((2, 3, 6, 5)), _rng(1).random((2, 3, 2))
    with feed_masks([u]):
        y = g(x)
    np.testing.assert_array_equal(y, FractionalMaxPool2d(2, (4, 3), _random_samples=u)(x))


def test_every_op_with_a_backward_is_checked_here() -> None:
    checked = {n.op for c in CASES for n in c[3]}
    with_backward = {o.name for o in ATEN_OPS if o.backward is not None}
    random = {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}
    assert with_backward - checked <= {"batch_norm", "identity", "to", "gather", "index",
                                       "embedding", "avg_pool2d", "unflatten", "t",
                                       "to_device"} | random


def test_the_drawing_nodes_use_the_fed_masks_and_slopes() -> None:
    # finite differences would redraw; with fed masks each node is linear in x by hand
    x = np.array([[[1.0, -2.0], [3.0, 4.0]]])  # (N=1, C=2, L=2)
    feature = _graph([_node("y", "aten.feature_dropout.default", X, 0.5, True)], x.shape)
    with feed_masks([np.array([[[True], [False]]])]):  # channel 1 dropped; scale 1 / 0.5
        np.testing.assert_array_equal(feature(x), [[[2.0, -4.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(feature.backward(np.ones_like(x)), [[[2, 2], [0, 0]]])
    # alpha dropout (p = 0.5): kept x -> a x + alpha a p, dropped -> alpha a (p - 1)
    a = 1.0 / math.sqrt((ALPHA * ALPHA * 0.5 + 1.0) * 0.5)
    for target, mask in (("aten.alpha_dropout.default", [[[True, False], [False, True]]]),
                         ("aten.feature_alpha_dropout.default", [[[True], [False]]])):
        node = _graph([_node("y", target, X, 0.5, True)], x.shape)
        kept = np.broadcast_to(np.array(mask), x.shape)
        with feed_masks([np.array(mask)]):
            y = node(x)
        want = np.where(kept, a * x + ALPHA * a * 0.5, ALPHA * a * (0.5 - 1.0))
        np.testing.assert_allclose(y, want, rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(node.backward(np.ones_like(x)), np.where(kept, a, 0.0),
                                   rtol=1e-15)
    rrelu = _graph([_node("y", "aten.rrelu.default", X, 0.1, 0.3, True)], (3,))
    with feed_masks([np.array([0.25, 1.0, 0.125])]):  # slopes where x <= 0, 1 elsewhere
        np.testing.assert_array_equal(rrelu(np.array([-2.0, 3.0, 0.0])), [-0.5, 3.0, 0.0])
    np.testing.assert_array_equal(rrelu.backward(np.ones(3)), [0.25, 1.0, 0.125])
    with feed_masks([]), pytest.raises(ValueError, match="own generator"):
        _graph([_node("y", "aten.rrelu.default", X, 0.1, 0.3, True, object())], (3,))(
            np.ones(3))


def test_batch_norm_node_is_the_batchnorm_layer_with_its_running_statistics() -> None:
    # BatchNorm's input gradient is ill-conditioned for finite differences (its batch sums
    # cancel); the layer is checked that way in its own tests, the node must equal it.
    rng = _rng(3)
    layer = BatchNorm2d(3, momentum=0.3)
    layer.weight.data[...] = rng.uniform(0.5, 1.5, 3)
    layer.bias.data[...] = rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    nodes = [_node("y", "aten.batch_norm.default", X, Ref("w"), Ref("b"), Ref("rm"), Ref("rv"),
                   True, 0.3, 1e-5, False)]
    g = GraphModel(nodes, [("x", (4, 3, 2, 2), np.float64)], Ref("y"),
                   [("w", "weight", Parameter(layer.weight.data)),
                    ("b", "bias", Parameter(layer.bias.data))],
                   [("rm", "running_mean", rm), ("rv", "running_var", rv)])
    x, gy = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))
    np.testing.assert_array_equal(g(x), layer(x))
    np.testing.assert_array_equal(g.backward(gy), layer.backward(gy))
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(g._parameters[name].grad, getattr(layer, name).grad)
    np.testing.assert_array_equal(rm, layer.running_mean)
    np.testing.assert_array_equal(rv, layer.running_var)


def test_a_value_used_twice_gets_the_sum_of_both_gradients() -> None:
    # y = x * x + x: dy/dx = 2x + 1 (the multivariate chain rule over both paths)
    g = _graph([_node("a", "aten.mul.Tensor", X, X), _node("y", "aten.add.Tensor", Ref("a"), X)],
               (3,))
    x = np.array([1.0, -2.0, 0.5])
    g(x)
    np.testing.assert_array_equal(g.backward(np.ones(3)), 2 * x + 1)


def test_a_tied_weight_is_one_parameter_under_two_names_with_the_summed_gradient() -> None:
    p = Parameter(np.array([[2.0, -1.0]]))
    nodes = [_node("h", "aten.linear.default", X, Ref("w1")),       # (1,) = w . x
             _node("y", "aten.mul.Tensor", Ref("h"), Ref("w2"))]     # (1, 2) = h * w
    g = GraphModel(nodes, [("x", (2,), np.float64)], Ref("y"),
                   [("w1", "embed.weight", p), ("w2", "head.weight", p)])
    assert [n for n, _ in g.named_parameters()] == ["embed.weight"]
    assert list(g.state_dict()) == ["embed.weight", "head.weight"]
    x = np.array([3.0, 5.0])
    g(x)
    g.backward(np.ones((1, 2)))
    h = float(p.data[0] @ x)                  # y_j = h w_j, h = w . x
    expected = x * p.data.sum() + h           # dL/dw_k = x_k sum_j w_j + h
    assert p.grad is not None
    np.testing.assert_allclose(p.grad[0], expected, rtol=1e-15)


def test_integer_values_carry_no_gradient_and_embedding_scatters() -> None:
    w = np.arange(12.0).reshape(4, 3)
    nodes = [_node("pos", "aten.arange.default", 3),
             _node("ids", "aten.add.Tensor", X, Ref("pos")),
             _node("y", "aten.embedding.default", W, Ref("ids"))]
    g = GraphModel(nodes, [("x", (2, 3), np.int64)], Ref("y"), [("w", "w", Parameter(w))])
    x = np.array([[0, 0, 0], [1, 0, 1]])
    out = g(x)
    np.testing.assert_array_equal(out, w[x + np.arange(3)])
    assert g.backward(np.ones((2, 3, 3))) is None
    grad = g._parameters["w"].grad
    np.testing.assert_array_equal(grad[:, 0], np.bincount((x + np.arange(3)).ravel(),
                                                          minlength=4))


def test_a_buffer_updated_in_place_keeps_its_array() -> None:
    buf = np.zeros((), dtype=np.int64)
    nodes = [_node("n", "aten.add_.Tensor", Ref("b"), 1)]
    nodes[0].writes = "count"
    g = GraphModel([*nodes, _node("y", "aten.mul.Tensor", X, 2.0)], [("x", (1,), np.float64)],
                   Ref("y"), buffers=[("b", "count", buf)])
    g(np.ones(1))
    g(np.ones(1))
    assert int(buf) == 2 and g.state_dict()["count"] == 2


def test_a_shape_other_than_the_captured_one_is_refused() -> None:
    g = _graph([_node("y", "aten.relu.default", X)], (2, 3))
    with pytest.raises(ValueError, match=r"captured for input 'x' of shape \(2, 3\), got \(4, 3\)"):
        g(np.ones((4, 3)))


def test_unbroadcast_sums_leading_and_size_one_dimensions() -> None:
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])


def test_a_full_reduction_is_a_value_with_a_gradient() -> None:
    """NumPy's ``x.sum()`` is a scalar, not an array: the graph keeps it as a 0-d array, so
    the nodes before it get their gradient (they got none: the backward returned None)."""
    g = _graph([_node("y", "aten.sum.default", X)], (2, 3))
    y = g(np.arange(6.0).reshape(2, 3))
    assert isinstance(y, np.ndarray) and y.shape == () and y == 15.0
    np.testing.assert_array_equal(g.backward(np.array(2.0)), np.full((2, 3), 2.0))


def test_type_as_casts_to_the_other_tensors_dtype() -> None:
    """``aten.type_as(x, other)`` (a loss target cast to its input's dtype): ``x`` in
    ``other``'s dtype; the gradient back in ``x``'s."""
    g = GraphModel([_node("y", "aten.type_as.default", X, np.zeros(2, np.float32))],
                   [("x", (2,), np.float64)], Ref("y"), [])
    y = g(np.array([0.1, 2.0]))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.array([0.1, 2.0], np.float32))
    assert g.backward(np.ones(2, np.float32)).dtype == np.float64


def test_declarations_resolve_and_name_their_layer() -> None:
    for decl in ATEN_OPS:
        fwd, bwd = decl.functions()
        assert callable(fwd) and (bwd is None or callable(bwd)), decl.name
        assert fwd.__doc__ and (bwd is None or bwd.__doc__), decl.name
        if decl.layer:
            assert op(decl.layer).name == decl.layer
            assert any(decl.layer in [o.name for o in by_aten(a)] for a in decl.aten), decl
    assert functional_name("aten.add_.Tensor") == ("aten.add.Tensor", True)
    assert aten_op("aten.relu_.default") is aten_op("aten.relu.default")
    assert "aten.linear.default" in supported_aten()


def test_batchnorm_with_momentum_none_takes_the_cumulative_factor_from_its_count() -> None:
    """torch's ``momentum=None``: factor ``1 / num_batches_tracked`` (after the increment)."""
    from refbp.nn.ops.layers import batch_norm, batch_norm_cumulative

    x = _rng(4).standard_normal((5, 3))
    rm1, rv1, rm2, rv2 = np.zeros(3), np.ones(3), np.zeros(3), np.ones(3)
    y1, _ = batch_norm_cumulative(x, None, None, rm1, rv1, True, np.array(4), 1e-5)
    y2, _ = batch_norm(x, None, None, rm2, rv2, True, 0.25, 1e-5)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(rm1, rm2)
    np.testing.assert_array_equal(rv1, rv2)
    np.testing.assert_allclose(rm1, 0.25 * x.mean(axis=0), rtol=1e-14)


def test_a_symbolic_batch_dimension_runs_any_batch_size_and_sizes_its_values() -> None:
    nodes = [_node("n", "aten.sym_size.int", X, 0),
             _node("y", "aten.view.default", X, [Ref("n"), 6])]
    nodes[1].elements = 12  # the capture's example batch of 2 samples
    g = GraphModel(nodes, [("x", (None, 2, 3), np.float64)], Ref("y"), example_batch=2)
    for n in (1, 5):
        x = _rng(n).standard_normal((n, 2, 3))
        np.testing.assert_array_equal(g(x), x.reshape(n, 6))
        np.testing.assert_array_equal(g.backward(np.ones((n, 6))), np.ones((n, 2, 3)))
    assert g.activation_elements(10) == (2 * (60 + 60), 2 * 60, "y")
    with pytest.raises(ValueError, match=r"shape \(batch, 2, 3\), got \(4, 3\): only the batch "):
        g(np.ones((4, 3)))
