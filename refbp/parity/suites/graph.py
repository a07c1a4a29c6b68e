"""Graph-model scenarios of the built-in suites: torch models mirrored through ``torch.export``.

Each is a ``TorchModel`` scenario (``refbp.parity.scenario``): the model is built by a
function of ``refbp.mirror.zoo`` from the scenario seed and captured as refbp's graph model
with a symbolic batch dimension, so the short last mini-batch runs through the same graph.

- a torchvision-layout ResNet at tiny size (one ``BasicBlock`` with its skip connection, in
  place ``+=`` and ReLU, BatchNorm running statistics) on 1-channel 8x8 images, AdamW;
- the from-scratch GPT at tiny size (tied embedding and output weights, a registered causal
  mask buffer, integer token inputs, ``nn.Dropout`` with torch's masks), SGD with momentum:
  the key part of ``c_attn.bias`` has an exactly zero gradient whose rounding residue AdamW
  would turn into steps of about ``lr`` (``parity_tests/test_graph_parity.py``).
"""

from __future__ import annotations

from refbp.parity.scenario import TORCH_MODEL, DataSpec, Scenario, Spec
from refbp.parity.suites.common import train

RESNET = Spec(TORCH_MODEL, {"factory": "refbp.mirror.zoo:ResNet", "layers": [1],
                            "num_classes": 3, "width": 4, "in_channels": 1})
RESNET_DATA = DataSpec("images", n=12, features=1, outputs=3,
                       extra={"height": 8, "width": 8})
GPT = Spec(TORCH_MODEL, {"factory": "refbp.mirror.zoo:GPT", "vocab_size": 16, "block_size": 8,
                         "n_layer": 1, "n_head": 2, "n_embd": 8, "dropout": 0.1})
GPT_DATA = DataSpec("tokens", n=12, features=16, outputs=16,
                    extra={"seq_len": 8, "target": "steps"})


def graph_scenarios(dtype: str) -> list[Scenario]:
    """The graph models of the quick suite in ``dtype`` (3 steps of 8, 4 and 8 samples)."""
    return [
        train("graph-resnet-adamw", (RESNET,), Spec("CrossEntropyLoss"),
              Spec("AdamW", {"lr": 0.01}), RESNET_DATA, dtype, steps=3,
              description="tiny torchvision-layout ResNet through torch.export: conv, "
              "BatchNorm, skip connection with in-place add, max and adaptive pooling"),
        train("graph-gpt-sgd", (GPT,), Spec("MSELoss"),
              Spec("SGD", {"lr": 0.05, "momentum": 0.9}), GPT_DATA, dtype, steps=3,
              description="tiny from-scratch GPT through torch.export: tied weights, causal "
              "mask buffer, attention from matmul and softmax, dropout with torch's masks"),
    ]
