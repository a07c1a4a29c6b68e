"""One training step of a 784-256-256-10 ReLU MLP, batch 128: refbp vs torch, side by side.

A step is forward, cross-entropy, backward and a plain SGD update. Both sides start from the
same weights and see the same batch; their timings are interleaved (refbp, torch, refbp, ...)
so that both are measured under the same machine load, and the median of each is reported
with the ratio refbp / torch. Run: ``python benchmarks/bench_mlp.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np
import torch
from _steps import timeit, training_steps

from refbp import nn

SIZES = (784, 256, 256, 10)


def build(dtype: str) -> tuple[Callable[[], None], Callable[[], None]]:
    rng = np.random.default_rng(0)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        layers.append(nn.Linear(a, b, dtype=dtype, generator=rng))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    x = rng.standard_normal((128, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=128)
    # x needs no gradient, as in torch
    return training_steps(model, x, y, nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(),
                          input_grad=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    print(f"{'dtype':8s} {'refbp ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for dtype in ("float32", "float64"):
        r_step, t_step = build(dtype)
        for _ in range(5):
            r_step()
            t_step()
        r_times, t_times = [], []
        for _ in range(args.repeats):
            r_times.append(timeit(r_step))
            t_times.append(timeit(t_step))
        r, t = statistics.median(r_times), statistics.median(t_times)
        print(f"{dtype:8s} {r * 1e3:10.3f} {t * 1e3:10.3f} {r / t:7.2f}x")


if __name__ == "__main__":
    main()
