"""Single layers and small convolutional models: refbp vs torch CPU, side by side.

Cases
-----
Layers, each timed as forward + backward of the layer alone (a fixed random upstream gradient,
the input gradient computed on both sides, parameter gradients cleared before each step):

- ``conv2d``: Conv2d(64, 64, 3, padding 1) on 32 x 64 x 32 x 32;
- ``batchnorm2d``: BatchNorm2d(64), training mode, on 32 x 64 x 32 x 32;
- ``groupnorm``: GroupNorm(8, 64) on 32 x 64 x 32 x 32;
- ``gap``: global average pooling, AdaptiveAvgPool2d(1), on 32 x 256 x 16 x 16.

Models, each timed as a training step (forward, MSE loss, backward, SGD update; the input
needs no gradient):

- ``conv3d-block``: Conv3d(8, 16, 3, padding 1) > BatchNorm3d > ReLU > Conv3d(16, 16, 3,
  padding 1) > BatchNorm3d > ReLU on 4 x 8 x 16 x 16 x 16;
- ``upsample-decoder``: 16 x 64 x 8 x 8 features > Upsample(x2, nearest) > Conv3x3(64, 32) >
  BatchNorm2d > ReLU > Upsample(x2, bilinear) > Conv3x3(32, 16) > GroupNorm(4, 16) > ReLU >
  Conv1x1(16, 3), against a 16 x 3 x 32 x 32 target.

A case whose layers refbp does not provide raises :class:`Unavailable` (the matrix reports it
as such instead of failing). Timings are interleaved (``_steps.interleaved``); the table gives
the median of each side and the ratio refbp / torch. BLAS and torch get the same thread count
(``--threads``, default 1).

Run: ``python benchmarks/bench_layers.py [--repeats N] [--threads T] [--case NAME]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _steps import Step, interleaved, training_steps  # this directory is on sys.path

from refbp import nn
from refbp.mirror import as_tensor, to_torch

PARSER = argparse.ArgumentParser(description="refbp vs torch: layers and small CNNs")
PARSER.add_argument("--repeats", type=int, default=20)
PARSER.add_argument("--threads", type=int, default=1)
PARSER.add_argument("--case", action="append", help="a case name (default: all)")


class Unavailable(RuntimeError):
    """refbp does not provide a layer the case needs."""


def _layer(name: str) -> Any:
    """``refbp.nn.<name>``, or :class:`Unavailable`."""
    try:
        return getattr(nn, name)
    except AttributeError:
        raise Unavailable(f"refbp.nn has no {name}") from None


def layer_steps(layer: nn.Module, x: np.ndarray) -> tuple[Step, Step]:
    """Forward + backward of one layer on both sides (same weights, input, upstream gradient);
    the input gradient is computed on both sides, parameter gradients are cleared first."""
    tlayer = to_torch(layer)
    g = np.random.default_rng(1).standard_normal(layer(x).shape).astype(x.dtype)
    xt = as_tensor(x).requires_grad_(True)
    gt = as_tensor(g)

    def refbp_step() -> None:
        layer.zero_grad()
        layer(x)
        layer.backward(g)

    def torch_step() -> None:
        tlayer.zero_grad()
        xt.grad = None
        tlayer(xt).backward(gt)

    return refbp_step, torch_step


def _images(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def build_conv2d(dtype: str) -> tuple[Step, Step]:
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(64, 64, 3, padding=1, dtype=dtype, generator=rng)
    return layer_steps(layer, _images((32, 64, 32, 32), dtype))


def build_batchnorm2d(dtype: str) -> tuple[Step, Step]:
    return layer_steps(nn.BatchNorm2d(64, dtype=dtype), _images((32, 64, 32, 32), dtype))


def build_groupnorm(dtype: str) -> tuple[Step, Step]:
    return layer_steps(nn.GroupNorm(8, 64, dtype=dtype), _images((32, 64, 32, 32), dtype))


def build_gap(dtype: str) -> tuple[Step, Step]:
    return layer_steps(nn.AdaptiveAvgPool2d(1), _images((32, 256, 16, 16), dtype))


def build_conv3d_block(dtype: str) -> tuple[Step, Step]:
    conv3d, bn3d = _layer("Conv3d"), _layer("BatchNorm3d")
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        conv3d(8, 16, 3, padding=1, dtype=dtype, generator=rng), bn3d(16, dtype=dtype),
        nn.ReLU(), conv3d(16, 16, 3, padding=1, dtype=dtype, generator=rng),
        bn3d(16, dtype=dtype), nn.ReLU())
    x = _images((4, 8, 16, 16, 16), dtype)
    y = _images((4, 16, 16, 16, 16), dtype, seed=1)
    return training_steps(model, x, y, nn.MSELoss(), torch.nn.MSELoss(), input_grad=False)


def build_upsample_decoder(dtype: str) -> tuple[Step, Step]:
    rng = np.random.default_rng(0)
    kw: dict[str, Any] = {"dtype": dtype, "generator": rng}
    model = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 32, 3, padding=1, **kw),
        nn.BatchNorm2d(32, dtype=dtype), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(32, 16, 3, padding=1, **kw),
        nn.GroupNorm(4, 16, dtype=dtype), nn.ReLU(), nn.Conv2d(16, 3, 1, **kw))
    x = _images((16, 64, 8, 8), dtype)
    y = _images((16, 3, 32, 32), dtype, seed=1)
    return training_steps(model, x, y, nn.MSELoss(), torch.nn.MSELoss(), input_grad=False)


CASES: dict[str, Callable[[str], tuple[Step, Step]]] = {
    "conv2d": build_conv2d,
    "batchnorm2d": build_batchnorm2d,
    "groupnorm": build_groupnorm,
    "gap": build_gap,
    "conv3d-block": build_conv3d_block,
    "upsample-decoder": build_upsample_decoder,
}


def main() -> None:
    from threadpoolctl import threadpool_limits

    args = PARSER.parse_args()
    unknown = set(args.case or ()) - set(CASES)
    if unknown:
        PARSER.error(f"unknown case(s) {sorted(unknown)}; known: {sorted(CASES)}")
    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    print(f"{'case':17s} {'dtype':8s} {'refbp ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for name in args.case or CASES:
        for dtype in ("float32", "float64"):
            try:
                r, t = interleaved(*CASES[name](dtype), args.repeats)
            except Unavailable as e:
                print(f"{name:17s} {dtype:8s} {e}")
                continue
            rm, tm = statistics.median(r), statistics.median(t)
            print(f"{name:17s} {dtype:8s} {rm * 1e3:9.2f} {tm * 1e3:9.2f} {rm / tm:6.2f}")


if __name__ == "__main__":
    main()
