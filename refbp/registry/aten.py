"""Declarations of the ATen operators a graph model runs (``refbp.mirror.export``).

A model captured with ``torch.export`` is a list of ATen operator calls. Each operator refbp
runs is declared here once: its name, the ATen overloads it covers, and the forward and
backward functions of ``refbp.nn.ops`` (dotted paths, resolved on demand, so importing this
module imports neither torch nor the NumPy side). ``backward`` is None for an op whose value
carries no gradient (integer ranges, masks, comparisons). ``layer`` names the declared op of
``refbp.registry.ops`` whose maths a layer-level operator runs (``linear`` is ``Linear``'s).

In-place overloads (``aten.add_.Tensor``, ``aten.relu_.default``) are the functional op whose
result replaces the mutated value: :func:`aten_op` finds them under the functional name.
"""

from __future__ import annotations

from dataclasses import dataclass

from refbp.registry.opinfo import resolve

_OPS = "refbp.nn.ops"


@dataclass(frozen=True)
class AtenOp:
    """One operator of a graph model, declared once (see the module docstring)."""

    name: str
    aten: tuple[str, ...]
    forward: str
    backward: str | None
    layer: str = ""

    def functions(self) -> tuple[object, object | None]:
        """The forward and backward functions (imports the NumPy side)."""
        return resolve(self.forward), None if self.backward is None else resolve(self.backward)


def _op(name: str, module: str, aten: tuple[str, ...], fn: str = "", *, grad: bool = True,
        back: str = "", layer: str = "") -> AtenOp:
    """``refbp.nn.ops.<module>:<fn>`` and ``<fn>_backward`` (or ``back``)."""
    fn = fn or name
    backward = f"{_OPS}.{module}:{back or fn + '_backward'}" if grad else None
    return AtenOp(name, aten, f"{_OPS}.{module}:{fn}", backward, layer)


def _nograd(name: str, aten: tuple[str, ...], fn: str = "") -> AtenOp:
    return _op(name, "nograd", aten, fn, grad=False)


