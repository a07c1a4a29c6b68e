"""Op-check samples of the recurrent layers, their cells and Embedding (declared in
:mod:`refbp.registry.layers`).

The data are ``sequence`` (float, (n, seq_len, features)) and ``tokens`` (int64 token ids)
from ``refbp.parity.datagen``; models are ``batch_first`` so that the harness's batches (rows
of the data) are the batch dimension. ``RNNOutput`` picks what the loss sees: the last step,
every step or the final hidden state, so each family also exercises the gradient of ``h_n``
or of every output step.
"""

from __future__ import annotations

from typing import Any

from refbp.registry.opinfo import Data, Sample

SEQ = {"seq_len": 6}
STEPS = {"seq_len": 6, "target": "steps"}
_MSE: tuple[str, dict[str, Any]] = ("MSELoss", {})


def _rec(id: str, hidden: int, select: str, outputs: int, extra: dict[str, Any], text: str,
         **kw: Any) -> Sample:
    """A recurrent layer on (6, 6, 4) sequences, then ``RNNOutput(select)``, MSE loss."""
    return Sample(id, {"input_size": 4, "hidden_size": hidden, "batch_first": True, **kw},
                  Data("sequence", n=6, features=4, outputs=outputs, extra=extra),
                  after=(("RNNOutput", {"select": select, "batch_first": True}),), loss=_MSE,
                  description=text)


RNN = (
    _rec("rnn-tanh", 5, "all", 5, STEPS, "RNN tanh, loss on every step"),
    _rec("rnn-relu-bidir", 5, "all", 10, STEPS,
         "RNN relu, 2 layers, bidirectional, loss on every step", nonlinearity="relu",
         num_layers=2, bidirectional=True),
    _rec("rnn-hidden", 5, "hidden", 5, SEQ,
         "RNN tanh, one layer, loss on the final hidden state h_n"),
)
LSTM = (
    _rec("lstm-hidden", 5, "hidden", 5, SEQ, "LSTM 2 layers, loss on the final hidden state h_n",
         num_layers=2),
    _rec("lstm-proj-bidir", 5, "all", 6, STEPS,
         "LSTM with projections, bidirectional, no bias, loss on every step", proj_size=3,
         bidirectional=True, bias=False),
)
GRU = (
    _rec("gru-last", 5, "last", 10, SEQ, "GRU 2 layers, bidirectional, loss on the last step",
         num_layers=2, bidirectional=True),
    _rec("gru-hidden", 5, "hidden", 5, SEQ,
         "GRU, one layer, loss on the final hidden state h_n"),
)
_CELL_DATA = Data("regression", n=8, features=5, outputs=3)
RNN_CELL = (Sample("rnncell", {"input_size": 5, "hidden_size": 3, "nonlinearity": "relu"},
                   _CELL_DATA, loss=_MSE, description="RNNCell relu"),)
GRU_CELL = (Sample("grucell", {"input_size": 5, "hidden_size": 3}, _CELL_DATA, loss=_MSE,
                   description="GRUCell"),)
EMBEDDING = (Sample("embedding", {"num_embeddings": 7, "embedding_dim": 3, "padding_idx": 0},
                    Data("tokens", n=6, features=7, outputs=3, extra=STEPS), loss=_MSE,
                    description="Embedding with padding_idx on integer tokens (no input "
                    "gradient)"),)
