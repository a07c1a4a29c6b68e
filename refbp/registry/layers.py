"""Declarations of the layers: linear, shape, normalization, convolution, pooling, dropout,
embedding, recurrent and attention layers.

The maths of a layer without a separate functional core is its class's ``forward`` and
``backward`` (with the derivation in the class docstring). Op checks declared here run in
the order of this file. Images are ``image_regression`` data (smooth blobs) of 2 channels
and 7 x 6 pixels (odd sizes exercise ceil mode and padding); 1-D signals come from regression
data through ``Unflatten``; the target size of each case is the flattened output size,
computed by hand. The samples of the convolution, recurrent and attention layers are in
:mod:`~.samples_conv`, :mod:`~.samples_sequence` and :mod:`~.samples_attention`; a test
checks that every declared op appears in the quick suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.registry import samples_attention, samples_conv, samples_sequence, shapes, sizes
from refbp.registry.opinfo import EXTREME, REQUIRED, Data, Layers, OpInfo, Sample

_F = "torch.nn.functional"
_REG5 = Data("regression", n=16, features=5, outputs=5)
_FLAT15 = Data("regression", n=8, features=15, outputs=4)
_MSE: tuple[str, Mapping[str, Any]] = ("MSELoss", {})
_SEQ = "refbp.mirror.sequence"
_ATT = "refbp.mirror.attention"
_RNN_NOTE = ("torch declares (*args, **kwargs) and documents torch.nn.RNNBase's arguments; "
             "the refbp class takes them by name")


def _layer(name: str, args: Mapping[str, Any], functional: str | None,
           aten: tuple[str, ...], *, module: str, **kw: Any) -> OpInfo:
    """A layer whose class is ``refbp.nn.<module>.<name>`` and whose maths are the class's
    ``forward`` and ``backward`` methods."""
    path = f"refbp.nn.{module}"
    return OpInfo(name=name, kind="layer", module=path, forward=f"{path}:{name}.forward",
                  backward=f"{path}:{name}.backward", args=args,
                  functional=f"{_F}.{functional}" if functional else None, aten=aten, **kw)


_FLAT: Layers = (("Flatten", {}),)


def _img(outputs: int, *, c: int = 2, h: int = 7, w: int = 6, **extra: Any) -> Data:
    """``image_regression`` data (smooth blobs) of ``c`` channels, ``h`` x ``w`` pixels; the
    target size is the flattened output size (``round: 0`` makes ties for max pooling)."""
    return Data("image_regression", n=4, features=c, outputs=outputs,
                extra={"height": h, "width": w, **extra})


# 1-D layers run on (N, 2, 9) signals unflattened from 18 regression features
_SIG_IN: Layers = (("Unflatten", {"dim": 1, "unflattened_size": [2, 9]}),)
_SIG = Data("regression", n=8, features=18, outputs=10)
_IMG4 = _img(80, c=4, h=5, w=4)


def _vol(outputs: int) -> Data:
    """Volumes (N=4, 2, 3, 3, 4) of normals; the target size is the flattened output size."""
    return Data("tensors", n=4, features=2, outputs=outputs, extra={"size": [3, 3, 4]})


def _cnn(id: str, options: Mapping[str, Any], data: Data, description: str,
         before: Layers = (), after: Layers = _FLAT) -> Sample:
    """An op check of a convolutional-network layer: flattened after, MSE loss."""
    return Sample(id, options, data, before=before, after=after, loss=_MSE,
                  description=description)


_CONV = {"in_channels": REQUIRED, "out_channels": REQUIRED, "kernel_size": REQUIRED,
         "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
         "padding_mode": "zeros"}
_CONVT = {"in_channels": REQUIRED, "out_channels": REQUIRED, "kernel_size": REQUIRED,
          "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
          "dilation": 1, "padding_mode": "zeros"}
_MAXPOOL = {"kernel_size": REQUIRED, "stride": None, "padding": 0, "dilation": 1,
            "return_indices": False, "ceil_mode": False}
_AVGPOOL = {"kernel_size": REQUIRED, "stride": None, "padding": 0, "ceil_mode": False,
            "count_include_pad": True}
_BN = {"num_features": REQUIRED, "eps": 1e-5, "momentum": 0.1, "affine": True,
       "track_running_stats": True, "bias": True}
_IN = {"num_features": REQUIRED, "eps": 1e-5, "momentum": 0.1, "affine": False,
       "track_running_stats": False, "bias": True}
_CELL = {"input_size": REQUIRED, "hidden_size": REQUIRED, "bias": True}
_STACK = {"input_size": REQUIRED, "hidden_size": REQUIRED, "num_layers": 1, "bias": True,
          "batch_first": False, "dropout": 0.0, "bidirectional": False}

def _conv_layer(dims: int, transposed: bool) -> OpInfo:
    """``Conv{dims}d`` or ``ConvTranspose{dims}d``: maths in ``refbp.nn.functional_conv``
    (through the class), op checks in :mod:`~.samples_conv`."""
    kind = "Transpose" if transposed else ""
    fn = f"conv{'_transpose' if transposed else ''}{dims}d"
    overload = "input" if transposed and dims > 1 else "default"
    samples = getattr(samples_conv, f"CONV{'_TRANSPOSE' if transposed else ''}{dims}D")
    return _layer(f"Conv{kind}{dims}d", _CONVT if transposed else _CONV, fn,
                  (f"aten.{fn}.{overload}", "aten.convolution.default"),
                  size=sizes.conv(dims, transposed=transposed), module="conv", samples=samples,
                  output=shapes.sliding(dims, transposed=transposed))


def _pad(name: str, dims: int, aten: str, sample: tuple[Mapping[str, Any], int]) -> OpInfo:
    """A padding layer: its op check pads signals (N, 2, 9), images (N, 2, 7, 6) or volumes
    (N, 2, 3, 3, 4), flattened into an MSE loss of the padded size."""
    options, outputs = sample
    args = {"padding": REQUIRED, **({"value": REQUIRED} if name.startswith("Constant") else {})}
    data = {1: Data("regression", n=8, features=18, outputs=outputs),
            2: _img(outputs),
            3: _vol(outputs)}
    text = {1: "signals (N, 2, 9)", 2: "images (N, 2, 7, 6)", 3: "volumes (N, 2, 3, 3, 4)"}
    return OpInfo(name=name, kind="layer", forward="refbp.nn.functional_pad:pad",
                  module="refbp.nn.padding",
                  backward="refbp.nn.functional_pad:pad_backward", args=args,
                  functional=f"{_F}.pad", aten=(aten.format(n=dims),),
                  samples=(_cnn(name.lower(), options, data[dims],
                                f"{name}({options}) of {text[dims]}",
                                before=_SIG_IN if dims == 1 else ()),),
                  output=shapes.pad(dims))


# (kind, ATen operator, the (options, padded size) of the 1-, 2- and 3-D op checks)
_PADS: tuple[tuple[str, str, tuple[tuple[Mapping[str, Any], int], ...]], ...] = (
    ("Zero", "aten.constant_pad_nd.default",
     (({"padding": [1, 2]}, 24), ({"padding": [1, 0, 2, 1]}, 140), ({"padding": 1}, 300))),
    # negative padding crops
    ("Constant", "aten.constant_pad_nd.default",
     (({"padding": 2, "value": -1.5}, 26), ({"padding": [-1, 2, 0, -2], "value": 1.0}, 70),
      ({"padding": [1, 0, 0, 1, 1, 0], "value": 2.0}, 160))),
    ("Reflection", "aten.reflection_pad{n}d.default",
     (({"padding": [3, 1]}, 26), ({"padding": [2, 1, 3, 0]}, 180),
      ({"padding": [1, 1, 2, 0, 1, 1]}, 300))),
    ("Replication", "aten.replication_pad{n}d.default",
     (({"padding": [2, 0]}, 22), ({"padding": [1, 2, 0, 2]}, 162),
      ({"padding": [0, 2, 1, 0, 0, 1]}, 192))),
    ("Circular", "aten._pad_circular.default",
     (({"padding": [1, 3]}, 26), ({"padding": [2, 2, 1, 1]}, 180),
      ({"padding": [1, 2, 1, 0, 2, 1]}, 336))),
)

def _shuffle(name: str, arg: str, fn: str, sample: Sample,
             output: shapes.ShapeRule | None = None) -> OpInfo:
    """A rearranging layer: maths ``refbp.nn.shuffle.<fn>``, its inverse the backward."""
    return OpInfo(name=name, kind="layer", forward=f"refbp.nn.shuffle:{fn}",
                  module="refbp.nn.shuffle",
                  backward=f"refbp.nn:{name}.backward", args={arg: REQUIRED},
                  functional=f"{_F}.{fn}",
                  aten=(f"aten.{fn}.default",), samples=(sample,), output=output)


def _resample(name: str, args: Mapping[str, Any], samples: tuple[Sample, ...]) -> OpInfo:
    """A resampling layer: ``F.interpolate``'s interpolation matrices per axis."""
    core = "refbp.nn.functional_interp"
    return OpInfo(name=name, kind="layer", forward=f"{core}:interpolate",
                  module="refbp.nn.upsample",
                  backward=f"{core}:interpolate_backward", args=args,
                  functional=f"{_F}.interpolate",
                  aten=tuple(f"aten.upsample_{m}.vec" for m in (
                      "nearest1d", "nearest2d", "nearest3d", "linear1d", "bilinear2d",
                      "bicubic2d", "trilinear3d")) + tuple(
                      f"aten._upsample_nearest_exact{d}d.vec" for d in (1, 2, 3)) + tuple(
                      f"aten._upsample_{m}2d_aa.vec" for m in ("bilinear", "bicubic"))
                  if name == "Upsample" else (), samples=samples, output=shapes.resample)