ATEN_OPS: tuple[AtenOp, ...] = (
    # arithmetic and elementwise functions
    _op("add", "pointwise", ("aten.add.Tensor", "aten.add.Scalar")),
    _op("sub", "pointwise", ("aten.sub.Tensor", "aten.sub.Scalar")),
    _op("rsub", "pointwise", ("aten.rsub.Scalar", "aten.rsub.Tensor")),
    _op("mul", "pointwise", ("aten.mul.Tensor", "aten.mul.Scalar")),
    _op("div", "pointwise", ("aten.div.Tensor", "aten.div.Scalar", "aten.div.Tensor_mode")),
    _op("neg", "pointwise", ("aten.neg.default",)),
    _op("pow", "pointwise", ("aten.pow.Tensor_Scalar",), "pow_scalar"),
    _op("rsqrt", "pointwise", ("aten.rsqrt.default",)),
    _op("sqrt", "pointwise", ("aten.sqrt.default",)),
    _op("exp", "pointwise", ("aten.exp.default",)),
    _op("log", "pointwise", ("aten.log.default",)),
    _op("cos", "pointwise", ("aten.cos.default",)),
    _op("sin", "pointwise", ("aten.sin.default",)),
    _op("tanh", "pointwise", ("aten.tanh.default",), layer="Tanh"),
    _op("sigmoid", "pointwise", ("aten.sigmoid.default",), layer="Sigmoid"),
    _op("relu", "pointwise", ("aten.relu.default",), layer="ReLU"),
    _op("gelu", "pointwise", ("aten.gelu.default",), layer="GELU"),
    _op("silu", "pointwise", ("aten.silu.default",), layer="SiLU"),
    _op("where", "pointwise", ("aten.where.self", "aten.where.ScalarOther",
                               "aten.where.ScalarSelf", "aten.where.Scalar")),
    _op("masked_fill", "pointwise", ("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")),
    _op("to", "pointwise", ("aten.to.dtype", "aten.to.dtype_layout", "aten._to_copy.default",
                            "aten.type_as.default"), "to_dtype"),
    _op("to_device", "pointwise", ("aten.to.device",), back="to_dtype_backward"),
    # matrix products, reductions, softmax
    _op("linear", "linalg", ("aten.linear.default",), layer="Linear"),
    _op("addmm", "linalg", ("aten.addmm.default",)),
    _op("matmul", "linalg", ("aten.matmul.default", "aten.mm.default", "aten.bmm.default")),
    _op("sum", "linalg", ("aten.sum.dim_IntList", "aten.sum.default"), "sum_",
        back="sum_backward"),
    _op("mean", "linalg", ("aten.mean.dim", "aten.mean.default")),
    _op("softmax", "linalg", ("aten.softmax.int", "aten._softmax.default"), layer="Softmax"),
    _op("log_softmax", "linalg", ("aten.log_softmax.int", "aten._log_softmax.default"),
        layer="LogSoftmax"),
    # shapes
    _op("view", "shape", ("aten.view.default", "aten.reshape.default",
                          "aten._unsafe_view.default")),
    _op("flatten", "shape", ("aten.flatten.using_ints",), back="reshape_backward",
        layer="Flatten"),
    _op("unflatten", "shape", ("aten.unflatten.int",), back="reshape_backward",
        layer="Unflatten"),
    _op("permute", "shape", ("aten.permute.default",)),
    _op("transpose", "shape", ("aten.transpose.int",)),
    _op("t", "shape", ("aten.t.default",)),
    _op("unsqueeze", "shape", ("aten.unsqueeze.default",), back="view_backward"),
    _op("squeeze", "shape", ("aten.squeeze.default", "aten.squeeze.dim", "aten.squeeze.dims"),
        back="view_backward"),
    _op("expand", "shape", ("aten.expand.default",)),
    _op("identity", "shape", ("aten.clone.default", "aten.contiguous.default",
                              "aten.alias.default", "aten.lift_fresh_copy.default")),
    _op("detach", "shape", ("aten.detach.default",), grad=False),
    _op("cat", "shape", ("aten.cat.default", "aten.concat.default")),
    _op("stack", "shape", ("aten.stack.default",)),
    _op("split", "shape", ("aten.split.Tensor", "aten.split_with_sizes.default")),
    _op("getitem", "shape", ("_operator.getitem",)),
    _op("slice", "shape", ("aten.slice.Tensor",), "slice_", back="slice_backward"),
    _op("select", "shape", ("aten.select.int",), back="slice_backward"),
    _op("index", "shape", ("aten.index.Tensor",)),
    _op("gather", "shape", ("aten.gather.default",)),
    # layers
    _op("conv2d", "layers", ("aten.conv2d.default", "aten.conv2d.padding"), layer="Conv2d"),
    _op("conv_transpose2d", "layers", ("aten.conv_transpose2d.input",),
        layer="ConvTranspose2d"),
    _op("pad", "layers", ("aten.pad.default",)),  # the padding layers' maths, every mode
    _op("batch_norm", "layers", ("aten.batch_norm.default",), back="batch_norm_backward_",
        layer="BatchNorm2d"),
    _op("layer_norm", "layers", ("aten.layer_norm.default",), layer="LayerNorm"),
    _op("embedding", "layers", ("aten.embedding.default",), layer="Embedding"),
    _op("dropout", "layers", ("aten.dropout.default",), layer="Dropout"),
    _op("feature_dropout", "layers", ("aten.feature_dropout.default",), back="dropout_backward",
        layer="Dropout2d"),
    _op("alpha_dropout", "layers", ("aten.alpha_dropout.default",), back="dropout_backward",
        layer="AlphaDropout"),
    _op("feature_alpha_dropout", "layers", ("aten.feature_alpha_dropout.default",),
        back="dropout_backward", layer="FeatureAlphaDropout"),
    _op("rrelu", "layers", ("aten.rrelu.default",), layer="RReLU"),
    _op("max_pool2d", "layers", ("aten.max_pool2d.default",), back="pool_backward",
        layer="MaxPool2d"),
    _op("avg_pool2d", "layers", ("aten.avg_pool2d.default",), back="pool_backward",
        layer="AvgPool2d"),
    _op("adaptive_avg_pool2d", "layers", ("aten.adaptive_avg_pool2d.default",),
        back="pool_backward", layer="AdaptiveAvgPool2d"),
    *(_op(f"fractional_max_pool{n}d", "layers", (f"aten.fractional_max_pool{n}d.default",),
          back="fractional_max_pool_backward", layer=f"FractionalMaxPool{n}d") for n in (2, 3)),
    _op("scaled_dot_product_attention", "layers",
        ("aten.scaled_dot_product_attention.default",), "sdpa"),
    # torch.nn.functional calls in a model's own code: losses, interpolation, logsigmoid
    *(_op(name, "functional", (f"aten.{name}.default",), back="loss_backward", layer=layer)
      for name, layer in (("l1_loss", "L1Loss"), ("mse_loss", "MSELoss"),
                          ("smooth_l1_loss", "SmoothL1Loss"), ("huber_loss", "HuberLoss"),
                          ("binary_cross_entropy", "BCELoss"),
                          ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss"),
                          ("kl_div", "KLDivLoss"), ("poisson_nll_loss", "PoissonNLLLoss"),
                          ("hinge_embedding_loss", "HingeEmbeddingLoss"),
                          ("soft_margin_loss", "SoftMarginLoss"),
                          ("multilabel_margin_loss", "MultiLabelMarginLoss"),
                          ("multi_margin_loss", "MultiMarginLoss"))),
    _op("nll_loss", "functional", ("aten.nll_loss_nd.default",), back="loss_backward",
        layer="NLLLoss"),
    _op("log_sigmoid", "functional", ("aten.log_sigmoid.default",), layer="LogSigmoid"),
    _op("broadcast_tensors", "functional", ("aten.broadcast_tensors.default",)),
    _op("upsample_nearest", "functional",
        tuple(f"aten.upsample_nearest{d}d.vec" for d in (1, 2, 3)), back="upsample_backward",
        layer="Upsample"),
    _op("upsample_nearest_exact", "functional",
        tuple(f"aten._upsample_nearest_exact{d}d.vec" for d in (1, 2, 3)),
        back="upsample_backward", layer="Upsample"),
    _op("upsample_linear", "functional",
        ("aten.upsample_linear1d.vec", "aten.upsample_bilinear2d.vec",
         "aten.upsample_trilinear3d.vec"), back="upsample_backward", layer="Upsample"),
    _op("upsample_bicubic", "functional", ("aten.upsample_bicubic2d.vec",),
        back="upsample_backward", layer="Upsample"),
    *(_op(f"upsample_{m}_aa", "functional", (f"aten._upsample_{m}2d_aa.vec",),
          back="upsample_backward", layer="Upsample") for m in ("bilinear", "bicubic")),
    # values without a gradient
    _nograd("arange", ("aten.arange.default", "aten.arange.start", "aten.arange.start_step")),
    _nograd("full", ("aten.full.default",)),
    _nograd("zeros", ("aten.zeros.default",)),
    _nograd("ones", ("aten.ones.default",)),
    _nograd("rand", ("aten.rand.default",)),
    _nograd("full_like", ("aten.full_like.default",)),
    _nograd("zeros_like", ("aten.zeros_like.default",)),
    _nograd("ones_like", ("aten.ones_like.default",)),
    _nograd("scalar_tensor", ("aten.scalar_tensor.default",)),
    *(_nograd(c, (f"aten.{c}.Tensor", f"aten.{c}.Scalar"))
      for c in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                "bitwise_and", "bitwise_or")),
    _nograd("logical_not", ("aten.logical_not.default",)),
    _nograd("bitwise_not", ("aten.bitwise_not.default",)),
    _nograd("cumsum", ("aten.cumsum.default",)),
    _nograd("no_op", ("aten._assert_tensor_metadata.default", "aten._assert_scalar.default",
                      "aten.sym_constrain_range_for_size.default")),
    # sizes of a graph captured with a dynamic batch dimension (Python ints)
    _nograd("sym_size", ("aten.sym_size.int",)),
    *(_nograd(f"size_{o}", (f"_operator.{o}",))
      for o in ("add", "sub", "mul", "floordiv", "truediv", "mod", "neg")),
)

_BY_ATEN: dict[str, AtenOp] = {a: op for op in ATEN_OPS for a in op.aten}
if len(_BY_ATEN) != sum(len(op.aten) for op in ATEN_OPS):  # pragma: no cover - a bug
    raise RuntimeError("an ATen operator is declared twice")


def functional_name(target: str) -> tuple[str, bool]:
    """``("aten.add.Tensor", True)`` for ``"aten.add_.Tensor"``: the functional overload and
    whether the call is in place."""
    parts = target.split(".")
    if len(parts) == 3 and parts[1].endswith("_") and not parts[1].startswith("_"):
        return f"{parts[0]}.{parts[1][:-1]}.{parts[2]}", True
    return target, False


def aten_op(target: str) -> AtenOp | None:
    """The declaration covering an ATen operator (its in-place form included), or None."""
    return _BY_ATEN.get(functional_name(target)[0])


def supported_aten() -> list[str]:
    """Every ATen operator a graph model runs, sorted (in-place forms not listed)."""
    return sorted(_BY_ATEN)
