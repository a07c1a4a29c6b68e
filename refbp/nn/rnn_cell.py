r"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one step of a recurrence, as torch.

A cell is one time step of the corresponding layer (``refbp.nn.functional_rnn`` runs it as a
sequence of length 1, so the formulas and the backward derivation are the ones stated there):

- ``RNNCell``:  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu;
- ``LSTMCell``: gates i, f, g, o; c' = f c + i g; h' = o tanh(c'); returns ``(h', c')``;
- ``GRUCell``:  gates r, z, n with n = tanh(W_in x + b_in + r (W_hn h + b_hn));
  h' = (1 - z) n + z h.

Shapes: input (B, input_size) or unbatched (input_size,); hx (B, hidden_size) or
(hidden_size,), zeros when omitted. Parameters ``weight_ih`` (G*H, input_size),
``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,), all U(-k, k) with k = 1/sqrt(H) as
torch (G = 1, 4, 3).

Backward: ``backward(grad)`` takes d loss / d h' (``LSTMCell``: the pair ``(grad_h, grad_c)``,
either may be ``None``) and returns d loss / d input, or ``(grad_input, grad_hx)`` when
``forward`` was given ``hx`` (``grad_hx`` a pair for ``LSTMCell``); parameter gradients are
accumulated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import init
from refbp.nn.functional_rnn import FIELDS, CellWeights, layer_backward, layer_forward
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter


class RNNCellBase(Module):
    """Parameters, checks and the one-step forward/backward shared by the three cells."""

    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        dt = _float_dtype(dtype)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(np.empty((g, input_size), dtype=dt))
        self.weight_hh = Parameter(np.empty((g, hidden_size), dtype=dt))
        self.bias_ih = Parameter(np.empty(g, dtype=dt)) if bias else None
        self.bias_hh = Parameter(np.empty(g, dtype=dt)) if bias else None
        self._cache = Cache(type(self).__name__)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Every parameter U(-k, k), k = 1/sqrt(hidden_size), as torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv, generator)

    def _weights(self) -> CellWeights:
        return CellWeights(self.weight_ih.data, self.weight_hh.data,
                           None if self.bias_ih is None else self.bias_ih.data,
                           None if self.bias_hh is None else self.bias_hh.data)

    def _input(self, input: Any) -> tuple[np.ndarray, bool]:
        name = type(self).__name__
        x = as_float_array(input, f"{name} input")
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name} input dtype {x.dtype} does not match weight dtype "
                            f"{self.weight_ih.dtype}")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[-1]} "
                               f"expected {self.input_size}")
        return (x if x.ndim == 2 else x[None]), x.ndim == 2

    def _state(self, h: Any, x: np.ndarray, batched: bool, label: str, index: int) -> np.ndarray:
        if h is None:
            return np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        arr = as_float_array(h, f"{type(self).__name__} {label}")
        if arr.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected {label} to be 1D or 2D, got "
                             f"{arr.ndim}D instead")
        if arr.dtype != x.dtype:
            raise TypeError(f"{type(self).__name__} {label} dtype {arr.dtype} does not match "
                            f"input dtype {x.dtype}")
        arr = arr if batched else arr[None]
        if arr.shape[0] != x.shape[0]:
            raise RuntimeError(f"Input batch size {x.shape[0]} doesn't match hidden{index} "
                               f"batch size {arr.shape[0]}")
        if arr.shape[-1] != self.hidden_size:
            raise RuntimeError(f"hidden{index} has inconsistent hidden_size: got "
                               f"{arr.shape[-1]}, expected {self.hidden_size}")
        return arr

    def _step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray | None, batched: bool,
              with_hx: bool) -> tuple[np.ndarray, np.ndarray | None]:
        r = layer_forward(self._mode, x[None], h, c, self._weights())
        self._cache.save(result=r, batched=batched, with_hx=with_hx)
        if batched:
            return r.h_n.copy(), None if r.c_n is None else r.c_n.copy()
        return r.h_n[0].copy(), None if r.c_n is None else r.c_n[0].copy()

    def _backward(self, gh: Any, gc: Any) -> Any:
        cache = self._cache.load()
        batched = cache["batched"]

        def prep(g: Any) -> np.ndarray | None:
            if g is None:
                return None
            g = np.asarray(g, dtype=self.weight_ih.dtype)
            return g if batched else g[None]

        lg = layer_backward(self._mode, cache["result"], self._weights(), None, prep(gh),
                            prep(gc))
        for name, p in self._parameters.items():
            if p is not None:
                p.accumulate(getattr(lg.weights, FIELDS[name]), owned=True)

        def out(a: np.ndarray) -> np.ndarray:
            return a if batched else a[0]

        gx = out(lg.dx[0])
        if not cache["with_hx"]:
            return gx
        if lg.dc0 is None:
            return gx, out(lg.dh0)
        return gx, (out(lg.dh0), out(lg.dc0))

    def forward(self, input: Any, hx: Any = None) -> Any:
        """One step from ``hx`` (zeros when omitted); returns h' (the LSTM cell: ``(h', c')``)."""
        x, batched = self._input(input)
        return self._step(x, self._state(hx, x, batched, "hidden", 0), None, batched,
                          hx is not None)[0]

    def backward(self, grad_out: Any) -> Any:
        """d loss / d input (and d loss / d hx when forward had ``hx``), from d loss / d h'."""
        return self._backward(grad_out, None)

    def extra_repr(self) -> str:
        """torch's repr arguments."""
        s = f"{self.input_size}, {self.hidden_size}"
        return s + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """Elman RNN cell, as ``torch.nn.RNNCell`` (``nonlinearity`` 'tanh' or 'relu')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"

    def extra_repr(self) -> str:
        """torch's repr arguments, with ``nonlinearity`` when it is relu."""
        nl = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity}"
        return super().extra_repr() + nl


class GRUCell(RNNCellBase):
    """Gated recurrent unit cell, as ``torch.nn.GRUCell`` (gate order r, z, n)."""

    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype, generator=generator)


class LSTMCell(RNNCellBase):
    """Long short-term memory cell, as ``torch.nn.LSTMCell`` (gate order i, f, g, o)."""

    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype: Any = None, generator: np.random.Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype, generator=generator)

    def forward(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """One step from ``hx = (h, c)`` (zeros when omitted); returns ``(h', c')``."""
        x, batched = self._input(input)
        if hx is None:
            h = c = self._state(None, x, batched, "hx[0]", 0)
        else:
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise TypeError(f"LSTMCell hx must be a pair (h_0, c_0), got {type(hx).__name__}")
            h = self._state(hx[0], x, batched, "hx[0]", 0)
            c = self._state(hx[1], x, batched, "hx[1]", 1)
        h1, c1 = self._step(x, h, c, batched, hx is not None)
        return h1, c1  # type: ignore[return-value]

    def backward(self, grad_out: Any, grad_c: Any = None) -> Any:
        """From d loss / d h' and d loss / d c' (``grad_c``; either may be None); the pair
        ``(grad_h, grad_c)`` as ``grad_out`` is accepted too."""
        if isinstance(grad_out, tuple | list) and grad_c is None:
            grad_out, grad_c = grad_out
        return self._backward(grad_out, grad_c)
