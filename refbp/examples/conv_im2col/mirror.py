"""The torch half of example ``conv_im2col``: the same steps computed by torch autograd.

Only the data, the initial values and the batch order come from the NumPy half
(:mod:`refbp.examples.conv_im2col`); every derivative and update is torch's.
:mod:`refbp.examples.replay` compares the two halves.
"""

from __future__ import annotations

import torch

from refbp.examples import conv_im2col
from refbp.examples._mirror import Result, const, leaf
from refbp.mirror.oracle import to_numpy

__all__ = ["replay"]


def replay() -> Result:
    """The example computed by torch autograd (keys as refbp's, minus its diagnostics)."""
    p = conv_im2col.params()
    x, w, b = leaf(conv_im2col.X), leaf(p["W"]), leaf(p["b"])
    g = const(p["G"])
    y = torch.nn.functional.conv2d(x, w, b)
    y.backward(g.reshape(1, 2, 2, 2))
    cols = torch.nn.functional.unfold(const(conv_im2col.X), conv_im2col.K)[0].requires_grad_()
    (w.detach().reshape(2, -1) @ cols).backward(g)
    return {"cols": to_numpy(cols), "y": to_numpy(y)[0], "dL_dW": to_numpy(w.grad),
            "dL_db": to_numpy(b.grad), "dL_dcols": to_numpy(cols.grad),
            "dL_dx": to_numpy(x.grad)[0, 0]}
