"""Sequence-model training scenarios of the built-in suites: Embedding, recurrent layers and
RNNOutput trained a few steps (their op checks are the samples declared in ``refbp.registry``,
``samples_sequence``).

The data are ``tokens`` (int64 token ids) from ``refbp.parity.datagen``; models are
``batch_first`` so that the harness's batches (rows of the data) are the batch dimension.
``RNNOutput`` picks what the loss sees: the last step or every step.
"""

from __future__ import annotations

from refbp.parity.scenario import DataSpec, Spec


def _out(select: str) -> Spec:
    return Spec("RNNOutput", {"select": select, "batch_first": True})


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
