"""The exports of ``refbp.nn`` for type checkers, generated from the declarations
by ``python -m refbp.registry.docs`` (do not edit; ``__init__.py`` builds the same
names at run time)."""

from refbp.nn import init as init
from refbp.nn import utils as utils
from refbp.nn.activation import ELU as ELU
from refbp.nn.activation import GELU as GELU
from refbp.nn.activation import Hardtanh as Hardtanh
from refbp.nn.activation import LeakyReLU as LeakyReLU
from refbp.nn.activation import LogSoftmax as LogSoftmax
from refbp.nn.activation import PReLU as PReLU
from refbp.nn.activation import ReLU as ReLU
from refbp.nn.activation import Sigmoid as Sigmoid
from refbp.nn.activation import SiLU as SiLU
from refbp.nn.activation import Softmax as Softmax
from refbp.nn.activation import Softplus as Softplus
from refbp.nn.activation import Tanh as Tanh
from refbp.nn.adaptive_pooling import AdaptiveAvgPool1d as AdaptiveAvgPool1d
from refbp.nn.adaptive_pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from refbp.nn.adaptive_pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from refbp.nn.attention import MultiheadAttention as MultiheadAttention
from refbp.nn.attention_probe import AttentionProbe as AttentionProbe
from refbp.nn.attention_probe import SDPAProbe as SDPAProbe
from refbp.nn.batchnorm import BatchNorm1d as BatchNorm1d
from refbp.nn.batchnorm import BatchNorm2d as BatchNorm2d
from refbp.nn.container import Sequential as Sequential
from refbp.nn.conv import Conv1d as Conv1d
from refbp.nn.conv import Conv2d as Conv2d
from refbp.nn.conv import ConvTranspose1d as ConvTranspose1d
from refbp.nn.conv import ConvTranspose2d as ConvTranspose2d
from refbp.nn.dropout import Dropout as Dropout
from refbp.nn.dropout import Dropout2d as Dropout2d
from refbp.nn.embedding import Embedding as Embedding
from refbp.nn.layernorm import LayerNorm as LayerNorm
from refbp.nn.linear import Flatten as Flatten
from refbp.nn.linear import Identity as Identity
from refbp.nn.linear import Linear as Linear
from refbp.nn.loss import BCELoss as BCELoss
from refbp.nn.loss import BCEWithLogitsLoss as BCEWithLogitsLoss
from refbp.nn.loss import CrossEntropyLoss as CrossEntropyLoss
from refbp.nn.loss import HuberLoss as HuberLoss
from refbp.nn.loss import L1Loss as L1Loss
from refbp.nn.loss import Loss as Loss
from refbp.nn.loss import MSELoss as MSELoss
from refbp.nn.loss import NLLLoss as NLLLoss
from refbp.nn.loss import SmoothL1Loss as SmoothL1Loss
from refbp.nn.loss import SSELoss as SSELoss
from refbp.nn.module import Module as Module
from refbp.nn.module import Parameter as Parameter
from refbp.nn.normalization import GroupNorm as GroupNorm
from refbp.nn.normalization import InstanceNorm2d as InstanceNorm2d
from refbp.nn.pooling import AvgPool1d as AvgPool1d
from refbp.nn.pooling import AvgPool2d as AvgPool2d
from refbp.nn.pooling import MaxPool1d as MaxPool1d
from refbp.nn.pooling import MaxPool2d as MaxPool2d
from refbp.nn.rnn import GRU as GRU
from refbp.nn.rnn import LSTM as LSTM
from refbp.nn.rnn import RNN as RNN
from refbp.nn.rnn import RNNBase as RNNBase
from refbp.nn.rnn_cell import GRUCell as GRUCell
from refbp.nn.rnn_cell import LSTMCell as LSTMCell
from refbp.nn.rnn_cell import RNNCell as RNNCell
from refbp.nn.rnn_cell import RNNCellBase as RNNCellBase
from refbp.nn.sequence import RNNOutput as RNNOutput
from refbp.nn.transformer import TransformerEncoder as TransformerEncoder
from refbp.nn.transformer import TransformerEncoderLayer as TransformerEncoderLayer
from refbp.nn.unflatten import Unflatten as Unflatten

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AttentionProbe",
    "AvgPool1d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "ELU",
    "Embedding",
    "Flatten",
    "GELU",
    "GRU",
    "GRUCell",
    "GroupNorm",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "InstanceNorm2d",
    "L1Loss",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Loss",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "MultiheadAttention",
    "NLLLoss",
    "PReLU",
    "Parameter",
    "RNN",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "RNNOutput",
    "ReLU",
    "SDPAProbe",
    "SSELoss",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Unflatten",
    "init",
    "utils",
]
