"""The LeNet-style CNN of the training scenarios, its data and its optimizers.

The op checks of the convolutional-network layers (dropout, pooling, normalization) are the
samples declared with those layers in ``refbp.registry.layers``.
"""

from __future__ import annotations

from refbp.parity.scenario import DataSpec, Spec

_FLAT = Spec("Flatten")


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
