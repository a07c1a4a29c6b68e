"""Op checks of the convolution layers: one scenario per option family and dtype.

Each check is one forward and backward pass of a single layer on seeded N(0, 1) images (or
1-D signals) with an MSE loss against an N(0, 1) target of the output's shape, comparing the
output, the input gradient and the weight and bias gradients with torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp import nn as rnn
from refbp.parity.scenario import DataSpec, Spec

# (name, layer type, arguments, input channels, spatial size, description)
CONV_CASES: list[tuple[str, str, dict[str, Any], tuple[int, ...], str]] = [
    ("conv2d", "Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3,
                          "padding": 1}, (8, 8), "3x3 convolution, padding 1"),
    ("conv2d-stride-dilation", "Conv2d",
     {"in_channels": 3, "out_channels": 4, "kernel_size": (3, 2), "stride": (2, 1),
      "padding": (1, 2), "dilation": (1, 2)}, (9, 8), "tuple kernel, stride, padding, dilation"),
    ("conv2d-groups", "Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3,
                                 "groups": 2}, (7, 7), "grouped convolution, groups=2"),
    ("conv2d-depthwise", "Conv2d",
     {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 4, "padding": "same",
      "bias": False}, (6, 7), "depthwise (groups = in_channels), padding='same', no bias"),
    ("conv2d-same-even", "Conv2d",
     {"in_channels": 3, "out_channels": 2, "kernel_size": (2, 4), "padding": "same",
      "dilation": (1, 3)}, (6, 9), "padding='same' with even kernels (asymmetric padding)"),
    ("conv2d-valid", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                "padding": "valid"}, (6, 6), "padding='valid'"),
    ("conv2d-reflect", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                  "padding": 2, "padding_mode": "reflect"}, (6, 5),
     "padding_mode='reflect'"),
    ("conv2d-replicate", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                    "padding": (3, 1), "padding_mode": "replicate"}, (6, 5),
     "padding_mode='replicate', padding larger than the kernel"),
    ("conv2d-circular", "Conv2d",
     {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": (2, 5),
      "padding_mode": "circular"}, (6, 5), "padding_mode='circular', padding = width"),
    ("conv1d", "Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2,
                          "padding": 1, "dilation": 2}, (11,), "Conv1d stride, dilation"),
    ("conv1d-circular-groups", "Conv1d",
     {"in_channels": 4, "out_channels": 8, "kernel_size": 2, "groups": 4, "padding": "same",
      "padding_mode": "circular"}, (7,), "Conv1d depthwise, 'same', circular"),
    ("convtranspose2d", "ConvTranspose2d", {"in_channels": 3, "out_channels": 4,
                                            "kernel_size": 3}, (5, 4),
     "transposed convolution, defaults"),
    ("convtranspose2d-options", "ConvTranspose2d",
     {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2), "stride": (2, 3),
      "padding": (1, 0), "output_padding": (1, 2), "groups": 2, "dilation": (2, 1)}, (5, 4),
     "stride, padding, output_padding, groups, dilation"),
    ("convtranspose1d", "ConvTranspose1d",
     {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 3, "padding": 1,
      "output_padding": 2}, (6,), "ConvTranspose1d stride, padding, output_padding"),
    ("convtranspose1d-groups", "ConvTranspose1d",
     {"in_channels": 4, "out_channels": 4, "kernel_size": 5, "groups": 4, "padding": 2,
      "bias": False}, (6,), "ConvTranspose1d depthwise, no bias"),
]

N_IMAGES = 4


def output_shape(layer: str, args: dict[str, Any], size: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample output shape of a layer on ``(in_channels, *size)`` input."""
    m = getattr(rnn, layer)(**args)
    return m(np.zeros((1, args["in_channels"], *size))).shape[1:]


def conv_ops() -> list[tuple[str, list[Spec], Spec, DataSpec, str]]:
    """``(name, layers, loss, data, description)`` of every convolution op check."""
    out = []
    for name, layer, args, size, text in CONV_CASES:
        target = output_shape(layer, args, size)
        data = DataSpec("tensors", n=N_IMAGES, features=args["in_channels"],
                        outputs=int(np.prod(target)),
                        extra={"size": size, "target_shape": target})
        out.append((name, [Spec(layer, args)], Spec("MSELoss"), data, f"{layer}: {text}"))
    return out
