"""Graph models (``torch.export``): one training step, refbp vs torch, float64 and float32.

Models
------
- ``gpt2``: ``transformers``' GPT2LMHeadModel (4 layers, 4 heads, 64 features, vocabulary 256,
  tied embeddings) on 8 sequences of 32 tokens, MSE on the logits;
- ``resnet``: ``refbp.mirror.zoo.ResNet`` (torchvision's BasicBlock layout, stages (1, 1, 1),
  width 16) on 16 images 3x32x32, cross-entropy over 10 classes;
- ``mlp-graph`` vs ``mlp-sequential``: the same MLP (256 > 512 > Tanh > 512 > Tanh > 10, batch
  128) run by refbp as a graph model and as a ``Sequential`` of refbp layers: the graph's
  bookkeeping (node list, value environment, gradient accumulation) is the difference.

A step is forward, loss, backward and an SGD update, with the same weights and batch on both
sides; timings are interleaved (``benchmarks/_steps.py``) and the table gives the medians and
their ratio. BLAS and torch get the same thread count (``--threads``, default 1).

Run: ``python benchmarks/bench_export.py [--repeats N] [--threads T] [--models ...]``.
"""

from __future__ import annotations

import argparse
import os

PARSER = argparse.ArgumentParser(description="refbp vs torch: graph models, one training step")
PARSER.add_argument("--repeats", type=int, default=10)
PARSER.add_argument("--threads", type=int, default=1)
PARSER.add_argument("--models", nargs="*", default=["gpt2", "resnet", "mlp"])
if __name__ == "__main__":  # imported by matrix.py, which sets the thread counts itself
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(PARSER.parse_args().threads)

import logging  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _steps import interleaved, training_steps  # noqa: E402  (this directory is on sys.path)

from refbp.mirror import as_tensor, from_torch  # noqa: E402
from refbp.mirror.zoo import LogitsOf, ResNet  # noqa: E402

Step = Callable[[], None]


def _gpt2() -> torch.nn.Module:
    import transformers

    logging.getLogger("transformers").setLevel(logging.ERROR)
    return LogitsOf(transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=256, n_positions=32, n_embd=64, n_layer=4, n_head=4, attn_pdrop=0.0,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_implementation="eager", bos_token_id=0,
        eos_token_id=0)))


def _case(name: str, rng: np.random.Generator) -> tuple[torch.nn.Module, np.ndarray, np.ndarray,
                                                      str]:
    if name == "gpt2":
        return (_gpt2(), rng.integers(0, 256, (8, 32)), rng.standard_normal((8, 32, 256)),
                "MSELoss")
    if name == "resnet":
        return (ResNet((1, 1, 1), num_classes=10, width=16), rng.standard_normal((16, 3, 32, 32)),
                rng.integers(0, 10, 16), "CrossEntropyLoss")
    return (torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.Tanh(),
                                torch.nn.Linear(512, 512), torch.nn.Tanh(),
                                torch.nn.Linear(512, 10)),
            rng.standard_normal((128, 256)), rng.standard_normal((128, 10)), "MSELoss")


def _steps(model: Any, tmodel: torch.nn.Module, loss: str, x: np.ndarray, y: np.ndarray
           ) -> tuple[Step, Step]:
    return training_steps(model, x, y, from_torch(getattr(torch.nn, loss)()),
                          getattr(torch.nn, loss)(), torch_model=tmodel)


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def models(name: str, dtype: str) -> tuple[Any, torch.nn.Module, str, np.ndarray, np.ndarray]:
    """The refbp graph model of case ``name``, its torch model, the loss name and the batch."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tmodel, x, y, loss = _case(name, rng)
    tmodel = tmodel.to(getattr(torch, dtype)).train()
    if x.dtype.kind == "f":
        x = x.astype(dtype)
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    graph = from_torch(tmodel, example_inputs=(as_tensor(x),), graph=True)
    return graph, tmodel, loss, x, y


def build(name: str, dtype: str) -> tuple[Step, Step]:
    """The refbp (graph model) and torch training steps of case ``name``."""
    graph, tmodel, loss, x, y = models(name, dtype)
    return _steps(graph, tmodel, loss, x, y)


def main() -> None:
    args = PARSER.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':16s} {'dtype':8s} {'refbp ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for name in args.models:
        for dtype in ("float64", "float32"):
            graph, tmodel, loss, x, y = models(name, dtype)
            r, t = interleaved(*_steps(graph, tmodel, loss, x, y), args.repeats)
            label = "mlp-graph" if name == "mlp" else name
            print(f"{label:16s} {dtype:8s} {_median_ms(r):9.2f} {_median_ms(t):9.2f} "
                  f"{statistics.median(r) / statistics.median(t):6.2f}")
            if name == "mlp":
                seq = from_torch(tmodel)
                s, g = interleaved(*_steps(seq, tmodel, loss, x, y)[:1],
                                   *_steps(graph, tmodel, loss, x, y)[:1], args.repeats)
                print(f"{'mlp-sequential':16s} {dtype:8s} {_median_ms(s):9.2f} "
                      f"{'':9s} graph/sequential {statistics.median(g) / statistics.median(s):.3f}")


if __name__ == "__main__":
    main()
