"""One training step of two CNNs: refbp vs torch CPU, side by side, float32 and float64.

Models
------
- ``resnet-block``: a ResNet basic block on a batch of 32 images with 64 channels of 32x32:
  conv3x3 > BatchNorm2d > ReLU > conv3x3 > BatchNorm2d, plus the input (residual), > ReLU;
  MSE against a fixed random target.
- ``lenet``: LeNet-5 on a batch of 64 1x28x28 images: conv5x5(6, padding 2) > ReLU > maxpool2 >
  conv5x5(16) > ReLU > maxpool2 > flatten > 120 > ReLU > 84 > ReLU > 10; cross-entropy.

A step is forward, loss, backward and an SGD-momentum update. Both sides start from the same
weights and see the same batch; the input needs no gradient on either side. Timings are
interleaved (refbp, torch, refbp, ...) so both see the same machine load; the table gives the
median and the interquartile range of each side and the ratio of the medians (refbp / torch).
NumPy's BLAS and torch get the same thread count (``--threads``, default 1; set before NumPy
loads its BLAS). ``--profile`` adds, per model and dtype, where refbp's step spends its time
(cProfile, own time per function).

Run: ``python benchmarks/bench_conv.py [--repeats N] [--threads T] [--profile]``.

Where the time goes (``--profile``): a refbp convolution is three GEMMs per sample (``y = W
cols``, ``dW = Gy cols^T``, and for stride 1 ``dx = W~ cols(Gy)``, the padded upstream
gradient correlated with the flipped kernel; otherwise ``W^T Gy`` and a col2im), each on
im2col columns built chunk by chunk of samples into one reused buffer; on the ResNet block
the GEMMs take most of the step and the im2col copies most of the rest (BatchNorm2d and ReLU
a few per cent). torch runs float32 convolutions through
oneDNN (``aten::mkldnn_convolution``: direct, vectorised kernels that need no im2col buffer),
but float64 ones through ``aten::_slow_conv2d_forward/backward`` (im2col + GEMM, like refbp),
so the ratio is much higher in float32 than in float64.
"""

from __future__ import annotations

import argparse
import os

PARSER = argparse.ArgumentParser(description="refbp vs torch: one CNN training step")
PARSER.add_argument("--repeats", type=int, default=10)
PARSER.add_argument("--threads", type=int, default=1)
PARSER.add_argument("--profile", action="store_true", help="where refbp's step spends time")
PARSER.add_argument("--models", nargs="*", default=["resnet-block", "lenet"])
if __name__ == "__main__":  # imported by matrix.py, which sets the thread counts itself
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(PARSER.parse_args().threads)

import cProfile  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _steps import interleaved  # noqa: E402  (this directory is on sys.path)

from refbp import nn, optim  # noqa: E402
from refbp.mirror import as_tensor, to_torch  # noqa: E402

Step = Callable[[], float]


class ResidualBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)``; backward adds the skip gradient."""

    def __init__(self, channels: int, dtype: str, rng: np.random.Generator) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=dtype,
                               generator=rng)
        self.bn1 = nn.BatchNorm2d(channels, dtype=dtype)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=dtype,
                               generator=rng)
        self.bn2 = nn.BatchNorm2d(channels, dtype=dtype)
        self.relu2 = nn.ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = self.bn1(self.conv1(x))
        h = self.bn2(self.conv2(self.relu1(h)))
        return self.relu2(h + x)

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        g = self.relu2.backward(grad_out)
        h = self.relu1.backward(self.bn1.backward(self.conv2.backward(self.bn2.backward(g))))
        gx = self.conv1.backward(h, input_grad=input_grad)
        return None if gx is None else gx + g


class TorchResidualBlock(torch.nn.Module):
    """The same block from stock torch modules (same child names, so state dicts match)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels)
        self.relu2 = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x))
        h = self.bn2(self.conv2(self.relu1(h)))
        return self.relu2(h + x)


def _sgd_steps(model: Any, tmodel: torch.nn.Module, loss: nn.Module, tloss: torch.nn.Module,
           x: np.ndarray, y: np.ndarray) -> tuple[Step, Step]:
    """The two training steps (SGD with momentum, lr 0.01); each returns its loss."""
    opt = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    xt, yt = as_tensor(x), as_tensor(y)

    def refbp_step() -> float:
        opt.zero_grad()
        value = float(loss(model(x), y))
        model.backward(loss.backward(), input_grad=False)
        opt.step()
        return value

    def torch_step() -> float:
        topt.zero_grad()
        lt = tloss(tmodel(xt), yt)
        lt.backward()
        topt.step()
        return lt.item()

    return refbp_step, torch_step


def resnet_block(dtype: str) -> tuple[Step, Step]:
    rng = np.random.default_rng(0)
    model = ResidualBlock(64, dtype, rng)
    tmodel = TorchResidualBlock(64).to(torch.float64 if dtype == "float64" else torch.float32)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = rng.standard_normal((32, 64, 32, 32)).astype(dtype)
    y = rng.standard_normal((32, 64, 32, 32)).astype(dtype)
    return _sgd_steps(model, tmodel, nn.MSELoss(), torch.nn.MSELoss(), x, y)


def lenet(dtype: str) -> tuple[Step, Step]:
    rng = np.random.default_rng(0)
    kw: dict[str, Any] = {"dtype": dtype, "generator": rng}
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, **kw), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120, **kw), nn.ReLU(), nn.Linear(120, 84, **kw), nn.ReLU(),
        nn.Linear(84, 10, **kw))
    x = rng.standard_normal((64, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, size=64)
    return _sgd_steps(model, to_torch(model), nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(),
                  x, y)


MODELS: dict[str, Callable[[str], tuple[Step, Step]]] = {"resnet-block": resnet_block,
                                                          "lenet": lenet}


def _quartiles(ts: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ts, n=4, method="inclusive")
    return q[0] * 1e3, statistics.median(ts) * 1e3, q[2] * 1e3


def _profile(step: Step, top: int = 8) -> list[str]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        step()
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore
    out = []
    for (path, line, name), v in rows:
        where = f"{os.path.basename(path)}:{line}({name})" if line else name
        out.append(f"    {100 * v[2] / total:5.1f}%  {where}")
    return out


def main() -> None:
    args = PARSER.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy "
          f"{np.__version__} (BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}), "
          f"{args.repeats} interleaved repeats")
    print(f"{'model':13s} {'dtype':8s} {'refbp ms (IQR)':>24s} {'torch ms (IQR)':>24s} "
          f"{'ratio':>6s}  loss refbp / torch")
    for name in args.models:
        for dtype in ("float32", "float64"):
            r_step, t_step = MODELS[name](dtype)
            losses = (r_step(), t_step())
            r_times, t_times = interleaved(r_step, t_step, args.repeats, warmup=2)
            r, t = _quartiles(r_times), _quartiles(t_times)
            print(f"{name:13s} {dtype:8s} {r[1]:9.1f} ({r[0]:6.1f}-{r[2]:6.1f}) "
                  f"{t[1]:9.1f} ({t[0]:6.1f}-{t[2]:6.1f}) {r[1] / t[1]:5.2f}x  "
                  f"{losses[0]:.6g} / {losses[1]:.6g}")
            if args.profile:
                print("\n".join(_profile(r_step)))


if __name__ == "__main__":
    main()
