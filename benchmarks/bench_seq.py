"""Training steps of sequence models: refbp vs torch CPU, side by side in one run.

A step is forward, loss, backward and an SGD update, on both sides from the same weights and
the same batch. Timings are interleaved (refbp, torch, refbp, ...) so both sides are measured
under the same machine load; the table reports the median of each side, the spread (the
interquartile range as a percentage of the median) and the ratio refbp / torch.

Each model is one ``Case``: a name and a ``build(dtype)`` returning the two step functions. A
new model is one more entry in ``CASES``.

NumPy's BLAS and torch get the same thread count (``--threads``, default 1; set before NumPy
loads its BLAS).

Run: ``python benchmarks/bench_seq.py [--repeats N] [--threads T] [--case NAME]
[--dtype float32]``.
"""

from __future__ import annotations

import argparse
import os

PARSER = argparse.ArgumentParser(description="refbp vs torch: sequence-model training steps")
PARSER.add_argument("--repeats", type=int, default=20)
PARSER.add_argument("--threads", type=int, default=1)
PARSER.add_argument("--case", action="append", help="a case name (default: all)")
PARSER.add_argument("--dtype", choices=["float32", "float64"], action="append")
if __name__ == "__main__":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(PARSER.parse_args().threads)

import statistics  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _steps import Step, interleaved, training_steps  # noqa: E402

from refbp import nn  # noqa: E402


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


def build_transformer(dtype: str) -> tuple[Step, Step]:
    """TransformerEncoderLayer (post-norm, relu, dim_feedforward 2048, dropout 0), seq 64,
    batch 16, d_model 128, 4 heads, batch_first; MSE on every position."""
    seq, batch, d_model, heads = 64, 16, 128, 4
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.TransformerEncoderLayer(d_model, heads, dropout=0.0,
                                                     batch_first=True, dtype=dtype,
                                                     generator=rng))
    x = rng.standard_normal((batch, seq, d_model)).astype(dtype)
    y = rng.standard_normal((batch, seq, d_model)).astype(dtype)
    return training_steps(model, x, y, nn.MSELoss(), torch.nn.MSELoss())


CASES: list[Case] = [
    Case("lstm", "LSTM 2 layers, seq 50, batch 32, input 64, hidden 128", build_lstm),
    Case("transformer", "TransformerEncoderLayer, seq 64, batch 16, d_model 128, 4 heads",
         build_transformer),
]


def spread(times: list[float]) -> float:
    """Interquartile range as a fraction of the median."""
    q = statistics.quantiles(times, n=4)
    return (q[2] - q[0]) / statistics.median(times)


def measure(case: Case, dtype: str, repeats: int, warmup: int = 3) -> tuple[list[float],
                                                                            list[float]]:
    r_step, t_step = case.build(dtype)
    return interleaved(r_step, t_step, repeats, warmup=warmup)


def main() -> None:
    args = PARSER.parse_args()
    unknown = set(args.case or ()) - {c.name for c in CASES}
    if unknown:
        PARSER.error(f"unknown case(s) {sorted(unknown)}; known: {[c.name for c in CASES]}")
    cases = [c for c in CASES if not args.case or c.name in args.case]
    dtypes = args.dtype or ["float32", "float64"]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy "
          f"{np.__version__} (BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')})")
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
