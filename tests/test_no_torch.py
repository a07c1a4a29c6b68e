"""The NumPy side imports and trains with ``import torch`` made to fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch import was not blocked")

    import numpy as np
    from refbp import data, gradcheck, graph, nn, optim
    from refbp.examples import run_example
    from refbp.optim import lr_scheduler

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    y = x @ rng.standard_normal((4, 2))
    model = nn.Sequential(nn.Linear(4, 16, generator=rng), nn.Tanh(),
                          nn.Linear(16, 2, generator=rng))
    loss = nn.MSELoss()
    opt = optim.Adam(model.parameters(), lr=0.02)
    sched = lr_scheduler.StepLR(opt, step_size=50, gamma=0.5)
    first = None
    for epoch in range(60):
        for idx in data.epoch_indices(64, mode="minibatch", batch_size=16, rng=rng):
            opt.zero_grad()
            value = float(loss(model(x[idx]), y[idx]))
            model.backward(loss.backward())
            opt.step()
            first = value if first is None else first
        sched.step()
    final = float(loss(model(x), y))
    ex = run_example("line_gd", None, echo=lambda _s: None)  # a teaching example's NumPy half
    assert abs(ex["w_final"] - ex["w_closed_form"]) < 0.01 * abs(ex["w_closed_form"]), ex
    print(first, final)
    assert final < 0.1 * first, (first, final)
    assert "torch" not in sys.modules
    """
)


def test_numpy_side_trains_without_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, final = map(float, proc.stdout.split())
    assert final < 0.1 * first
