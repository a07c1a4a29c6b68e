"""Scenario tables of the convolutional-network layers: dropout, pooling, normalization.

``OPS`` lists op checks (one forward and backward, every option family) as
``(name, layers, loss, data, description)``; ``refbp.parity.suites`` builds them in both dtypes.
Images are ``image_regression`` data (smooth blobs, see ``refbp.parity.datagen``) of 2
channels and 7 x 6 pixels (odd sizes exercise ceil mode and padding); 1-D signals come from
regression data through ``Unflatten``; ``round: 0`` makes ties for max pooling. The target
size of each case is the flattened output size, computed by hand in the table.
"""

from __future__ import annotations

from typing import Any

from refbp.parity.scenario import DataSpec, Spec

OpCase = tuple[str, list[Spec], Spec, DataSpec, str]

_MSE = Spec("MSELoss")
_FLAT = Spec("Flatten")


def _img(outputs: int, *, c: int = 2, h: int = 7, w: int = 6, **extra: Any) -> DataSpec:
    return DataSpec("image_regression", n=4, features=c, outputs=outputs,
                    extra={"height": h, "width": w, **extra})


def _sig(layer: Spec, outputs: int) -> list[Spec]:
    """A 1-D layer on (N, 2, 9) signals unflattened from 18 features, flattened after."""
    return [Spec("Unflatten", {"dim": 1, "unflattened_size": [2, 9]}), layer, _FLAT]


_SIG = DataSpec("regression", n=8, features=18, outputs=10)

DROPOUT_OPS: list[OpCase] = [
    ("dropout", [Spec("Dropout", {"p": 0.3})], _MSE,
     DataSpec("regression", n=16, features=6, outputs=6),
     "Dropout(0.3) in training mode, mask drawn by torch and fed to refbp"),
    ("dropout-p1", [Spec("Dropout", {"p": 1.0}), Spec("Dropout", {"p": 0.0})], _MSE,
     DataSpec("regression", n=16, features=6, outputs=6),
     "Dropout(1.0) zeroes, Dropout(0.0) keeps everything"),
    ("dropout2d", [Spec("Dropout2d", {"p": 0.5}), _FLAT], _MSE,
     _img(36, c=3, h=4, w=3), "Dropout2d(0.5): one mask per (sample, channel) map"),
]

