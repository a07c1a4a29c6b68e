"""The benchmark matrix: every benchmark's refbp / torch ratio under both kernel choices, at one
thread and at the default thread count, in one table (markdown and CSV).

Kernel choices
--------------
- ``default``: ``ATEN_CPU_CAPABILITY`` and ``OPENBLAS_CORETYPE`` unset: torch and OpenBLAS pick
  the best kernels for the CPU (AVX-512 ones where the CPU has AVX-512);
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell``.

Both variables are read when the libraries load, so every (kernel choice, thread count) runs in
its own subprocess (this script with ``--worker``), started with the environment of its
choice. Thread counts: ``1`` (OpenBLAS through threadpoolctl, torch through
``torch.set_num_threads``) and ``default`` (neither limited, and ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` removed from the worker's environment: what a
user gets out of the box). Each row prints the kernels each side actually used: OpenBLAS's
``internal_api``, ``architecture`` and thread count from threadpoolctl, and torch's
``torch.backends.cpu.get_cpu_capability()`` and ``torch.get_num_threads()``.

Measurement
-----------
The cases are the models of ``bench_mlp.py``, ``bench_seq.py``, ``bench_conv.py``,
``bench_export.py`` and ``bench_layers.py``, in float32 and float64. Per case, after a warm-up,
refbp and torch steps alternate (``_steps.interleaved``: refbp, torch, refbp, ...), so both
sides see the same machine load; the number of pairs is what fits in ``--budget`` seconds
(between ``--min-repeats`` and ``--max-repeats``). Reported: the median step of each side,
the ratio of the medians with a 95 % bootstrap interval (pairs resampled), and the ratio of the
minima (the least load-disturbed step of each side), all by wall clock; at one thread also the
ratio of the median CPU times of the calling thread (the whole cost of a step at one thread,
and not counting the time other processes take: the figure to read on a loaded machine). The
load average is printed beside every row: wall-clock ratios are robust to moderate load (both
sides share it), absolute times are not. The ``target`` verdict uses the wall-clock ratio.

Targets (one thread, both kernel choices; a ``target`` column shows them): MLP step <= 1.0x in
both dtypes; LSTM and Transformer encoder <= 1.0x float64, <= 1.3x float32; float32
Conv2d <= 1.5x.

Run
---
``python benchmarks/matrix.py [--quick] [--out DIR] [--cases NAME ...]``
(``nox -s bench`` runs it). Each row times pairs for ``--budget`` seconds (8; at least 15
pairs), 14 cases x 2 dtypes per combination, 4 combinations, plus building the models: by that
budget the full matrix needs about 15-25 minutes on an idle 2-core machine. ``--quick`` spends
a quarter of the budget per row (at least 5 pairs) on the same cases; one of its four
combinations took 3 minutes at load 4-11 and 12 minutes at load 28 on 2 cores. Results:
``DIR/matrix.md``, ``DIR/matrix.csv`` and the raw timings ``DIR/matrix.json`` (default ``DIR``:
``reports/bench``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KERNELS: dict[str, dict[str, str | None]] = {
    "default": {"ATEN_CPU_CAPABILITY": None, "OPENBLAS_CORETYPE": None},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
}
THREADS = ("1", "default")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
DTYPES = ("float32", "float64")
TARGETS: dict[tuple[str, str], float] = {
    ("mlp", "float32"): 1.0, ("mlp", "float64"): 1.0,
    ("lstm", "float32"): 1.3, ("lstm", "float64"): 1.0,
    ("transformer", "float32"): 1.3, ("transformer", "float64"): 1.0,
    ("conv2d", "float32"): 1.5,
}
"""Target ratios refbp / torch at one thread (both kernel choices)."""


def cases() -> dict[str, Callable[[str], tuple[Callable[[], object], Callable[[], object]]]]:
    """Case name -> ``build(dtype)`` returning the (refbp, torch) step functions, in table
    order. Imported lazily: only the workers load NumPy and torch."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import bench_conv
    import bench_export
    import bench_layers
    import bench_mlp
    import bench_seq

    out: dict[str, Any] = {"mlp": bench_mlp.build}
    out.update({c.name: c.build for c in bench_seq.CASES})
    out.update(bench_conv.MODELS)
    out.update({f"{n}-graph" if n == "mlp" else f"{n}-export":
                (lambda dtype, n=n: bench_export.build(n, dtype))
                for n in ("mlp", "resnet", "gpt2")})
    out.update(bench_layers.CASES)
    return out


CASE_NAMES = ("mlp", "lstm", "transformer", "resnet-block", "lenet", "mlp-graph",
              "resnet-export", "gpt2-export", "conv2d", "batchnorm2d", "groupnorm", "gap",
              "conv3d-block", "upsample-decoder")
