"""Training steps of sequence models: refbp vs torch CPU, side by side in one run.

A step is forward, loss, backward and an SGD update, on both sides from the same weights and
the same batch. Timings are interleaved (refbp, torch, refbp, ...) so both sides are measured
under the same machine load; the table reports the median of each side, the spread (the
interquartile range as a percentage of the median) and the ratio refbp / torch.

Each model is one ``Case``: a name and a ``build(dtype)`` returning the two step functions. A
new model is one more entry in ``CASES``.

Run: ``python benchmarks/bench_seq.py [--repeats N] [--case NAME] [--dtype float32]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _steps import Step, timeit, training_steps

from refbp import nn


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[str], tuple[Step, Step]]


def build_lstm(dtype: str) -> tuple[Step, Step]:
    """2-layer LSTM, seq 50, batch 32, input 64, hidden 128; MSE on every output step."""
    seq, batch, inp, hidden = 50, 32, 64, 128
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.LSTM(inp, hidden, num_layers=2, dtype=dtype, generator=rng),
                          nn.RNNOutput("all"))
    x = rng.standard_normal((seq, batch, inp)).astype(dtype)
    y = rng.standard_normal((seq, batch, hidden)).astype(dtype)
    return training_steps(model, x, y, nn.MSELoss(), torch.nn.MSELoss())


CASES: list[Case] = [
    Case("lstm", "LSTM 2 layers, seq 50, batch 32, input 64, hidden 128", build_lstm),
]


def spread(times: list[float]) -> float:
    """Interquartile range as a fraction of the median."""
    q = statistics.quantiles(times, n=4)
    return (q[2] - q[0]) / statistics.median(times)


def measure(case: Case, dtype: str, repeats: int, warmup: int = 3) -> tuple[list[float],
                                                                            list[float]]:
    r_step, t_step = case.build(dtype)
    for _ in range(warmup):
        r_step()
        t_step()
    r_times, t_times = [], []
    for _ in range(repeats):
        r_times.append(timeit(r_step))
        t_times.append(timeit(t_step))
    return r_times, t_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--case", choices=[c.name for c in CASES], action="append")
    ap.add_argument("--dtype", choices=["float32", "float64"], action="append")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.case or c.name in args.case]
    dtypes = args.dtype or ["float32", "float64"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    print(f"{'case':8s} {'dtype':8s} {'refbp ms':>10s} {'+-':>5s} {'torch ms':>10s} {'+-':>5s} "
          f"{'ratio':>7s}")
    for case in cases:
        for dtype in dtypes:
            r_times, t_times = measure(case, dtype, args.repeats)
            r, t = statistics.median(r_times), statistics.median(t_times)
            print(f"{case.name:8s} {dtype:8s} {r * 1e3:10.2f} {spread(r_times):5.0%} "
                  f"{t * 1e3:10.2f} {spread(t_times):5.0%} {r / t:7.2f}x")


if __name__ == "__main__":
    main()
