"""Sequence-model scenarios of the built-in suites: recurrent layers, Embedding, RNNOutput.

The data are ``sequence`` (float, (n, seq_len, features)) and ``tokens`` (int64 token ids)
from ``refbp.parity.datagen``; models are ``batch_first`` so that the harness's batches (rows
of the data) are the batch dimension. ``RNNOutput`` picks what the loss sees: the last step,
every step or the final hidden state, so each family also exercises the gradient of ``h_n``
or of every output step.
"""

from __future__ import annotations

from typing import Any

from refbp.parity.scenario import DataSpec, Spec

SEQ = {"seq_len": 6}
STEPS = {"seq_len": 6, "target": "steps"}


def _rec(kind: str, hidden: int = 5, **kw: Any) -> Spec:
    return Spec(kind, {"input_size": 4, "hidden_size": hidden, "batch_first": True, **kw})


def _out(select: str) -> Spec:
    return Spec("RNNOutput", {"select": select, "batch_first": True})


def _seq(outputs: int, extra: dict[str, Any]) -> DataSpec:
    return DataSpec("sequence", n=6, features=4, outputs=outputs, extra=extra)


# (name, layers, loss, data, description): one op check per option family, both dtypes
OPS: list[tuple[str, list[Spec], Spec, DataSpec, str]] = [
    ("rnn-tanh", [_rec("RNN"), _out("all")], Spec("MSELoss"), _seq(5, STEPS),
     "RNN tanh, loss on every step"),
    ("rnn-relu-bidir", [_rec("RNN", nonlinearity="relu", num_layers=2, bidirectional=True),
                        _out("all")], Spec("MSELoss"), _seq(10, STEPS),
     "RNN relu, 2 layers, bidirectional, loss on every step"),
    ("lstm-hidden", [_rec("LSTM", num_layers=2), _out("hidden")], Spec("MSELoss"), _seq(5, SEQ),
     "LSTM 2 layers, loss on the final hidden state h_n"),
    ("lstm-proj-bidir", [_rec("LSTM", proj_size=3, bidirectional=True, bias=False),
                         _out("all")], Spec("MSELoss"), _seq(6, STEPS),
     "LSTM with projections, bidirectional, no bias, loss on every step"),
    ("gru-last", [_rec("GRU", num_layers=2, bidirectional=True), _out("last")],
     Spec("MSELoss"), _seq(10, SEQ), "GRU 2 layers, bidirectional, loss on the last step"),
    ("rnn-hidden", [_rec("RNN"), _out("hidden")], Spec("MSELoss"), _seq(5, SEQ),
     "RNN tanh, one layer, loss on the final hidden state h_n"),
    ("gru-hidden", [_rec("GRU"), _out("hidden")], Spec("MSELoss"), _seq(5, SEQ),
     "GRU, one layer, loss on the final hidden state h_n"),
    ("rnncell", [Spec("RNNCell", {"input_size": 5, "hidden_size": 3, "nonlinearity": "relu"})],
     Spec("MSELoss"), DataSpec("regression", n=8, features=5, outputs=3), "RNNCell relu"),
    ("grucell", [Spec("GRUCell", {"input_size": 5, "hidden_size": 3})], Spec("MSELoss"),
     DataSpec("regression", n=8, features=5, outputs=3), "GRUCell"),
    ("embedding", [Spec("Embedding", {"num_embeddings": 7, "embedding_dim": 3,
                                      "padding_idx": 0})], Spec("MSELoss"),
     DataSpec("tokens", n=6, features=7, outputs=3, extra=STEPS),
     "Embedding with padding_idx on integer tokens (no input gradient)"),
]

# (name, layers, loss, optimizer, data, description): trained a few steps, both dtypes
TRAINING: list[tuple[str, tuple[Spec, ...], Spec, Spec, DataSpec, str]] = [
    ("seq-lstm-clf-adam",
     (Spec("Embedding", {"num_embeddings": 10, "embedding_dim": 8}),
      Spec("LSTM", {"input_size": 8, "hidden_size": 12, "batch_first": True}), _out("last"),
      Spec("Linear", {"in_features": 12, "out_features": 3})),
     Spec("CrossEntropyLoss"), Spec("Adam", {"lr": 0.01}),
     DataSpec("tokens", n=32, features=10, outputs=3, extra={"seq_len": 8}),
     "token sequence classifier: Embedding > LSTM > last step > Linear, CE, Adam"),
    ("seq-gru-dropout-steps",
     (Spec("Embedding", {"num_embeddings": 10, "embedding_dim": 6, "padding_idx": 0}),
      Spec("GRU", {"input_size": 6, "hidden_size": 8, "num_layers": 2, "dropout": 0.3,
                   "batch_first": True}), _out("all"),
      Spec("Linear", {"in_features": 8, "out_features": 2})),
     Spec("MSELoss"), Spec("SGD", {"lr": 0.1, "momentum": 0.9}),
     DataSpec("tokens", n=32, features=10, outputs=2, extra={"seq_len": 6, "target": "steps"}),
     "per-step regression: Embedding > 2-layer GRU with dropout (torch's masks) > every step "
     "> Linear, MSE, SGD with momentum"),
]
