"""Graph-model scenarios of the built-in suites: torch models mirrored through ``torch.export``.

Each is a ``TorchModel`` scenario (``refbp.parity.scenario``): the model is built by a
function of ``refbp.mirror.zoo`` from the scenario seed and captured as refbp's graph model
with a symbolic batch dimension, so the short last mini-batch runs through the same graph.

- a torchvision-layout ResNet at tiny size (one ``BasicBlock`` with its skip connection, in
  place ``+=`` and ReLU, BatchNorm running statistics) on 1-channel 8x8 images, AdamW;
- the from-scratch GPT at tiny size (tied embedding and output weights, a registered causal
  mask buffer, integer token inputs, ``nn.Dropout`` with torch's masks), SGD with momentum:
  the key part of ``c_attn.bias`` has an exactly zero gradient whose rounding residue AdamW
  would turn into steps of about ``lr`` (``parity_tests/test_graph_parity.py``);
- a small U-Net (two down stages of padded 3x3 convolutions with reflection padding,
  BatchNorm and max pooling, a bottleneck, two up stages of 2x2 stride-2 transposed
  convolutions with the skip connections concatenated) on 1-channel 8x8 maps, regressing 2
  output maps with MSELoss, SGD with momentum (a bias whose gradient is a rounding residue of
  zero at this size would make Adam steps of about lr): 6 samples in batches of 4 and 2.
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
UNET = Spec(TORCH_MODEL, {"factory": "refbp.mirror.zoo:UNet", "in_channels": 1,
                          "num_classes": 2, "width": 2, "depth": 2, "up": "transpose",
                          "padding": "reflect"})
UNET_DATA = DataSpec("tensors", n=6, features=1, outputs=2,
                     extra={"size": [8, 8], "target_shape": [2, 8, 8]})
GPT_DATA = DataSpec("tokens", n=12, features=16, outputs=16,
                    extra={"seq_len": 8, "target": "steps"})


def graph_scenarios(dtype: str) -> list[Scenario]:
    """The graph models of the quick suite in ``dtype`` (ResNet and GPT: 3 steps of 8, 4 and 8
    samples; U-Net: 2 steps of 4 and 2)."""
    return [
        train("graph-resnet-adamw", (RESNET,), Spec("CrossEntropyLoss"),
              Spec("AdamW", {"lr": 0.01}), RESNET_DATA, dtype, steps=3,
              description="tiny torchvision-layout ResNet through torch.export: conv, "
              "BatchNorm, skip connection with in-place add, max and adaptive pooling"),
        train("graph-gpt-sgd", (GPT,), Spec("MSELoss"),
              Spec("SGD", {"lr": 0.05, "momentum": 0.9}), GPT_DATA, dtype, steps=3,
              description="tiny from-scratch GPT through torch.export: tied weights, causal "
              "mask buffer, attention from matmul and softmax, dropout with torch's masks"),
        train("graph-unet-sgd", (UNET,), Spec("MSELoss"),
              Spec("SGD", {"lr": 0.05, "momentum": 0.9}), UNET_DATA, dtype, steps=2, batch_size=4,
              description="small U-Net through torch.export: reflection padding, conv, "
              "BatchNorm, max pooling, transposed convolutions, skip connections by "
              "concatenation"),
    ]
