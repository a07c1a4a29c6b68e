"""Torch twins of refbp's sequence layers: RNN/LSTM/GRU, their cells, Embedding, RNNOutput.

``torch.nn.RNN``/``LSTM``/``GRU`` take ``*args, **kwargs`` (their constructor cannot be read
by name), so their converters list the arguments explicitly. ``RNNOutputTorch`` is the stock
twin of :class:`refbp.nn.RNNOutput`: plain tensor indexing in ``forward``, autograd does the
rest (no custom autograd Function).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from refbp import nn as rnn
from refbp.mirror.dropout import next_dropout_mask, register_mask_probe, rewound_rng
from refbp.mirror.modules import _generic_from_torch, finish_twin, register_converter
from refbp.nn.module import Module

# torch notes once per process that its oneDNN kernel does not do LSTM projections and that it
# uses its default kernel instead: an implementation detail with no effect on the results.
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN",
                        category=UserWarning)


class RNNOutputTorch(torch.nn.Module):
    """Torch mirror of :class:`refbp.nn.RNNOutput`: ``output[:, -1]``, ``output`` or
    ``h_n[-1]`` of an ``(output, h_n)`` / ``(output, (h_n, c_n))`` tuple."""

    def __init__(self, select: str = "last", batch_first: bool = False) -> None:
        super().__init__()
        self.select, self.batch_first = select, batch_first

    def forward(self, x: tuple[torch.Tensor, Any]) -> torch.Tensor:
        output, hidden = x
        if self.select == "all":
            return output
        if self.select == "hidden":
            return (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]
        return output[:, -1] if self.batch_first else output[-1]

    def extra_repr(self) -> str:
        return f"select={self.select!r}, batch_first={self.batch_first}"


_STACK_ARGS = ("num_layers", "bias", "batch_first", "dropout", "bidirectional")


def _stack_kwargs(m: Any) -> dict[str, Any]:
    kw = {a: getattr(m, a) for a in _STACK_ARGS}
    if isinstance(m, rnn.LSTM | torch.nn.LSTM):
        kw["proj_size"] = m.proj_size
    if isinstance(m, rnn.RNN | torch.nn.RNN):
        kw["nonlinearity"] = m.nonlinearity
    return kw


def _from_torch_stack(t: torch.nn.Module, cls: type) -> Module:
    dtype = next(iter(t.parameters())).detach().numpy().dtype
    m = cls(t.input_size, t.hidden_size, **_stack_kwargs(t), dtype=dtype)
    m.load_state_dict({k: v.detach().cpu().numpy() for k, v in t.state_dict().items()})
    for name, p in t.named_parameters():
        m._parameters[name].requires_grad = p.requires_grad
    return m.train(t.training)


def _stack_converter(cls: type, tcls: type) -> None:
    register_converter(
        cls, tcls,
        lambda m: finish_twin(m, tcls(m.input_size, m.hidden_size, **_stack_kwargs(m))),
        lambda t: _from_torch_stack(t, cls))


def _register() -> None:
    for name in ("RNN", "LSTM", "GRU"):
        _stack_converter(getattr(rnn, name), getattr(torch.nn, name))
    register_converter(
        rnn.RNNCell, torch.nn.RNNCell,
        lambda m: finish_twin(m, torch.nn.RNNCell(m.input_size, m.hidden_size, m.bias,
                                              m.nonlinearity)),
        lambda t: _generic_from_torch(t, rnn.RNNCell))
    register_converter(rnn.RNNOutput, RNNOutputTorch,
                       lambda m: RNNOutputTorch(m.select, m.batch_first),
                       lambda t: rnn.RNNOutput(t.select, t.batch_first))


_register()


def _probe_stack(module: Any, args: tuple[Any, ...]) -> list[np.ndarray]:
    """The masks ``_VF.rnn_*``/``lstm``/``gru`` draws: one per layer boundary, on the
    time-major layer output (T, B, D * H_out), in layer order (as ``RNNBase._masks``)."""
    if module.dropout == 0 or module.num_layers < 2:
        return []
    x = args[0]
    steps, batch = (x.shape[0], 1) if x.dim() == 2 else (
        (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1]))
    width = (module.proj_size or module.hidden_size) * (2 if module.bidirectional else 1)
    like = torch.empty((steps, batch, width), dtype=x.dtype)
    with rewound_rng():
        return [next_dropout_mask(like, module.dropout) for _ in range(module.num_layers - 1)]


for _tcls in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
    register_mask_probe(_tcls, _probe_stack)
