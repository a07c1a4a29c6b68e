"""Where the time of one refbp MLP training step goes, per op (the model of ``bench_mlp.py``).

Every layer's ``forward``/``backward``, the loss, ``Parameter.accumulate``, ``SGD.step`` and
``zero_grad`` are wrapped with timers that measure the CPU time of the calling thread (BLAS
pinned to the same thread count as the benchmark, default 1), exclusive of the wrapped calls
nested inside them. The matrix products inside ``Linear`` cannot be wrapped; they are replayed
after the steps, on arrays of the step's shapes and memory layouts (``x @ W^T``, ``G^T @ X``,
``G @ W``) and subtracted from ``Linear``'s time, which leaves its non-GEMM part (bias add and
bias gradient, shape checks, the cache). What no wrapper covers (``Sequential`` and the step
function) is "glue". Shares are ratios of CPU times within one process, so they hold under
machine load; the absolute microseconds do not.

Run: ``python benchmarks/profile_mlp.py [--steps N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from bench_mlp import RefbpMLP, blas_threads, build_refbp, load
from threadpoolctl import threadpool_limits

from refbp import nn
from refbp.nn.module import Parameter

Timings = defaultdict[str, list[int]]


class Clock:
    """Exclusive CPU-time accounting for nested wrapped calls (ns, per category, per step)."""

    def __init__(self) -> None:
        self.step: defaultdict[str, int] = defaultdict(int)
        self._children = [0]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed into category ``name`` (its nested wrapped calls excluded)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0)
            t0 = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.thread_time_ns() - t0
                nested = self._children.pop()
                self.step[name] += total - nested
                self._children[-1] += total

        return timed


@contextmanager
def instrumented(mlp: RefbpMLP, clock: Clock) -> Iterator[None]:
    """Wrap the step's layers, loss, optimizer and ``Parameter.accumulate`` with ``clock``."""
    for m in mlp.model:
        kind = type(m).__name__
        object.__setattr__(m, "forward", clock.wrap(f"{kind} forward", m.forward))
        object.__setattr__(m, "backward", clock.wrap(f"{kind} backward", m.backward))
    object.__setattr__(mlp.loss, "forward", clock.wrap("CrossEntropy forward", mlp.loss.forward))
    object.__setattr__(mlp.loss, "backward",
                       clock.wrap("CrossEntropy backward", mlp.loss.backward))
    mlp.opt.step = clock.wrap("SGD step", mlp.opt.step)  # type: ignore[method-assign]
    mlp.opt.zero_grad = clock.wrap("zero_grad", mlp.opt.zero_grad)  # type: ignore[method-assign]
    original = Parameter.accumulate
    Parameter.accumulate = clock.wrap("grad accumulation", original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Parameter.accumulate = original  # type: ignore[method-assign]


def gemm_replay(mlp: RefbpMLP) -> dict[str, Callable[[], Any]]:
    """The step's matrix products, on arrays of the step's shapes and layouts."""
    rng = np.random.default_rng(2)
    out: dict[str, Callable[[], Any]] = {}
    fwd, dw, dx = [], [], []
    x = mlp.x
    linears = [m for m in mlp.model if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        w = lin.weight.data
        g = rng.standard_normal((x.shape[0], lin.out_features)).astype(x.dtype)
        xi = x
        fwd.append(lambda xi=xi, w=w: xi @ w.T)
        dw.append(lambda g=g, xi=xi: g.T @ xi)
        if i > 0:
            dx.append(lambda g=g, w=w: g @ w)
        x = rng.standard_normal((x.shape[0], lin.out_features)).astype(x.dtype)
    out["GEMM forward x W^T"] = lambda: [f() for f in fwd]
    out["GEMM backward G^T X"] = lambda: [f() for f in dw]
    out["GEMM backward G W"] = lambda: [f() for f in dx]
    return out


def profile(dtype: str, steps: int) -> tuple[dict[str, float], float]:
    """Median per-step CPU microseconds per category, and the median whole step."""
    mlp = build_refbp(dtype)
    clock = Clock()
    per_cat: Timings = defaultdict(list)
    whole: list[int] = []
    gemms = gemm_replay(mlp)
    with instrumented(mlp, clock):
        step = clock.wrap("glue", mlp.step)
        for i in range(steps + 10):
            clock.step.clear()
            t0 = time.thread_time_ns()
            step()
            t = time.thread_time_ns() - t0
            if i >= 10:
                whole.append(t)
                for k, v in clock.step.items():
                    per_cat[k].append(v)
    for _ in range(steps):  # after the steps, so as not to disturb their memory reuse
        for name, f in gemms.items():
            g0 = time.thread_time_ns()
            f()
            per_cat[name].append(time.thread_time_ns() - g0)
    med = {k: float(np.median(v)) / 1e3 for k, v in per_cat.items()}
    med["Linear forward"] -= med["GEMM forward x W^T"]
    med["Linear backward"] -= med["GEMM backward G^T X"] + med["GEMM backward G W"]
    return med, float(np.median(whole)) / 1e3


ORDER = ("GEMM forward x W^T", "GEMM backward G^T X", "GEMM backward G W",
         "Linear forward", "Linear backward", "grad accumulation", "ReLU forward",
         "ReLU backward", "CrossEntropy forward", "CrossEntropy backward", "SGD step",
         "zero_grad", "glue")
NOTES = {"Linear forward": "bias add, checks, cache (minus GEMM)",
         "Linear backward": "bias grad sum, checks (minus GEMMs)",
         "ReLU forward": "max(x, 0)", "ReLU backward": "mask y <= 0",
         "CrossEntropy forward": "log-softmax, NLL, target checks",
         "CrossEntropy backward": "softmax-CE gradient",
         "glue": "Sequential, step function"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = ap.parse_args()
    limiter = threadpool_limits(limits=args.threads, user_api="blas")
    print(f"numpy {np.__version__}: {blas_threads()}; median CPU time of {args.steps} steps")
    for dtype in ("float32", "float64"):
        med, whole = profile(dtype, args.steps)
        total = sum(med.values())
        print(f"\n{dtype}: step {whole:.0f} us (sum of parts {total:.0f} us)  ({load()})")
        print(f"  {'op':24s} {'us':>7s} {'share':>6s}")
        for name in ORDER:
            us = med.get(name, 0.0)
            print(f"  {name:24s} {us:7.1f} {100 * us / total:5.1f}%  {NOTES.get(name, '')}")
        gemm = sum(med[k] for k in ORDER[:3])
        print(f"  {'all GEMMs':24s} {gemm:7.1f} {100 * gemm / total:5.1f}%   "
              f"everything else {total - gemm:.1f} us")
    limiter.restore_original_limits()


if __name__ == "__main__":
    main()
