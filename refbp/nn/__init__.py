"""NumPy layers and losses with torch's names, arguments, defaults and layouts (no torch)."""

from __future__ import annotations

from refbp.nn import init, utils
from refbp.nn.activation import (
    ELU,
    GELU,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from refbp.nn.activation_hard import (
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    ReLU6,
    RReLU,
    Softshrink,
    Threshold,
)
from refbp.nn.activation_smooth import (
    CELU,
    GLU,
    SELU,
    LogSigmoid,
    Mish,
    Softmax2d,
    Softmin,
    Softsign,
    Tanhshrink,
)
from refbp.nn.adaptive_pooling import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d
from refbp.nn.attention import MultiheadAttention
from refbp.nn.attention_probe import AttentionProbe, SDPAProbe
from refbp.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from refbp.nn.container import Sequential
from refbp.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from refbp.nn.dropout import Dropout, Dropout2d
from refbp.nn.embedding import Embedding
from refbp.nn.fold import Fold, Unfold
from refbp.nn.layernorm import LayerNorm
from refbp.nn.linear import Flatten, Identity, Linear
from refbp.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    SSELoss,
)
from refbp.nn.loss_likelihood import KLDivLoss, PoissonNLLLoss
from refbp.nn.loss_margin import (
    HingeEmbeddingLoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
)
from refbp.nn.module import Module, Parameter
from refbp.nn.norm_extra import LocalResponseNorm, RMSNorm
from refbp.nn.normalization import GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from refbp.nn.padding import (
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)
from refbp.nn.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from refbp.nn.rnn import GRU, LSTM, RNN, RNNBase
from refbp.nn.rnn_cell import GRUCell, LSTMCell, RNNCell, RNNCellBase
from refbp.nn.sequence import RNNOutput
from refbp.nn.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from refbp.nn.transformer import TransformerEncoder, TransformerEncoderLayer
from refbp.nn.unflatten import Unflatten
from refbp.nn.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d",
    "MaxPool1d", "MaxPool2d", "Unflatten", "BatchNorm2d", "GroupNorm", "InstanceNorm2d",
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "Conv1d", "Conv2d", "ConvTranspose1d",
    "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU", "Embedding", "Flatten",
    "GELU", "GRU", "GRUCell", "Hardtanh", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell",
    "RNNCellBase", "RNNOutput", "PReLU",
    "HuberLoss", "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "Loss", "MSELoss",
    "Module",
    "AttentionProbe", "LayerNorm", "MultiheadAttention", "SDPAProbe", "TransformerEncoder",
    "TransformerEncoderLayer",
    "NLLLoss", "Parameter", "ReLU", "SSELoss", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss",
    "Softmax", "Softplus", "Tanh", "init", "utils",
    "CELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "LogSigmoid", "Mish", "ReLU6",
    "RReLU", "SELU", "Softmax2d", "Softmin", "Softshrink", "Softsign", "Tanhshrink",
    "Threshold",
    "HingeEmbeddingLoss", "KLDivLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
    "MultiMarginLoss", "PoissonNLLLoss", "SoftMarginLoss",
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
    "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d",
    "ZeroPad3d", "ChannelShuffle", "PixelShuffle", "PixelUnshuffle", "Upsample",
    "UpsamplingBilinear2d", "UpsamplingNearest2d", "Fold", "Unfold", "BatchNorm3d",
    "InstanceNorm1d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm",
]