LAYERS: tuple[OpInfo, ...] = (
    _layer("Identity", {}, None, (),
           samples=(Sample("identity", data=EXTREME, loss=("SSELoss", {}),
                           description="Identity on extreme inputs (0, +-1e-8, +-1, +-30, "
                           "+-1e4)"),), module="linear"),
    _layer("Linear", {"in_features": REQUIRED, "out_features": REQUIRED, "bias": True},
           "linear", ("aten.linear.default", "aten.addmm.default"), size=sizes.linear,
           samples=(Sample("linear", {"in_features": 5, "out_features": 3},
                           Data("regression", n=16, features=5, outputs=3), loss=_MSE,
                           description="Linear layer"),),
           families=("Linear",), module="linear", output=shapes.linear),
    _layer("Unflatten", {"dim": REQUIRED, "unflattened_size": REQUIRED}, None,
           ("aten.unflatten.int",),
           samples=(Sample("unflatten-infer", {"dim": 1, "unflattened_size": [3, -1]}, _FLAT15,
                           after=(("Flatten", {}),
                                  ("Linear", {"in_features": 15, "out_features": 4})),
                           loss=_MSE,
                           description="Unflatten to (3, -1) (inferred 5), Flatten, Linear"),),
           module="unflatten", output=shapes.unflatten),
    _layer("Flatten", {"start_dim": 1, "end_dim": -1}, None, ("aten.flatten.using_ints",),
           samples=(Sample("flatten", data=_FLAT15,
                           after=(("Linear", {"in_features": 15, "out_features": 4}),),
                           loss=_MSE, description="Flatten then Linear"),), module="linear",
           output=shapes.flatten),
    _layer("BatchNorm1d", _BN, "batch_norm",
           ("aten.batch_norm.default", "aten._native_batch_norm_legit_functional.default"),
           samples=(Sample("batchnorm", {"num_features": 5}, _REG5, loss=_MSE,
                           description="BatchNorm1d in training mode (batch statistics, "
                           "running mean and unbiased running variance)"),),
           families=("BatchNorm1d",), size=sizes.batchnorm, module="batchnorm"),
    _layer("LayerNorm", {"normalized_shape": REQUIRED, "eps": 1e-5, "elementwise_affine": True,
                         "bias": True}, "layer_norm",
           ("aten.layer_norm.default", "aten.native_layer_norm.default"),
           samples=(Sample("layernorm", {"normalized_shape": 5},
                           Data("regression", n=16, features=5, outputs=5,
                                extra={"scale": 30.0}), loss=_MSE,
                           description="LayerNorm over the last dimension (weight and bias)"),
                    Sample("layernorm-noaffine", {"normalized_shape": 6,
                                                  "elementwise_affine": False},
                           Data("regression", n=16, features=5, outputs=6),
                           before=(("Linear", {"in_features": 5, "out_features": 6}),),
                           loss=_MSE, description="LayerNorm without weight and bias, after a "
                           "Linear layer"), *samples_attention.LAYER_NORM),
           size=sizes.layernorm, module="layernorm"),
    _layer("Dropout", {"p": 0.5, "inplace": False}, "dropout",
           ("aten.dropout.default", "aten.native_dropout.default"),
           samples=(Sample("dropout", {"p": 0.3}, Data("regression", n=16, features=6, outputs=6),
                           loss=_MSE, description="Dropout(0.3) in training mode, mask drawn "
                           "by torch and fed to refbp"),
                    Sample("dropout-p1", {"p": 1.0}, Data("regression", n=16, features=6,
                                                          outputs=6),
                           after=(("Dropout", {"p": 0.0}),), loss=_MSE,
                           description="Dropout(1.0) zeroes, Dropout(0.0) keeps everything")),
           defaults_check=Sample("dropout", data=_REG5, loss=_MSE), module="dropout"),
    _layer("Dropout2d", {"p": 0.5, "inplace": False}, "dropout2d",
           ("aten.feature_dropout.default",),
           samples=(_cnn("dropout2d", {"p": 0.5}, _img(36, c=3, h=4, w=3),
                         "Dropout2d(0.5): one mask per (sample, channel) map"),), module="dropout"),
    _layer("MaxPool2d", _MAXPOOL, "max_pool2d",
           ("aten.max_pool2d.default", "aten.max_pool2d_with_indices.default"),
           samples=(_cnn("maxpool2d", {"kernel_size": 2}, _img(18),
                         "MaxPool2d(2) on 7x6 images (floor mode drops the last row)"),
                    _cnn("maxpool2d-ceil-edge", {"kernel_size": 2, "stride": 2, "padding": 1,
                                                 "ceil_mode": True}, _img(32),
                         "MaxPool2d ceil mode on 7 rows: the last window would start in the "
                         "padding, dropped"),
                    _cnn("maxpool2d-list", {"kernel_size": [2], "stride": [2, 1]}, _img(30),
                         "MaxPool2d with a one-element kernel list (2x2) and a stride per "
                         "dimension"),
                    _cnn("maxpool2d-pad-dil-ceil", {"kernel_size": 3, "stride": 2,
                                                    "padding": 1, "dilation": 2,
                                                    "ceil_mode": True}, _img(18, round=0),
                         "MaxPool2d with padding, dilation and ceil mode on rounded images "
                         "(ties: first max)")), module="pooling",
           output=shapes.sliding(2, out_key=None)),
    _layer("MaxPool1d", _MAXPOOL, "max_pool1d", ("aten.max_pool1d.default",),
           samples=(_cnn("maxpool1d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                       "ceil_mode": True}, _SIG,
                         "MaxPool1d with padding and ceil mode", before=_SIG_IN),),
           module="pooling", output=shapes.sliding(1, out_key=None)),
    _layer("AvgPool2d", {**_AVGPOOL, "divisor_override": None}, "avg_pool2d",
           ("aten.avg_pool2d.default",),
           samples=(_cnn("avgpool2d-exclude-pad", {"kernel_size": 3, "stride": 2, "padding": 1,
                                                   "ceil_mode": True,
                                                   "count_include_pad": False}, _img(32),
                         "AvgPool2d, ceil mode, divisor without padding"),
                    _cnn("avgpool2d-divisor", {"kernel_size": 2, "stride": 1,
                                               "divisor_override": 3}, _img(60),
                         "AvgPool2d with overlapping windows and divisor_override")),
           module="pooling", output=shapes.sliding(2, out_key=None)),
    _layer("AvgPool1d", _AVGPOOL, "avg_pool1d", ("aten.avg_pool1d.default",),
           samples=(_cnn("avgpool1d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                       "ceil_mode": True}, _SIG,
                         "AvgPool1d with padding (counted) and ceil mode", before=_SIG_IN),),
           module="pooling", output=shapes.sliding(1, out_key=None)),
    _layer("AdaptiveAvgPool2d", {"output_size": REQUIRED}, "adaptive_avg_pool2d",
           ("aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default"),
           samples=(_cnn("adaptiveavgpool2d", {"output_size": [3, 4]}, _img(24),
                         "AdaptiveAvgPool2d 7x6 -> 3x4 (overlapping windows of unequal size)"),
                    _cnn("adaptiveavgpool2d-global", {"output_size": 1}, _img(2),
                         "AdaptiveAvgPool2d(1): global average"),
                    _cnn("adaptiveavgpool2d-none", {"output_size": [None, 2]}, _img(28),
                         "AdaptiveAvgPool2d (None, 2): the height is kept")),
           module="adaptive_pooling", output=shapes.adaptive(2)),
    _layer("AdaptiveAvgPool1d", {"output_size": REQUIRED}, "adaptive_avg_pool1d",
           ("aten.adaptive_avg_pool1d.default",),
           samples=(_cnn("adaptiveavgpool1d", {"output_size": 4},
                         Data("regression", n=8, features=18, outputs=8),
                         "AdaptiveAvgPool1d 9 -> 4", before=_SIG_IN),), module="adaptive_pooling",
           output=shapes.adaptive(1)),
    _layer("AdaptiveMaxPool2d", {"output_size": REQUIRED, "return_indices": False},
           "adaptive_max_pool2d", ("aten.adaptive_max_pool2d.default",),
           samples=(_cnn("adaptivemaxpool2d", {"output_size": [3, 2]}, _img(12, round=0),
                         "AdaptiveMaxPool2d 7x6 -> 3x2 on rounded images (ties)"),),
           module="adaptive_pooling", output=shapes.adaptive(2)),
    _layer("MaxPool3d", _MAXPOOL, "max_pool3d",
           ("aten.max_pool3d.default", "aten.max_pool3d_with_indices.default"),
           samples=(_cnn("maxpool3d", {"kernel_size": 2, "stride": (1, 2, 2), "padding": 1,
                                       "ceil_mode": True}, _vol(48),
                         "MaxPool3d 2x2x2, padding 1, ceil mode on volumes (N, 2, 3, 3, 4)"),
                    _cnn("maxpool3d-dilated", {"kernel_size": (2, 1, 2), "dilation": (1, 1, 2),
                                               "stride": 1}, _vol(24),
                         "MaxPool3d with a dilated kernel (2, 1, 2)")), module="pooling",
           output=shapes.sliding(3, out_key=None)),
    _layer("AvgPool3d", {**_AVGPOOL, "divisor_override": None}, "avg_pool3d",
           ("aten.avg_pool3d.default",),
           samples=(_cnn("avgpool3d", {"kernel_size": 2, "stride": 1, "padding": 1,
                                       "count_include_pad": False}, _vol(160),
                         "AvgPool3d overlapping 2x2x2 windows, padding 1 not counted"),
                    _cnn("avgpool3d-divisor", {"kernel_size": (3, 2, 2), "stride": 2,
                                               "ceil_mode": True, "divisor_override": 5},
                         _vol(8), "AvgPool3d, ceil mode, divisor_override")),
           module="pooling", output=shapes.sliding(3, out_key=None)),
    _layer("AdaptiveAvgPool3d", {"output_size": REQUIRED}, "adaptive_avg_pool3d",
           ("aten.adaptive_avg_pool3d.default", "aten._adaptive_avg_pool3d.default"),
           samples=(_cnn("adaptiveavgpool3d", {"output_size": [2, None, 3]}, _vol(36),
                         "AdaptiveAvgPool3d 3x3x4 -> 2x3x3 (overlapping windows)"),
                    _cnn("adaptiveavgpool3d-global", {"output_size": 1}, _vol(2),
                         "AdaptiveAvgPool3d(1): global average of volumes")),
           module="adaptive_pooling", output=shapes.adaptive(3)),
    _layer("AdaptiveMaxPool1d", {"output_size": REQUIRED, "return_indices": False},
           "adaptive_max_pool1d", ("aten.adaptive_max_pool1d.default",),
           samples=(_cnn("adaptivemaxpool1d", {"output_size": 4},
                         Data("regression", n=8, features=18, outputs=8),
                         "AdaptiveMaxPool1d 9 -> 4", before=_SIG_IN),), module="adaptive_pooling",
           output=shapes.adaptive(1)),
    _layer("AdaptiveMaxPool3d", {"output_size": REQUIRED, "return_indices": False},
           "adaptive_max_pool3d", ("aten.adaptive_max_pool3d.default",),
           samples=(_cnn("adaptivemaxpool3d", {"output_size": [2, 2, 3]}, _vol(24),
                         "AdaptiveMaxPool3d 3x3x4 -> 2x2x3"),),
           module="adaptive_pooling", output=shapes.adaptive(3)),
    *(_layer(f"LPPool{n}d", {"norm_type": REQUIRED, "kernel_size": REQUIRED, "stride": None,
                            "ceil_mode": False}, f"lp_pool{n}d", (), module="lp_pool",
             samples=samples, output=shapes.sliding(n, out_key=None)) for n, samples in (
        (1, (_cnn("lppool1d", {"norm_type": 4, "kernel_size": 3, "stride": 2,
                               "ceil_mode": True},
                  Data("regression", n=8, features=18, outputs=8),
                  "LPPool1d p=4, ceil mode, over signals (N, 2, 9)", before=_SIG_IN),
             _cnn("lppool1d-inf", {"norm_type": float("inf"), "kernel_size": 2},
                  Data("regression", n=8, features=18, outputs=8),
                  "LPPool1d p=inf: max of |x|", before=_SIG_IN))),
        (2, (_cnn("lppool2d", {"norm_type": 2, "kernel_size": [2, 3], "stride": 1}, _img(48),
                  "LPPool2d p=2 (sqrt of the sum of squares), overlapping 2x3 windows"),)),
        (3, (_cnn("lppool3d", {"norm_type": 1, "kernel_size": 2, "stride": (1, 1, 2)}, _vol(16),
                  "LPPool3d p=1 (window sums) over volumes (N, 2, 3, 3, 4)"),)))),
    *(_layer(f"MaxUnpool{n}d", {"kernel_size": REQUIRED, "stride": None, "padding": 0},
             f"max_unpool{n}d", (f"aten.max_unpool{n}d.default",) if n > 1 else (),
             module="unpool",
             suite_note="takes the indices of a max pooling as a second input, which an op "
             "check cannot feed; parity_tests/test_pooling_parity.py checks it against torch "
             "in both dtypes") for n in (1, 2, 3)),
    _layer("BatchNorm2d", _BN, "batch_norm",
           ("aten.batch_norm.default", "aten._native_batch_norm_legit_functional.default"),
           samples=(_cnn("batchnorm2d", {"num_features": 2}, _img(84),
                         "BatchNorm2d in training mode: batch statistics over N, H, W; running "
                         "statistics"),
                    _cnn("batchnorm2d-cumulative-noaffine", {"num_features": 2, "momentum": None,
                                                             "affine": False}, _img(84),
                         "BatchNorm2d, momentum=None (cumulative average), no weight and bias"),
                    _cnn("batchnorm2d-untracked", {"num_features": 2,
                                                   "track_running_stats": False}, _img(84),
                         "BatchNorm2d without running statistics")), size=sizes.batchnorm,
           module="batchnorm"),
    _layer("GroupNorm", {"num_groups": REQUIRED, "num_channels": REQUIRED, "eps": 1e-5,
                         "affine": True, "bias": True}, "group_norm",
           ("aten.group_norm.default", "aten.native_group_norm.default"),
           samples=(_cnn("groupnorm", {"num_groups": 2, "num_channels": 4}, _IMG4,
                         "GroupNorm, 2 groups of 2 channels"),
                    _cnn("groupnorm-1group-noaffine", {"num_groups": 1, "num_channels": 4,
                                                       "affine": False}, _IMG4,
                         "GroupNorm with one group (LayerNorm over C, H, W), no affine")),
           size=sizes.groupnorm, module="normalization"),
    _layer("InstanceNorm2d", {"num_features": REQUIRED, "eps": 1e-5, "momentum": 0.1,
                              "affine": False, "track_running_stats": False, "bias": True},
           "instance_norm", ("aten.instance_norm.default",),
           samples=(_cnn("instancenorm2d", {"num_features": 4}, _IMG4,
                         "InstanceNorm2d (no affine, no running statistics: torch's defaults)"),
                    _cnn("instancenorm2d-affine-tracked", {"num_features": 4, "affine": True,
                                                           "track_running_stats": True}, _IMG4,
                         "InstanceNorm2d with affine and running statistics")),
           size=sizes.batchnorm, module="normalization"),
    *(_conv_layer(dims, transposed) for dims, transposed in (
        (1, False), (2, False), (1, True), (2, True), (3, False), (3, True))),
    _layer("Embedding", {"num_embeddings": REQUIRED, "embedding_dim": REQUIRED,
                         "padding_idx": None, "max_norm": None, "norm_type": 2.0,
                         "scale_grad_by_freq": False, "sparse": False}, "embedding",
           ("aten.embedding.default",),
           torch_only={"_weight": "torch's private initial weight (refbp: load_state_dict)",
                       "_freeze": "torch's private flag for Embedding.from_pretrained"},
           size=sizes.embedding, module="embedding",
           samples=samples_sequence.EMBEDDING, output=shapes.embedding),
    _layer("RNN", {"input_size": REQUIRED, "hidden_size": REQUIRED, "num_layers": 1,
                   "nonlinearity": "tanh", "bias": True, "batch_first": False, "dropout": 0.0,
                   "bidirectional": False}, None,
           ("aten.rnn_tanh.input", "aten.rnn_relu.input"), converter=_SEQ,
           signature_note=_RNN_NOTE, size=sizes.rnn(1), module="rnn",
           samples=samples_sequence.RNN, output=shapes.rnn(1)),
    _layer("LSTM", {**_STACK, "proj_size": 0}, None, ("aten.lstm.input",), converter=_SEQ,
           signature_note=_RNN_NOTE, size=sizes.rnn(4), module="rnn",
           samples=samples_sequence.LSTM, output=shapes.rnn(4, cell_state=True)),
    _layer("GRU", _STACK, None, ("aten.gru.input",), converter=_SEQ, signature_note=_RNN_NOTE,
           size=sizes.rnn(3), module="rnn",
           samples=samples_sequence.GRU, output=shapes.rnn(3)),
    _layer("RNNCell", {**_CELL, "nonlinearity": "tanh"}, None,
           ("aten.rnn_tanh_cell.default", "aten.rnn_relu_cell.default"), converter=_SEQ,
           size=sizes.cell(1), module="rnn_cell",
           samples=samples_sequence.RNN_CELL,
           defaults_check=Sample("rnncell", {"input_size": 5, "hidden_size": 5}, _REG5,
                                 loss=_MSE), output=shapes.cell(1)),
    _layer("LSTMCell", _CELL, None, ("aten.lstm_cell.default",),
           suite_note="returns the pair (h', c'), which an op check cannot feed to a loss; "
           "parity_tests/test_rnn_parity.py and torch's module_db cases check it",
           size=sizes.cell(4), module="rnn_cell", output=shapes.cell(4)),
    _layer("GRUCell", _CELL, None, ("aten.gru_cell.default",), size=sizes.cell(3),
           module="rnn_cell",
           samples=samples_sequence.GRU_CELL, output=shapes.cell(3)),
    # refbp's picker of one time step (or the mean) of a recurrent layer's output
    _layer("RNNOutput", {"select": "last", "batch_first": False}, None, (),
           torch_module=f"{_SEQ}:RNNOutputTorch", converter=_SEQ, module="sequence",
           output=shapes.rnn_output),
    _layer("MultiheadAttention", {"embed_dim": REQUIRED, "num_heads": REQUIRED, "dropout": 0.0,
                                  "bias": True, "add_bias_kv": False, "add_zero_attn": False,
                                  "kdim": None, "vdim": None, "batch_first": False},
           "multi_head_attention_forward", (), converter=_ATT,
           tolerance={"float32": "float32_attention"},
           suite_note="takes query, key and value: the op checks op-mha-* run it through the "
           "one-input AttentionProbe", size=sizes.attention, module="attention",
           output=shapes.attention),
    _layer("TransformerEncoderLayer", {"d_model": REQUIRED, "nhead": REQUIRED,
                                       "dim_feedforward": 2048, "dropout": 0.1,
                                       "activation": "relu", "layer_norm_eps": 1e-5,
                                       "batch_first": False, "norm_first": False,
                                       "bias": True}, None, (), converter=_ATT,
           tolerance={"float32": "float32_attention"}, size=sizes.encoder_layer,
           module="transformer",
           samples=samples_attention.TRANSFORMER_ENCODER_LAYER, output=shapes.encoder_layer),
    _layer("TransformerEncoder", {"encoder_layer": REQUIRED, "num_layers": REQUIRED,
                                  "norm": None, "enable_nested_tensor": True,
                                  "mask_check": True}, None, (), converter=_ATT,
           tolerance={"float32": "float32_attention"},
           suite_note="a stack of TransformerEncoderLayer (op-tel-*) built from a layer "
           "object; parity_tests/test_transformer_parity.py and torch's module_db cases check "
           "the stack", module="transformer"),
    # refbp's probes of MultiheadAttention's forward options and of the functional attention
    _layer("AttentionProbe", {"embed_dim": REQUIRED, "num_heads": REQUIRED, "bias": True,
                              "kdim": None, "vdim": None, "batch_first": False,
                              "key_padding_mask": None, "attn_mask": None,
                              "need_weights": True, "average_attn_weights": True,
                              "is_causal": False, "output": "output", "add_bias_kv": False,
                              "add_zero_attn": False}, "multi_head_attention_forward", (),
           torch_module=f"{_ATT}:AttentionProbeTorch", converter=_ATT,
           tolerance={"float32": "float32_attention"}, size=sizes.attention,
           module="attention_probe",
           samples=samples_attention.MHA, output=shapes.attention_probe),
    _layer("SDPAProbe", {"attn_mask": None, "is_causal": False, "scale": None},
           "scaled_dot_product_attention", ("aten.scaled_dot_product_attention.default",),
           torch_module=f"{_ATT}:SDPAProbeTorch", converter=_ATT,
           tolerance={"float32": "float32_attention"}, module="attention_probe",
           samples=samples_attention.SDPA, output=shapes.sdpa),
    # -- padding (maths: refbp.nn.functional_pad) ----------------------------------------
    *(_pad(f"{kind}Pad{n}d", n, aten, sample)
      for kind, aten, samples in _PADS for n, sample in zip((1, 2, 3), samples, strict=True)),
    # -- rearrangements (maths: refbp.nn.shuffle) ----------------------------------------
    _shuffle("PixelShuffle", "upscale_factor", "pixel_shuffle",
             _cnn("pixelshuffle", {"upscale_factor": 2}, _IMG4,
                  "PixelShuffle(2): (N, 4, 5, 4) -> (N, 1, 10, 8)"), shapes.pixel_shuffle),
    _shuffle("PixelUnshuffle", "downscale_factor", "pixel_unshuffle",
             _cnn("pixelunshuffle", {"downscale_factor": 2}, _img(48, h=6, w=4),
                  "PixelUnshuffle(2): (N, 2, 6, 4) -> (N, 8, 3, 2)"), shapes.pixel_unshuffle),
    _shuffle("ChannelShuffle", "groups", "channel_shuffle",
             _cnn("channelshuffle", {"groups": 2}, _IMG4, "ChannelShuffle(2) of 4 channels")),
    # -- resampling (maths: refbp.nn.functional_interp) ---------------------------------
    _resample("Upsample", {"size": None, "scale_factor": None, "mode": "nearest",
                           "align_corners": None, "recompute_scale_factor": None},
              (_cnn("upsample-nearest", {"scale_factor": 2}, _img(336),
                    "Upsample x2, nearest: (N, 2, 7, 6) -> (N, 2, 14, 12)"),
               _cnn("upsample-bilinear", {"size": [9, 5], "mode": "bilinear"}, _img(90),
                    "Upsample to 9x5, bilinear (downsampling the width)"),
               _cnn("upsample-bicubic-corners", {"scale_factor": 1.5, "mode": "bicubic",
                                                 "align_corners": True}, _img(180),
                    "Upsample x1.5, bicubic, align_corners (clamped taps at the edges)"),
               _cnn("upsample-linear", {"scale_factor": 1.7, "mode": "linear"},
                    Data("regression", n=8, features=18, outputs=30),
                    "Upsample x1.7 of signals (N, 2, 9), linear", before=_SIG_IN),
               _cnn("upsample-trilinear", {"size": [4, 5, 3], "mode": "trilinear"},
                    _vol(120),
                    "Upsample of volumes (N, 2, 3, 3, 4) to 4x5x3, trilinear"),
               _cnn("upsample-nearest-exact", {"scale_factor": 0.6, "mode": "nearest-exact"},
                    _img(24), "Upsample x0.6, nearest-exact (downsampling)"),
               _cnn("upsample-area", {"size": [3, 4], "mode": "area"}, _img(24),
                    "Upsample to 3x4, area (adaptive average pooling)"))),
    _resample("UpsamplingNearest2d", {"size": None, "scale_factor": None},
              (_cnn("upsamplingnearest2d", {"size": [10, 8]}, _img(160),
                    "UpsamplingNearest2d to 10x8"),)),
    _resample("UpsamplingBilinear2d", {"size": None, "scale_factor": None},
              (_cnn("upsamplingbilinear2d", {"scale_factor": 2}, _img(336),
                    "UpsamplingBilinear2d x2 (align_corners=True)"),)),
    # -- sliding blocks (maths: refbp.nn.fold on functional_conv's im2col) --------------
    OpInfo(name="Unfold", kind="layer", forward="refbp.nn.fold:unfold", module="refbp.nn.fold",
           backward="refbp.nn.fold:fold", functional=f"{_F}.unfold", aten=("aten.im2col.default",),
           args={"kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1},
           samples=(_cnn("unfold", {"kernel_size": [2, 3], "padding": 1, "stride": 2}, _img(144),
                         "Unfold 2x3 blocks, padding 1, stride 2: (N, 2, 7, 6) -> (N, 12, 12)"),
                    _cnn("unfold-dilated", {"kernel_size": 2, "dilation": 2}, _img(160),
                         "Unfold 2x2 blocks, dilation 2 (overlapping)")),
           output=shapes.unfold),
    OpInfo(name="Fold", kind="layer", forward="refbp.nn.fold:fold", module="refbp.nn.fold",
           backward="refbp.nn.fold:unfold", functional=f"{_F}.fold", aten=("aten.col2im.default",),
           args={"output_size": REQUIRED, "kernel_size": REQUIRED, "dilation": 1, "padding": 0,
                 "stride": 1},
           samples=(Sample("fold", {"output_size": [4, 5], "kernel_size": 2, "stride": 1},
                           Data("regression", n=8, features=48, outputs=20),
                           before=(("Unflatten", {"dim": 1, "unflattened_size": [4, 12]}),),
                           after=_FLAT, loss=_MSE,
                           description="Fold 12 columns of 2x2 blocks into 1x4x5 images "
                           "(overlaps summed)"),), output=shapes.fold),
    # -- normalization in 1-D and 3-D --------------------------------------------------
    _layer("BatchNorm3d", _BN, "batch_norm",
           ("aten.batch_norm.default", "aten._native_batch_norm_legit_functional.default"),
           samples=(_cnn("batchnorm3d", {"num_features": 2}, _vol(72),
                         "BatchNorm3d in training mode over volumes (N, 2, 3, 3, 4)"),),
           size=sizes.batchnorm, module="batchnorm"),
    _layer("SyncBatchNorm", {**{k: v for k, v in _BN.items() if k != "bias"},
                            "process_group": None, "bias": True}, "batch_norm", (),
           samples=(_cnn("syncbatchnorm", {"num_features": 2}, _vol(72),
                         "SyncBatchNorm in one process (as BatchNorm3d) over volumes "
                         "(N, 2, 3, 3, 4)"),),
           size=sizes.batchnorm, module="batchnorm"),
    _layer("InstanceNorm1d", _IN, "instance_norm", ("aten.instance_norm.default",),
           samples=(_cnn("instancenorm1d-affine", {"num_features": 2, "affine": True},
                         Data("regression", n=8, features=18, outputs=18),
                         "InstanceNorm1d with affine over signals (N, 2, 9)", before=_SIG_IN),),
           size=sizes.batchnorm, module="normalization"),
    _layer("InstanceNorm3d", _IN, "instance_norm", ("aten.instance_norm.default",),
           samples=(_cnn("instancenorm3d-tracked", {"num_features": 2,
                                                    "track_running_stats": True}, _vol(72),
                         "InstanceNorm3d with running statistics over volumes"),),
           size=sizes.batchnorm, module="normalization"),
    _layer("RMSNorm", {"normalized_shape": REQUIRED, "eps": None, "elementwise_affine": True},
           "rms_norm", ("aten.rms_norm.default", "aten._fused_rms_norm.default"),
           samples=(Sample("rmsnorm", {"normalized_shape": 5},
                           Data("regression", n=16, features=5, outputs=5,
                                extra={"scale": 30.0}), loss=_MSE,
                           description="RMSNorm over the last dimension (eps: the dtype's "
                           "machine epsilon)"),
                    _cnn("rmsnorm-2d-eps", {"normalized_shape": [7, 6], "eps": 1e-3}, _img(84),
                         "RMSNorm over the last two dimensions of images, eps 1e-3")),
           size=sizes.rmsnorm, module="norm_extra"),
    _layer("LocalResponseNorm", {"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
           "local_response_norm", (),
           samples=(_cnn("localresponsenorm", {"size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0},
                         _IMG4, "LocalResponseNorm over windows of 3 of 4 channels"),
                    _cnn("localresponsenorm-even", {"size": 2, "alpha": 1.0},
                         Data("regression", n=8, features=18, outputs=18),
                         "LocalResponseNorm, an even window over signals (N, 2, 9)",
                         before=_SIG_IN)), module="norm_extra"),
    _layer("CrossMapLRN2d", {"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "k": 1}, None, (),
           samples=(_cnn("crossmaplrn2d", {"size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0},
                         _img(96, c=6, h=4, w=4), "CrossMapLRN2d, window 3 over 6 channels "
                         "(torch's running sums keep channel 0; its own backward formula)"),
                    _cnn("crossmaplrn2d-even", {"size": 4, "alpha": 1.0, "beta": 0.5},
                         _IMG4, "CrossMapLRN2d, an even window of 4 over 4 channels")),
           module="cross_map_lrn"),
)
