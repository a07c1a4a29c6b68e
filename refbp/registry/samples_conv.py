"""Op-check samples of the convolution layers (declared in :mod:`refbp.registry.layers`).

Each is one forward and backward pass of a single layer on seeded N(0, 1) images (or 1-D
signals) of 4 samples with an MSE loss against an N(0, 1) target of the output's shape
(``tensors`` data: ``features`` input channels, ``extra["size"]`` the spatial size; the suite
computes the target shape from the built layer), comparing the output, the input gradient and
the weight and bias gradients with torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.registry.opinfo import Data, Sample


def _conv(id: str, layer: str, args: Mapping[str, Any], size: tuple[int, ...],
          text: str) -> Sample:
    data = Data("tensors", n=4, features=args["in_channels"], outputs=0, extra={"size": size})
    return Sample(id, args, data, loss=("MSELoss", {}), description=f"{layer}: {text}")


CONV2D = (
    _conv("conv2d", "Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3,
                               "padding": 1}, (8, 8), "3x3 convolution, padding 1"),
    _conv("conv2d-stride-dilation", "Conv2d",
          {"in_channels": 3, "out_channels": 4, "kernel_size": (3, 2), "stride": (2, 1),
           "padding": (1, 2), "dilation": (1, 2)}, (9, 8),
          "tuple kernel, stride, padding, dilation"),
    _conv("conv2d-groups", "Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3,
                                      "groups": 2}, (7, 7), "grouped convolution, groups=2"),
    _conv("conv2d-depthwise", "Conv2d",
          {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 4,
           "padding": "same", "bias": False}, (6, 7),
          "depthwise (groups = in_channels), padding='same', no bias"),
    _conv("conv2d-same-even", "Conv2d",
          {"in_channels": 3, "out_channels": 2, "kernel_size": (2, 4), "padding": "same",
           "dilation": (1, 3)}, (6, 9), "padding='same' with even kernels (asymmetric padding)"),
    _conv("conv2d-valid", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                     "padding": "valid"}, (6, 6), "padding='valid'"),
    _conv("conv2d-reflect", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                       "padding": 2, "padding_mode": "reflect"}, (6, 5),
          "padding_mode='reflect'"),
    _conv("conv2d-replicate", "Conv2d", {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                         "padding": (3, 1), "padding_mode": "replicate"},
          (6, 5), "padding_mode='replicate', padding larger than the kernel"),
    _conv("conv2d-circular", "Conv2d",
          {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2,
           "padding": (2, 5), "padding_mode": "circular"}, (6, 5),
          "padding_mode='circular', padding = width"),
)
CONV1D = (
    _conv("conv1d", "Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3,
                               "stride": 2, "padding": 1, "dilation": 2}, (11,),
          "Conv1d stride, dilation"),
    _conv("conv1d-circular-groups", "Conv1d",
          {"in_channels": 4, "out_channels": 8, "kernel_size": 2, "groups": 4,
           "padding": "same", "padding_mode": "circular"}, (7,),
          "Conv1d depthwise, 'same', circular"),
)
CONV_TRANSPOSE2D = (
    _conv("convtranspose2d", "ConvTranspose2d", {"in_channels": 3, "out_channels": 4,
                                                 "kernel_size": 3}, (5, 4),
          "transposed convolution, defaults"),
    _conv("convtranspose2d-options", "ConvTranspose2d",
          {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2), "stride": (2, 3),
           "padding": (1, 0), "output_padding": (1, 2), "groups": 2, "dilation": (2, 1)},
          (5, 4), "stride, padding, output_padding, groups, dilation"),
)
CONV_TRANSPOSE1D = (
    _conv("convtranspose1d", "ConvTranspose1d",
          {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 3, "padding": 1,
           "output_padding": 2}, (6,), "ConvTranspose1d stride, padding, output_padding"),
    _conv("convtranspose1d-groups", "ConvTranspose1d",
          {"in_channels": 4, "out_channels": 4, "kernel_size": 5, "groups": 4, "padding": 2,
           "bias": False}, (6,), "ConvTranspose1d depthwise, no bias"),
)
CONV3D = (
    _conv("conv3d", "Conv3d", {"in_channels": 2, "out_channels": 3, "kernel_size": 2,
                               "padding": 1}, (3, 4, 3), "2x2x2 convolution of volumes, padding 1"),
    _conv("conv3d-options", "Conv3d",
          {"in_channels": 4, "out_channels": 4, "kernel_size": (2, 3, 1), "stride": (1, 2, 1),
           "padding": (1, 1, 0), "dilation": (2, 1, 1), "groups": 2,
           "padding_mode": "replicate"}, (4, 5, 3),
          "tuple kernel, stride, padding, dilation, groups, replicate padding"),
)
CONV_TRANSPOSE3D = (
    _conv("convtranspose3d", "ConvTranspose3d",
          {"in_channels": 4, "out_channels": 2, "kernel_size": (2, 2, 3), "stride": (2, 1, 2),
           "padding": (0, 1, 1), "output_padding": (1, 0, 1), "groups": 2}, (2, 3, 3),
          "stride, padding, output_padding, groups"),
)
