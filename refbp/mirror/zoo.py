"""Torch models written as people write them, which refbp checks through ``torch.export``.

- :class:`ResNet`: torchvision's ResNet layout (``BasicBlock``: conv3x3-BN-ReLU-conv3x3-BN,
  the identity or a strided 1x1 conv + BN downsample added, ReLU; stem conv-BN-ReLU-maxpool;
  global average pool; fully connected head), at any width and depth. torchvision itself is
  not needed: the layer names (``conv1``, ``bn1``, ``layer1.0.downsample.0``, ``fc``) follow it.
- :class:`GPT`: a small GPT written from scratch (token and position embeddings, pre-norm
  blocks of causal self-attention with a registered lower-triangular mask buffer and a GELU
  MLP, the output projection tied to the token embedding).
- :class:`LogitsOf`: the ``logits`` tensor of a Hugging Face ``transformers`` model (whose
  ``forward`` returns an output object), so the harness compares one tensor;
  :class:`OutputOf`: one chosen output (index or key), or the sum of all, of any model that
  returns several (``output=`` of ``refbp.testing.assert_parity`` and of a ``TorchModel``
  scenario).

Stock ``torch.nn`` only.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GPT", "BasicBlock", "LogitsOf", "OutputOf", "ResNet"]


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convolutions and a skip connection."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ``ResNet`` with ``BasicBlock`` (``layers=(2, 2, 2, 2)`` is ResNet-18's
    layout), ``width`` channels in the first stage, doubling per stage."""

    def __init__(self, layers: tuple[int, ...] = (1, 1), num_classes: int = 10,
                 width: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, blocks in enumerate(layers):
            setattr(self, f"layer{i + 1}", self._make_layer(width * 2 ** i, blocks,
                                                            1 if i == 0 else 2))
        self.n_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1), num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a registered lower-triangular mask buffer."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(c, dim=2)
        k = k.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        q = q.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        v = v.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask: torch.Tensor = self.bias  # type: ignore[assignment]
        att = att.masked_fill(mask[:, :, :t, :t] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A small GPT from scratch; ``forward(idx)`` returns logits (B, T, vocab_size). The
    output projection ``lm_head.weight`` is the token embedding ``wte.weight`` (tied)."""

    def __init__(self, vocab_size: int = 32, block_size: int = 8, n_layer: int = 2,
                 n_head: int = 2, n_embd: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(Block(n_embd, n_head, block_size, dropout)
                               for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class LogitsOf(nn.Module):
    """``model(input_ids).logits``: a ``transformers`` model as a function of one tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> Any:
        return self.model(input_ids=input_ids).logits


class OutputOf(nn.Module):
    """``model(x)[output]``: one output of a model that returns a tuple, a list, a dict
    (or a ``transformers`` output object); ``output="sum"`` adds all its floating-point output
    tensors elementwise (they must have one shape), so the loss sees their sum and each
    output's gradient is the loss's. The model's parameters are under ``model.``."""

    def __init__(self, model: nn.Module, output: Any) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, x: torch.Tensor) -> Any:
        out = self.model(x)
        if self.output != "sum":
            try:
                return out[self.output]
            except (KeyError, IndexError, TypeError) as exc:
                raise ValueError(f"output={self.output!r} does not name an output of "
                                 f"{type(self.model).__name__} (it returns "
                                 f"{type(out).__name__}): {exc}") from exc
        leaves = [t for t in torch.utils._pytree.tree_leaves(out)
                  if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not leaves or any(t.shape != leaves[0].shape for t in leaves[1:]):
            raise ValueError(f"output='sum' adds the outputs elementwise, but "
                             f"{type(self.model).__name__}'s have shapes "
                             f"{[tuple(t.shape) for t in leaves]}: choose one with "
                             "output=INDEX or KEY")
        total = leaves[0]
        for t in leaves[1:]:
            total = total + t
        return total