"""Every case, in table order (``cases()`` builds them; a test keeps the two in step)."""


# ---------------------------------------------------------------------------- the worker


def wall_and_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and calling-thread CPU seconds of one call. At one thread the CPU time is
    the whole cost of a step on either side and does not count the time the scheduler gives
    to other processes: the ratio of CPU times holds under machine load."""
    w0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - w0, time.thread_time() - c0


def kernels_used() -> dict[str, Any]:
    """What each side runs on: OpenBLAS's (or another BLAS's) internal API, architecture and
    thread count as threadpoolctl reports them, and torch's CPU capability and threads."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return {
        "numpy": np.__version__,
        "blas": "; ".join(f"{i['internal_api']} {i.get('architecture')}" for i in blas),
        "blas_threads": max((i["num_threads"] for i in blas), default=0),
        "torch": torch.__version__,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }


def worker(args: argparse.Namespace) -> None:
    """Time the cases in this process and write their raw timings as JSON to ``args.out``."""
    import torch
    from threadpoolctl import threadpool_limits

    if args.threads != "default":
        threadpool_limits(int(args.threads))
        torch.set_num_threads(int(args.threads))
    builders = cases()
    import bench_layers
    from _steps import interleaved, timeit

    results: dict[str, Any] = {"kernels": kernels_used(), "load_before": os.getloadavg(),
                               "rows": []}
    for name in args.cases:
        for dtype in args.dtypes:
            row: dict[str, Any] = {"case": name, "dtype": dtype}
            try:
                r_step, t_step = builders[name](dtype)
                pair = timeit(r_step) + timeit(t_step)  # also the first warm-up pair
                repeats = int(min(args.max_repeats, max(args.min_repeats,
                                                        args.budget / pair)))
                r, t = interleaved(r_step, t_step, repeats, warmup=2, clock=wall_and_cpu)
            except bench_layers.Unavailable as e:
                row["unavailable"] = str(e)
                results["rows"].append(row)
                continue
            except Exception as e:  # one broken case must not lose the others' timings
                row["unavailable"] = f"failed: {type(e).__name__}: {e}"
                results["rows"].append(row)
                print(f"  {name} {dtype}: {row['unavailable']}", flush=True)
                continue
            row.update(refbp=[w for w, _ in r], torch=[w for w, _ in t],
                       refbp_cpu=[c for _, c in r], torch_cpu=[c for _, c in t],
                       load=os.getloadavg())
            results["rows"].append(row)
            print(f"  {name} {dtype}: {repeats} pairs, ratio "
                  f"{statistics.median(row['refbp']) / statistics.median(row['torch']):.3f}",
                  flush=True)
    results["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results))


# ---------------------------------------------------------------------------- the driver


def bootstrap(r: list[float], t: list[float], n: int = 2000, seed: int = 0
              ) -> tuple[float, float]:
    """95 % interval of ``median(r) / median(t)``, resampling the interleaved pairs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ra, ta = np.asarray(r), np.asarray(t)
    idx = rng.integers(0, len(ra), size=(n, len(ra)))
    ratios = np.median(ra[idx], axis=1) / np.median(ta[idx], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def summarise(kernel: str, threads: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per (case, dtype) of one worker's result."""
    k = result["kernels"]
    rows = []
    for raw in result["rows"]:
        row: dict[str, Any] = {
            "case": raw["case"], "dtype": raw["dtype"], "kernels": kernel, "threads": threads,
            "target": TARGETS.get((raw["case"], raw["dtype"])) if threads == "1" else None,
            "numpy_blas": f"{k['blas']} x{k['blas_threads']}",
            "torch_cpu": f"{k['torch_capability']} x{k['torch_threads']}",
        }
        if "unavailable" in raw:
            row["note"] = raw["unavailable"]
        else:
            r, t = raw["refbp"], raw["torch"]
            lo, hi = bootstrap(r, t)
            row.update(pairs=len(r), refbp_ms=1e3 * statistics.median(r),
                       torch_ms=1e3 * statistics.median(t),
                       ratio=statistics.median(r) / statistics.median(t), ratio_lo=lo,
                       ratio_hi=hi, ratio_min=min(r) / min(t),
                       cpu_ratio=(statistics.median(raw["refbp_cpu"])
                                  / statistics.median(raw["torch_cpu"])
                                  if threads == "1" else None),
                       load=" ".join(f"{v:.1f}" for v in raw["load"]))
        rows.append(row)
    return rows


COLUMNS = ("case", "dtype", "kernels", "threads", "pairs", "refbp_ms", "torch_ms", "ratio",
           "ratio_lo", "ratio_hi", "ratio_min", "cpu_ratio", "target", "numpy_blas", "torch_cpu",
           "load", "note")


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    """The table: one line per (case, dtype, kernels, threads)."""
    lines = [header, "",
             "| case | dtype | kernels | threads | refbp ms | torch ms | ratio [95 %] "
             "| ratio of minima | CPU-time ratio | target | NumPy BLAS | torch CPU | load |",
             "|---|---|---|---|---:|---:|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        if "ratio" not in r:
            lines.append(f"| {r['case']} | {r['dtype']} | {r['kernels']} | {r['threads']} | "
                         f"| | {r.get('note', '')} | | | | {r['numpy_blas']} | {r['torch_cpu']} "
                         f"| |")
            continue
        cpu = "" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}"
        target = "" if r["target"] is None else (
            f"<= {r['target']:.1f} " + ("met" if r["ratio"] <= r["target"] else "missed"))
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['kernels']} | {r['threads']} "
            f"| {r['refbp_ms']:.3g} | {r['torch_ms']:.3g} "
            f"| {r['ratio']:.2f} [{r['ratio_lo']:.2f}..{r['ratio_hi']:.2f}] "
            f"| {r['ratio_min']:.2f} | {cpu} | {target} | {r['numpy_blas']} | {r['torch_cpu']} "
            f"| {r['load']} |")
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    """The CPU model (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_worker(kernel: str, threads: str, args: argparse.Namespace, out: Path
               ) -> dict[str, Any]:
    """One worker subprocess under kernel choice ``kernel`` and thread count ``threads``."""
    env = dict(os.environ)
    for var, value in KERNELS[kernel].items():
        if value is None:
            env.pop(var, None)
        else:
            env[var] = value
    if threads == "default":
        for var in THREAD_VARS:
            env.pop(var, None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", threads,
           "--out", str(out), "--budget", str(args.budget), "--min-repeats",
           str(args.min_repeats), "--max-repeats", str(args.max_repeats),
           "--cases", *args.cases, "--dtypes", *args.dtypes]
    subprocess.run(cmd, env=env, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def driver(args: argparse.Namespace) -> None:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    header = (f"refbp / torch, one training step (or layer forward + backward); "
              f"{cpu_name()}, {os.cpu_count()} logical CPUs, Python "
              f"{platform.python_version()}; {'quick' if args.quick else 'full'} run; "
              f"at start: {uptime()}")
    print(header, flush=True)
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    for kernel in args.kernels:
        for threads in args.threads:
            print(f"kernels {kernel}, threads {threads}: {uptime()}", flush=True)
            result = run_worker(kernel, threads, args, out_dir / f".worker-{kernel}-{threads}"
                                                              ".json")
            raw[f"{kernel}/{threads}"] = result
            rows.extend(summarise(kernel, threads, result))
    order = {name: i for i, name in enumerate(args.cases)}
    rows.sort(key=lambda r: (order[r["case"]], r["dtype"], r["threads"] != "1",
                             r["kernels"] != "default"))
    footer = f"at end: {uptime()}; {time.monotonic() - started:.0f} s"
    (out_dir / "matrix.md").write_text(markdown(rows, header) + f"\n{footer}\n")
    with (out_dir / "matrix.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: (f"{r[c]:.4g}" if isinstance(r.get(c), float) else r.get(c, ""))
                        for c in COLUMNS})
    (out_dir / "matrix.json").write_text(json.dumps(
        {"header": header, "footer": footer, "raw": raw}))
    for part in out_dir.glob(".worker-*.json"):
        part.unlink()
    print(markdown(rows, header))
    print(footer)
    print(f"written: {out_dir / 'matrix.md'}, {out_dir / 'matrix.csv'}, "
          f"{out_dir / 'matrix.json'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a quarter of the time budget per case (at least 5 pairs)")
    ap.add_argument("--out", default="reports/bench", help="directory of the results")
    ap.add_argument("--cases", nargs="+", default=list(CASE_NAMES), choices=CASE_NAMES)
    ap.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument("--threads", nargs="+", default=list(THREADS), choices=THREADS,
                    help="thread counts (with --worker: the one of this worker)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of interleaved pairs per case (default 8, quick 2)")
    ap.add_argument("--min-repeats", type=int, default=None, help="(default 15, quick 5)")
    ap.add_argument("--max-repeats", type=int, default=400)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.budget is None:
        args.budget = 2.0 if args.quick else 8.0
    if args.min_repeats is None:
        args.min_repeats = 5 if args.quick else 15
    if args.worker:
        args.threads = args.threads[0]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    (worker if args.worker else driver)(args)


if __name__ == "__main__":
    main()
