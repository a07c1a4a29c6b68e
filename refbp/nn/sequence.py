r"""``RNNOutput``: pick the part of a recurrent layer's ``(output, h_n)`` that the model uses.

``RNN`` / ``LSTM`` / ``GRU`` return a tuple; models usually go on with one piece of it (the
last step for a sequence classifier, every step for a per-step loss). ``RNNOutput`` is that
piece as a layer, so such a model is a plain ``Sequential``
(``Embedding -> LSTM -> RNNOutput('last') -> Linear``) and mirrors to a stock torch
``Sequential`` (its twin is ``refbp.mirror.RNNOutputTorch``, plain indexing in ``forward``).

``select``:

- ``"last"``: ``output[:, -1]`` with ``batch_first`` (``output[-1]`` otherwise), shape (B, F);
- ``"all"``: ``output`` unchanged, (B, T, F) or (T, B, F);
- ``"hidden"``: ``h_n[-1]``, the final hidden state of the last layer (its reverse direction
  when bidirectional), (B, H_out).

Backward: the selection is a projection, so the gradient is zero everywhere except the
selected slots, which receive ``grad_out``; it is returned in the layer's tuple layout
(``(grad_output, None)`` or ``(None, grad_h_n)``, LSTM ``(None, (grad_h_n, None))``), which
the recurrent layers' ``backward`` accepts (``None`` = zero).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn.module import Cache, Module

SELECTIONS = ("last", "all", "hidden")


class RNNOutput(Module):
    """Select ``output[last step]``, ``output`` or ``h_n[-1]`` from ``(output, h_n)``."""

    def __init__(self, select: str = "last", batch_first: bool = False) -> None:
        super().__init__()
        if select not in SELECTIONS:
            raise ValueError(f"RNNOutput select must be one of {SELECTIONS}, got {select!r}")
        self.select, self.batch_first = select, bool(batch_first)
        self._cache = Cache("RNNOutput")

    def forward(self, x: Any) -> np.ndarray:
        """The selected piece of ``x = (output, h_n)``; see the module docstring."""
        if not (isinstance(x, tuple) and len(x) == 2):
            raise TypeError("RNNOutput expects the (output, h_n) tuple of an RNN, LSTM or GRU, "
                            f"got {type(x).__name__}")
        output, hidden = x
        lstm = isinstance(hidden, tuple)
        h_n = hidden[0] if lstm else hidden
        if np.ndim(output) != 3:
            raise ValueError("RNNOutput expects a batched 3-D output, got shape "
                             f"{np.shape(output)}")
        self._cache.save(out_shape=np.shape(output), h_shape=np.shape(h_n), lstm=lstm,
                         dtype=np.asarray(output).dtype)
        if self.select == "all":
            return output
        if self.select == "hidden":
            return h_n[-1]
        return output[:, -1] if self.batch_first else output[-1]

    def backward(self, grad_out: np.ndarray) -> tuple[Any, Any]:
        """``grad_out`` placed in the selected slots, in the recurrent layer's tuple layout."""
        c = self._cache.load()
        if self.select == "all":
            return grad_out, None
        if self.select == "hidden":
            gh = np.zeros(c["h_shape"], dtype=c["dtype"])
            gh[-1] = grad_out
            return None, ((gh, None) if c["lstm"] else gh)
        g = np.zeros(c["out_shape"], dtype=c["dtype"])
        if self.batch_first:
            g[:, -1] = grad_out
        else:
            g[-1] = grad_out
        return g, None

    def extra_repr(self) -> str:
        """The selection and the layout."""
        return f"select={self.select!r}, batch_first={self.batch_first}"
