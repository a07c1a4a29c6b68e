r"""``RNN``, ``LSTM`` and ``GRU``: stacked, optionally bidirectional recurrent layers, as torch.

The recurrence of every layer and its backward through time live in
``refbp.nn.functional_rnn`` (formulas and derivation there). This module stacks them:

- layer 0 reads the input; layer l > 0 reads the output of layer l - 1, which for a
  bidirectional net is ``[forward output, reverse output]`` concatenated on the last dim
  (the reverse direction runs the same recurrence on the time-reversed sequence and its
  output is reversed back);
- ``dropout`` > 0 multiplies the output of every layer but the last by a dropout mask in
  training mode (see :class:`RNNBase`);
- ``h_n[k]`` / ``c_n[k]`` is the final state of layer ``k // D``, direction ``k % D``
  (D = 2 if bidirectional else 1), torch's layout.

Backward contract (for all three classes)
-----------------------------------------
``backward(grad_output, grad_hx=None)`` takes the gradient of ``output`` and of the final
state(s): ``grad_hx`` is an array like ``h_n`` for RNN/GRU and a pair ``(grad_h_n, grad_c_n)``
for LSTM; any of them may be ``None`` (zero). A single tuple shaped like the forward output,
``(grad_output, grad_hx)``, is accepted too (that is what a downstream layer that picks from
the output tuple, such as :class:`refbp.nn.RNNOutput`, returns). It returns the gradient of
the forward inputs: ``grad_input`` when ``forward`` ran without ``hx``, otherwise
``(grad_input, grad_hx0)`` with ``grad_hx0`` shaped like ``hx`` (a pair for LSTM), as torch's
autograd would fill ``input.grad`` and ``hx.grad``. Parameter gradients are accumulated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import init
from refbp.nn.dropout import dropout_scale, keep_mask
from refbp.nn.functional_rnn import (
    FIELDS,
    GATES,
    CellWeights,
    LayerResult,
    layer_backward,
    layer_forward,
)
from refbp.nn.linear import _float_dtype
from refbp.nn.module import Cache, Module, Parameter
from refbp.nn.rnn_checks import check_rnn_args, prepare_state, to_time_major

Array = np.ndarray


class RNNBase(Module):
    """Shared machinery of ``RNN``, ``LSTM`` and ``GRU`` (torch's ``RNNBase``).

    Parameters (per layer l and direction suffix ``""`` / ``"_reverse"``, registration order
    as torch): ``weight_ih_l{l}`` (G*H, I_l), ``weight_hh_l{l}`` (G*H, H_out), ``bias_ih_l{l}``,
    ``bias_hh_l{l}`` (G*H,), ``weight_hr_l{l}`` (proj_size, H) for an LSTM with projections;
    G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n); I_0 = input_size, I_l = D * H_out;
    H_out = proj_size or hidden_size. Every parameter starts U(-k, k), k = 1/sqrt(hidden_size),
    as ``torch.nn.RNNBase.reset_parameters``.

    Dropout between layers: in training mode with ``dropout`` = p > 0 the output of each layer
    but the last (time-major, ``(T, B, D * H_out)``, where torch draws it) is multiplied by
    ``mask / (1 - p)``, a Bernoulli(1 - p) keep-mask; backward multiplies the gradient by the
    same noise. The masks come from ``refbp.nn.dropout.keep_mask``, one per layer boundary in
    layer order: fed from outside (``feed_masks``; a parity run hands refbp the masks torch
    draws) or drawn from ``generator`` (the constructor's, else ``refbp.nn.init``'s default).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        check_rnn_args(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                       proj_size)
        dt = _float_dtype(dtype)
        self.mode = mode
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        self.generator = generator
        gate = GATES[mode] * hidden_size
        real = proj_size if proj_size > 0 else hidden_size
        self._weight_names: list[list[str]] = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[: self.num_directions]:
                width = input_size if layer == 0 else real * self.num_directions
                shapes = {"weight_ih": (gate, width), "weight_hh": (gate, real)}
                if bias:
                    shapes.update(bias_ih=(gate,), bias_hh=(gate,))
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                names = []
                for base, shape in shapes.items():
                    name = f"{base}_l{layer}{suffix}"
                    setattr(self, name, Parameter(np.empty(shape, dtype=dt)))
                    names.append(name)
                self._weight_names.append(names)
        self._cache = Cache(type(self).__name__)
        self.reset_parameters(generator)

    @property
    def num_directions(self) -> int:
        """2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    @property
    def real_hidden_size(self) -> int:
        """H_out: ``proj_size`` when > 0, else ``hidden_size``."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Every parameter U(-k, k), k = 1/sqrt(hidden_size), as torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv, generator)

    def _cell_weights(self, k: int) -> CellWeights:
        return CellWeights(**{FIELDS[n.split("_l")[0]]: self._parameters[n].data
                              for n in self._weight_names[k]})

    def _masks(self, shape: tuple[int, ...]) -> list[Array | None]:
        """The dropout noise (mask / (1 - p)) after each layer but the last, in draw order."""
        n = self.num_layers - 1
        if not (self.training and self.dropout > 0 and n > 0):
            return [None] * n
        gen = self.generator if self.generator is not None else init.default_generator()
        name, dt = type(self).__name__, self._dtype
        scale = dropout_scale(self.dropout, dt)
        return [keep_mask(shape, self.dropout, gen, f"{name} dropout after layer {k}").astype(dt)
                * scale for k in range(n)]

    @property
    def _dtype(self) -> np.dtype:
        return self._parameters[self._weight_names[0][0]].data.dtype

    # -- forward ----------------------------------------------------------------------------
    def forward(self, input: Any, hx: Any = None) -> tuple[Array, Any]:
        """Run the stack; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

        Shapes: input (T, B, I), or (B, T, I) with ``batch_first``, or unbatched (T, I);
        hx (D*num_layers, B, H_out) or (D*num_layers, H_out) unbatched (LSTM: a pair, c with
        hidden_size); output (T, B, D*H_out) (batch_first: (B, T, D*H_out)).
        """
        name = "RNN" if self.mode.startswith("RNN") else self.mode
        x = as_float_array(input, f"{name} input")
        x_tm, batched = to_time_major(x, self, name)
        h0, c0 = prepare_state(hx, x_tm, batched, self)
        steps, batch = x_tm.shape[:2]
        d, width = self.num_directions, self.real_hidden_size
        masks = self._masks((steps, batch, d * width))
        results: list[LayerResult] = []
        inp = x_tm
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                xi = inp if direction == 0 else inp[::-1]
                r = layer_forward(self.mode, xi, h0[k], None if c0 is None else c0[k],
                                  self._cell_weights(k))
                results.append(r)
                outs.append(r.output if direction == 0 else r.output[::-1])
            inp = outs[0] if d == 1 else np.concatenate(outs, axis=-1)
            if layer < self.num_layers - 1 and masks[layer] is not None:
                inp = inp * masks[layer]
        h_n = np.stack([r.h_n for r in results])
        c_n = np.stack([r.c_n for r in results]) if self.mode == "LSTM" else None
        self._cache.save(results=results, masks=masks, batched=batched,
                         with_hx=hx is not None, shape=x.shape)
        out = inp.transpose(1, 0, 2) if self.batch_first else inp
        if not batched:
            out, h_n = out[:, 0] if not self.batch_first else out[0], h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        out = np.ascontiguousarray(out)
        return out, (h_n, c_n) if self.mode == "LSTM" else h_n

    # -- backward ---------------------------------------------------------------------------
    def _state_grads(self, grad_hx: Any, batched: bool) -> tuple[Array | None, Array | None]:
        if self.mode == "LSTM":
            gh, gc = (None, None) if grad_hx is None else grad_hx
        else:
            gh, gc = grad_hx, None

        def tm(g: Any) -> Array | None:
            if g is None:
                return None
            g = np.asarray(g, dtype=self._dtype)
            return g if batched else g[:, None]
        return tm(gh), tm(gc)

    def backward(self, grad_output: Any, grad_hx: Any = None) -> Any:
        """Backward through time; see the module docstring for the contract."""
        if isinstance(grad_output, tuple) and grad_hx is None:
            grad_output, grad_hx = grad_output
        c = self._cache.load()
        results: list[LayerResult] = c["results"]
        batched = c["batched"]
        g: Array | None = None
        if grad_output is not None:
            g = np.asarray(grad_output, dtype=self._dtype)
            if not batched:
                g = g[:, None]
            elif self.batch_first:
                g = g.transpose(1, 0, 2)
        gh_n, gc_n = self._state_grads(grad_hx, batched)
        d, width = self.num_directions, self.real_hidden_size
        n = len(results)
        dh0: list[Array] = [np.empty(0)] * n
        dc0: list[Array | None] = [None] * n
        for layer in range(self.num_layers - 1, -1, -1):
            if g is not None and layer < self.num_layers - 1 and c["masks"][layer] is not None:
                g = g * c["masks"][layer]
            g_in: Array | None = None
            for direction in range(d):
                k = layer * d + direction
                gd = None if g is None else g[..., direction * width:(direction + 1) * width]
                if gd is not None and direction == 1:
                    gd = gd[::-1]
                lg = layer_backward(self.mode, results[k], self._cell_weights(k), gd,
                                    None if gh_n is None else gh_n[k],
                                    None if gc_n is None else gc_n[k])
                for name in self._weight_names[k]:
                    field = FIELDS[name.split("_l")[0]]
                    self._parameters[name].accumulate(getattr(lg.weights, field), owned=True)
                dx = lg.dx if direction == 0 else lg.dx[::-1]
                g_in = dx if g_in is None else g_in + dx
                dh0[k], dc0[k] = lg.dh0, lg.dc0
            g = g_in
        return self._input_grads(g, dh0, dc0, c)  # type: ignore[arg-type]

    def _input_grads(self, g: Array, dh0: list[Array], dc0: list[Array | None],
                     c: dict[str, Any]) -> Any:
        if not c["batched"]:
            gx = g[:, 0]
        else:
            gx = g.transpose(1, 0, 2) if self.batch_first else g
        gx = np.ascontiguousarray(gx)
        if not c["with_hx"]:
            return gx
        gh = np.stack(dh0)
        gh = gh if c["batched"] else gh[:, 0]
        if self.mode != "LSTM":
            return gx, gh
        gc = np.stack([v for v in dc0 if v is not None])
        return gx, (gh, gc if c["batched"] else gc[:, 0])

    def extra_repr(self) -> str:
        """torch's repr arguments (only those that differ from the defaults)."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                             ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s


class RNN(RNNBase):
    r"""Elman RNN, as ``torch.nn.RNN``: :math:`h_t = act(x_t W_{ih}^T + b_{ih} + h_{t-1}
    W_{hh}^T + b_{hh})` with ``nonlinearity`` tanh (default) or relu.

    Arguments, shapes, parameters and the backward contract: :class:`RNNBase` and the module
    docstring; the backward-through-time derivation: ``refbp.nn.functional_rnn``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        """torch's repr arguments, with ``nonlinearity`` when it is relu."""
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    r"""Long short-term memory, as ``torch.nn.LSTM`` (gate order i, f, g, o; ``proj_size``).

    Forward returns ``(output, (h_n, c_n))``; ``h_n`` has ``proj_size`` features when
    ``proj_size`` > 0 (then ``h_t = (o * tanh(c_t)) W_hr^T``). Arguments, parameters and the
    backward contract: :class:`RNNBase` and the module docstring; derivation:
    ``refbp.nn.functional_rnn``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, dtype=dtype, generator=generator)


class GRU(RNNBase):
    r"""Gated recurrent unit, as ``torch.nn.GRU`` (gate order r, z, n; ``b_hn`` inside
    ``r * (W_hn h + b_hn)``).

    Arguments, parameters and the backward contract: :class:`RNNBase` and the module
    docstring; derivation: ``refbp.nn.functional_rnn``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, dtype: Any = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, generator=generator)