POOL_OPS: list[OpCase] = [
    ("maxpool2d", [Spec("MaxPool2d", {"kernel_size": 2}), _FLAT], _MSE, _img(18),
     "MaxPool2d(2) on 7x6 images (floor mode drops the last row)"),
    ("maxpool2d-ceil-edge",
     [Spec("MaxPool2d", {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}),
      _FLAT], _MSE, _img(32),
     "MaxPool2d ceil mode on 7 rows: the last window would start in the padding, dropped"),
    ("maxpool2d-pad-dil-ceil",
     [Spec("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2,
                         "ceil_mode": True}), _FLAT], _MSE, _img(18, round=0),
     "MaxPool2d with padding, dilation and ceil mode on rounded images (ties: first max)"),
    ("maxpool1d", _sig(Spec("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                          "ceil_mode": True}), 10), _MSE, _SIG,
     "MaxPool1d with padding and ceil mode"),
    ("avgpool2d-exclude-pad",
     [Spec("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                         "count_include_pad": False}), _FLAT], _MSE, _img(32),
     "AvgPool2d, ceil mode, divisor without padding"),
    ("avgpool2d-divisor", [Spec("AvgPool2d", {"kernel_size": 2, "stride": 1,
                                              "divisor_override": 3}), _FLAT], _MSE, _img(60),
     "AvgPool2d with overlapping windows and divisor_override"),
    ("avgpool1d", _sig(Spec("AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                          "ceil_mode": True}), 10), _MSE, _SIG,
     "AvgPool1d with padding (counted) and ceil mode"),
    ("adaptiveavgpool2d", [Spec("AdaptiveAvgPool2d", {"output_size": [3, 4]}), _FLAT], _MSE,
     _img(24), "AdaptiveAvgPool2d 7x6 -> 3x4 (overlapping windows of unequal size)"),
    ("adaptiveavgpool2d-global", [Spec("AdaptiveAvgPool2d", {"output_size": 1}), _FLAT], _MSE,
     _img(2), "AdaptiveAvgPool2d(1): global average"),
    ("adaptiveavgpool2d-none", [Spec("AdaptiveAvgPool2d", {"output_size": [None, 2]}), _FLAT],
     _MSE, _img(28), "AdaptiveAvgPool2d (None, 2): the height is kept"),
    ("adaptiveavgpool1d", _sig(Spec("AdaptiveAvgPool1d", {"output_size": 4}), 8), _MSE,
     DataSpec("regression", n=8, features=18, outputs=8), "AdaptiveAvgPool1d 9 -> 4"),
    ("adaptivemaxpool2d", [Spec("AdaptiveMaxPool2d", {"output_size": [3, 2]}), _FLAT], _MSE,
     _img(12, round=0), "AdaptiveMaxPool2d 7x6 -> 3x2 on rounded images (ties)"),
]

_IMG4 = _img(80, c=4, h=5, w=4)

NORM_OPS: list[OpCase] = [
    ("batchnorm2d", [Spec("BatchNorm2d", {"num_features": 2}), _FLAT], _MSE, _img(84),
     "BatchNorm2d in training mode: batch statistics over N, H, W; running statistics"),
    ("batchnorm2d-cumulative-noaffine",
     [Spec("BatchNorm2d", {"num_features": 2, "momentum": None, "affine": False}), _FLAT],
     _MSE, _img(84), "BatchNorm2d, momentum=None (cumulative average), no weight and bias"),
    ("batchnorm2d-untracked",
     [Spec("BatchNorm2d", {"num_features": 2, "track_running_stats": False}), _FLAT], _MSE,
     _img(84), "BatchNorm2d without running statistics"),
    ("groupnorm", [Spec("GroupNorm", {"num_groups": 2, "num_channels": 4}), _FLAT], _MSE,
     _IMG4, "GroupNorm, 2 groups of 2 channels"),
    ("groupnorm-1group-noaffine",
     [Spec("GroupNorm", {"num_groups": 1, "num_channels": 4, "affine": False}), _FLAT], _MSE,
     _IMG4, "GroupNorm with one group (LayerNorm over C, H, W), no affine"),
    ("instancenorm2d", [Spec("InstanceNorm2d", {"num_features": 4}), _FLAT], _MSE, _IMG4,
     "InstanceNorm2d (no affine, no running statistics: torch's defaults)"),
    ("instancenorm2d-affine-tracked",
     [Spec("InstanceNorm2d", {"num_features": 4, "affine": True, "track_running_stats": True}),
      _FLAT], _MSE, _IMG4, "InstanceNorm2d with affine and running statistics"),
]

OPS: list[OpCase] = DROPOUT_OPS + POOL_OPS + NORM_OPS


def lenet(classes: int = 10) -> tuple[Spec, ...]:
    """A LeNet-style CNN for 1 x 28 x 28 images: two conv blocks (the first batch-normalised),
    max pooling, then a dropout-regularised two-layer classifier head.

    The convolution before BatchNorm2d has no bias: BatchNorm subtracts the channel mean, so
    that bias has an exactly zero gradient in real arithmetic, a rounding residue in floating
    point, which Adam would amplify to a step of +-lr with a sign neither side controls.
    """
    return (
        Spec("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 5, "bias": False}),
        Spec("BatchNorm2d", {"num_features": 6}), Spec("ReLU"),
        Spec("MaxPool2d", {"kernel_size": 2}),
        Spec("Conv2d", {"in_channels": 6, "out_channels": 16, "kernel_size": 5}), Spec("ReLU"),
        Spec("MaxPool2d", {"kernel_size": 2}), _FLAT,
        Spec("Linear", {"in_features": 16 * 4 * 4, "out_features": 32}), Spec("ReLU"),
        Spec("Dropout", {"p": 0.25}),
        Spec("Linear", {"in_features": 32, "out_features": classes}),
    )


LENET_DATA = DataSpec("images", n=32, features=1, outputs=10)
LENET_OPTIMIZERS: list[tuple[str, Spec]] = [
    ("sgd-momentum", Spec("SGD", {"lr": 0.05, "momentum": 0.9})),
    ("adam", Spec("Adam", {"lr": 1e-3})),
]
