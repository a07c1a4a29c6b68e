"""Torch models written as people write them, which refbp checks through ``torch.export``.

- :class:`ResNet`: torchvision's ResNet layout (``BasicBlock``: conv3x3-BN-ReLU-conv3x3-BN,
  the identity or a strided 1x1 conv + BN downsample added, ReLU; stem conv-BN-ReLU-maxpool;
  global average pool; fully connected head), at any width and depth. torchvision itself is
  not needed: the layer names (``conv1``, ``bn1``, ``layer1.0.downsample.0``, ``fc``) follow it.
- :class:`GPT`: a small GPT written from scratch (token and position embeddings, pre-norm
  blocks of causal self-attention with a registered lower-triangular mask buffer and a GELU
  MLP, the output projection tied to the token embedding).
- :class:`UNet`: a small U-Net (Ronneberger et al., 2015) written as people write it: on the
  down path, stages of two 3x3 convolutions each behind a padding layer (reflection,
  replication or zeros), with ReLU and BatchNorm, then 2x2 max pooling; on the up path, a
  transposed convolution (or an ``nn.Upsample`` and a 1x1 convolution), the skip connection
  of the same resolution concatenated along the channels, and a stage of two convolutions;
  a 1x1 convolution head (one output map per class).
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

__all__ = ["GPT", "BasicBlock", "DoubleConv", "LogitsOf", "OutputOf", "ResNet", "UNet"]


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


_PADS: dict[str, type[nn.Module]] = {"reflect": nn.ReflectionPad2d,
                                     "replicate": nn.ReplicationPad2d, "zeros": nn.ZeroPad2d}


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each behind a 1-pixel padding layer (``padding``: ``reflect``,
    ``replicate`` or ``zeros``): pad-conv-ReLU-pad-conv-BN-ReLU; the size is kept. The
    convolution before BatchNorm has no bias, which BatchNorm would subtract again (its
    gradient would be exactly 0)."""

    def __init__(self, in_channels: int, out_channels: int, padding: str = "reflect") -> None:
        super().__init__()
        if padding not in _PADS:
            raise ValueError(f"padding must be one of {', '.join(_PADS)}, got {padding!r}")
        pad = _PADS[padding]
        self.block = nn.Sequential(pad(1), nn.Conv2d(in_channels, out_channels, 3),
                                   nn.ReLU(inplace=True), pad(1),
                                   nn.Conv2d(out_channels, out_channels, 3, bias=False),
                                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNet(nn.Module):
    """A U-Net of ``depth`` down stages (``width`` channels, doubling per stage) and a
    bottleneck stage; ``up="transpose"`` upsamples with a 2x2 stride-2 transposed
    convolution, ``"nearest"`` or ``"bilinear"`` with ``nn.Upsample(scale_factor=2)`` and a
    1x1 convolution. Height and width must be multiples of ``2 ** depth``."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 4,
                 depth: int = 2, up: str = "transpose", padding: str = "reflect") -> None:
        super().__init__()
        if up not in ("transpose", "nearest", "bilinear"):
            raise ValueError(f"up must be 'transpose', 'nearest' or 'bilinear', got {up!r}")
        channels = [width * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList(DoubleConv(c_in, c, padding) for c_in, c in
                                  zip([in_channels, *channels[:-1]], channels, strict=True))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(channels[-1], 2 * channels[-1], padding)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        below = 2 * channels[-1]
        for c in reversed(channels):
            self.up.append(nn.ConvTranspose2d(below, c, 2, stride=2) if up == "transpose"
                           else nn.Sequential(nn.Upsample(scale_factor=2, mode=up),
                                              nn.Conv2d(below, c, 1)))
            self.merge.append(DoubleConv(2 * c, c, padding))
            below = c
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


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
