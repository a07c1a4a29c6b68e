"""One training step of a 784-256-256-10 ReLU MLP, batch 128: refbp vs torch, side by side.

A step is zero_grad, forward, cross-entropy, backward and a plain SGD update. Both sides start
from the same weights and see the same batch. Their steps are interleaved (refbp, torch,
refbp, ...) so both are measured under the same machine load; each step is timed twice, by
the wall clock and by the CPU time of the calling thread (which does not count the time the
scheduler gives to other processes, hence far less sensitive to machine load). BLAS and torch
run with the same number of threads (``--threads``, default 1, so that all work happens in
the calling thread and its CPU time is the whole cost).

Printed per dtype: the median step time of each side, the ratio refbp / torch (median over
``--runs`` runs of the per-run ratio of medians, with min..max over runs), and the step's
share of the measured NumPy GEMM rate: ``step GEMM FLOPs / step time`` divided by the rate of
a large square GEMM (``--gemm-size``) with the same threads. That GEMM runs back to back with
warm caches, so the share is given twice: for the interleaved refbp steps (each one follows a
torch step that evicted refbp's weights from the caches) and for as many refbp steps run back
to back ("alone"), which compares like with like.

Run: ``python benchmarks/bench_mlp.py [--repeats N] [--runs R] [--threads T]``
(needs the ``bench`` extra for threadpoolctl).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _steps import interleaved  # this directory is on sys.path
from threadpoolctl import threadpool_info, threadpool_limits

from refbp import nn, optim
from refbp.mirror import as_tensor, to_torch

SIZES = (784, 256, 256, 10)
BATCH = 128
Step = Callable[[], None]


def step_flops() -> int:
    """Multiply-add FLOPs of one step's GEMMs: forward x W^T, backward G^T X, and G W for every
    layer but the first (its input needs no gradient)."""
    pairs = list(zip(SIZES[:-1], SIZES[1:], strict=True))
    fwd = sum(2 * BATCH * a * b for a, b in pairs)
    dx = sum(2 * BATCH * a * b for a, b in pairs[1:])
    return 2 * fwd + dx


@dataclass
class RefbpMLP:
    """The refbp side of the benchmark: model, loss, optimizer and one batch."""

    model: nn.Sequential
    loss: nn.CrossEntropyLoss
    opt: optim.SGD
    x: np.ndarray
    y: np.ndarray

    def step(self) -> None:
        """zero_grad, forward, loss, backward (no input gradient, as in torch), SGD update."""
        self.opt.zero_grad()
        self.loss(self.model(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()


def build_refbp(dtype: str) -> RefbpMLP:
    """The seeded refbp MLP, its loss, SGD(lr=0.01) and a batch of ``BATCH`` samples."""
    rng = np.random.default_rng(0)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        layers.append(nn.Linear(a, b, dtype=dtype, generator=rng))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=BATCH)
    return RefbpMLP(model, nn.CrossEntropyLoss(), optim.SGD(list(model.parameters()), lr=0.01),
                    x, y)


def build(dtype: str) -> tuple[Step, Step]:
    """One step of each side, both sides starting from the same weights and batch."""
    r = build_refbp(dtype)
    tmodel = to_torch(r.model)
    tloss = torch.nn.CrossEntropyLoss()
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01)
    xt, yt = as_tensor(r.x), as_tensor(r.y)

    def torch_step() -> None:
        topt.zero_grad()
        tloss(tmodel(xt), yt).backward()
        topt.step()

    return r.step, torch_step


def timed(fn: Step) -> tuple[float, float]:
    """Wall-clock and calling-thread CPU seconds of one call."""
    w0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - w0, time.thread_time() - c0


def gemm_rate(dtype: str, size: int, repeats: int = 20) -> tuple[float, float]:
    """NumPy's GEMM rate (FLOP/s) on ``size`` x ``size`` matrices: (by wall, by CPU) median."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    times = np.array([timed(lambda: a @ b) for _ in range(repeats)])
    flops = 2 * size**3
    return flops / float(np.median(times[:, 0])), flops / float(np.median(times[:, 1]))


def load() -> str:
    """The 1/5/15-minute load averages and the core count, printed next to every number."""
    la = os.getloadavg()
    return f"load {la[0]:.1f} {la[1]:.1f} {la[2]:.1f} on {os.cpu_count()} cores"


def blas_threads() -> str:
    """The BLAS libraries NumPy loaded, with their thread counts."""
    return "; ".join(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads "
                     f"({i.get('architecture')})" for i in threadpool_info()
                     if i["user_api"] == "blas")


def spread(values: list[float]) -> str:
    """``median [min..max]`` of a list of ratios."""
    return f"{statistics.median(values):.3f} [{min(values):.3f}..{max(values):.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=200, help="interleaved steps per run")
    ap.add_argument("--runs", type=int, default=5, help="runs (fresh models) per dtype")
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    ap.add_argument("--gemm-size", type=int, default=1024)
    args = ap.parse_args()
    limiter = threadpool_limits(limits=args.threads, user_api="blas")
    torch.set_num_threads(args.threads)
    print(f"numpy {np.__version__}: {blas_threads()}")
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability()}")
    print(f"step GEMM work {step_flops() / 1e6:.1f} MFLOP; {args.runs} runs x {args.repeats} "
          f"interleaved steps per dtype")
    for dtype in ("float32", "float64"):
        rate_wall, rate_cpu = gemm_rate(dtype, args.gemm_size)
        print(f"\n{dtype}: NumPy GEMM {args.gemm_size}^3 {rate_wall / 1e9:.1f} GFLOP/s wall, "
              f"{rate_cpu / 1e9:.1f} GFLOP/s CPU  ({load()})")
        print(f"  {'run':>3s} {'clock':5s} {'refbp ms':>9s} {'torch ms':>9s} {'ratio':>6s} "
              f"{'refbp IQR ms':>14s} {'GEMM %':>7s} {'alone':>7s}")
        ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
        gemm_pct: dict[str, list[float]] = defaultdict(list)
        for run in range(args.runs):
            r_step, t_step = build(dtype)
            tr, tt = (np.array(t) for t in interleaved(r_step, t_step, args.repeats,
                                                         warmup=10, clock=timed))
            alone = np.array([timed(r_step) for _ in range(args.repeats)])
            for col, clock, rate in ((0, "wall", rate_wall), (1, "cpu", rate_cpu)):
                r, t = float(np.median(tr[:, col])), float(np.median(tt[:, col]))
                q1, q3 = np.percentile(tr[:, col], [25, 75])
                pct = 100 * step_flops() / r / rate
                pct_alone = 100 * step_flops() / float(np.median(alone[:, col])) / rate
                ratios[clock].append(r / t)
                gemm_pct[clock].append(pct)
                gemm_pct[clock + " alone"].append(pct_alone)
                print(f"  {run:3d} {clock:5s} {r * 1e3:9.3f} {t * 1e3:9.3f} {r / t:6.3f} "
                      f"{q1 * 1e3:6.3f}..{q3 * 1e3:6.3f} {pct:6.1f}% {pct_alone:6.1f}%")
            print(f"      ({load()})")
        for clock in ("wall", "cpu"):
            print(f"  {dtype} refbp/torch by {clock} time: median [min..max] over runs "
                  f"{spread(ratios[clock])}; step at {spread(gemm_pct[clock])} % of the GEMM "
                  f"rate interleaved, {spread(gemm_pct[clock + ' alone'])} % alone")
    limiter.restore_original_limits()


if __name__ == "__main__":
    main()
