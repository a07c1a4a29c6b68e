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
from refbp.nn.activation_hard import Hardshrink as Hardshrink
from refbp.nn.activation_hard import Hardsigmoid as Hardsigmoid
from refbp.nn.activation_hard import Hardswish as Hardswish
from refbp.nn.activation_hard import ReLU6 as ReLU6
from refbp.nn.activation_hard import RReLU as RReLU
from refbp.nn.activation_hard import Softshrink as Softshrink
from refbp.nn.activation_hard import Threshold as Threshold
from refbp.nn.activation_smooth import CELU as CELU
from refbp.nn.activation_smooth import GLU as GLU
from refbp.nn.activation_smooth import SELU as SELU
from refbp.nn.activation_smooth import LogSigmoid as LogSigmoid
from refbp.nn.activation_smooth import Mish as Mish
from refbp.nn.activation_smooth import Softmax2d as Softmax2d
from refbp.nn.activation_smooth import Softmin as Softmin
from refbp.nn.activation_smooth import Softsign as Softsign
from refbp.nn.activation_smooth import Tanhshrink as Tanhshrink
from refbp.nn.adaptive_pooling import AdaptiveAvgPool1d as AdaptiveAvgPool1d
from refbp.nn.adaptive_pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from refbp.nn.adaptive_pooling import AdaptiveAvgPool3d as AdaptiveAvgPool3d
from refbp.nn.adaptive_pooling import AdaptiveMaxPool1d as AdaptiveMaxPool1d
from refbp.nn.adaptive_pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from refbp.nn.adaptive_pooling import AdaptiveMaxPool3d as AdaptiveMaxPool3d
from refbp.nn.attention import MultiheadAttention as MultiheadAttention
from refbp.nn.attention_probe import AttentionProbe as AttentionProbe
from refbp.nn.attention_probe import SDPAProbe as SDPAProbe
from refbp.nn.batchnorm import BatchNorm1d as BatchNorm1d
from refbp.nn.batchnorm import BatchNorm2d as BatchNorm2d
from refbp.nn.batchnorm import BatchNorm3d as BatchNorm3d
from refbp.nn.batchnorm import SyncBatchNorm as SyncBatchNorm
from refbp.nn.bilinear import Bilinear as Bilinear
from refbp.nn.container import ModuleDict as ModuleDict
from refbp.nn.container import ModuleList as ModuleList
from refbp.nn.container import ParameterDict as ParameterDict
from refbp.nn.container import ParameterList as ParameterList
from refbp.nn.container import Sequential as Sequential
from refbp.nn.conv import Conv1d as Conv1d
from refbp.nn.conv import Conv2d as Conv2d
from refbp.nn.conv import Conv3d as Conv3d
from refbp.nn.conv import ConvTranspose1d as ConvTranspose1d
from refbp.nn.conv import ConvTranspose2d as ConvTranspose2d
from refbp.nn.conv import ConvTranspose3d as ConvTranspose3d
from refbp.nn.cross_map_lrn import CrossMapLRN2d as CrossMapLRN2d
from refbp.nn.distance import CosineSimilarity as CosineSimilarity
from refbp.nn.distance import PairwiseDistance as PairwiseDistance
from refbp.nn.dropout import Dropout as Dropout
from refbp.nn.dropout import Dropout1d as Dropout1d
from refbp.nn.dropout import Dropout2d as Dropout2d
from refbp.nn.dropout import Dropout3d as Dropout3d
from refbp.nn.dropout_alpha import AlphaDropout as AlphaDropout
from refbp.nn.dropout_alpha import FeatureAlphaDropout as FeatureAlphaDropout
from refbp.nn.embedding import Embedding as Embedding
from refbp.nn.embedding_bag import EmbeddingBag as EmbeddingBag
from refbp.nn.fold import Fold as Fold
from refbp.nn.fold import Unfold as Unfold
from refbp.nn.fractional_pool import FractionalMaxPool2d as FractionalMaxPool2d
from refbp.nn.fractional_pool import FractionalMaxPool3d as FractionalMaxPool3d
from refbp.nn.layernorm import LayerNorm as LayerNorm
from refbp.nn.lazy import LazyBatchNorm1d as LazyBatchNorm1d
from refbp.nn.lazy import LazyBatchNorm2d as LazyBatchNorm2d
from refbp.nn.lazy import LazyBatchNorm3d as LazyBatchNorm3d
from refbp.nn.lazy import LazyConv1d as LazyConv1d
from refbp.nn.lazy import LazyConv2d as LazyConv2d
from refbp.nn.lazy import LazyConv3d as LazyConv3d
from refbp.nn.lazy import LazyConvTranspose1d as LazyConvTranspose1d
from refbp.nn.lazy import LazyConvTranspose2d as LazyConvTranspose2d
from refbp.nn.lazy import LazyConvTranspose3d as LazyConvTranspose3d
from refbp.nn.lazy import LazyInstanceNorm1d as LazyInstanceNorm1d
from refbp.nn.lazy import LazyInstanceNorm2d as LazyInstanceNorm2d
from refbp.nn.lazy import LazyInstanceNorm3d as LazyInstanceNorm3d
from refbp.nn.lazy import LazyLinear as LazyLinear
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
from refbp.nn.loss_adaptive import AdaptiveLogSoftmaxWithLoss as AdaptiveLogSoftmaxWithLoss
from refbp.nn.loss_ctc import CTCLoss as CTCLoss
from refbp.nn.loss_embedding import CosineEmbeddingLoss as CosineEmbeddingLoss
from refbp.nn.loss_embedding import MarginRankingLoss as MarginRankingLoss
from refbp.nn.loss_embedding import TripletMarginLoss as TripletMarginLoss
from refbp.nn.loss_embedding import TripletMarginWithDistanceLoss as TripletMarginWithDistanceLoss
from refbp.nn.loss_likelihood import GaussianNLLLoss as GaussianNLLLoss
from refbp.nn.loss_likelihood import KLDivLoss as KLDivLoss
from refbp.nn.loss_likelihood import PoissonNLLLoss as PoissonNLLLoss
from refbp.nn.loss_linear import LinearCrossEntropyLoss as LinearCrossEntropyLoss
from refbp.nn.loss_margin import HingeEmbeddingLoss as HingeEmbeddingLoss
from refbp.nn.loss_margin import MultiLabelMarginLoss as MultiLabelMarginLoss
from refbp.nn.loss_margin import MultiLabelSoftMarginLoss as MultiLabelSoftMarginLoss
from refbp.nn.loss_margin import MultiMarginLoss as MultiMarginLoss
from refbp.nn.loss_margin import SoftMarginLoss as SoftMarginLoss
from refbp.nn.lp_pool import LPPool1d as LPPool1d
from refbp.nn.lp_pool import LPPool2d as LPPool2d
from refbp.nn.lp_pool import LPPool3d as LPPool3d
from refbp.nn.module import Module as Module
from refbp.nn.module import Parameter as Parameter
from refbp.nn.norm_extra import LocalResponseNorm as LocalResponseNorm
from refbp.nn.norm_extra import RMSNorm as RMSNorm
from refbp.nn.normalization import GroupNorm as GroupNorm
from refbp.nn.normalization import InstanceNorm1d as InstanceNorm1d
from refbp.nn.normalization import InstanceNorm2d as InstanceNorm2d
from refbp.nn.normalization import InstanceNorm3d as InstanceNorm3d
from refbp.nn.padding import CircularPad1d as CircularPad1d
from refbp.nn.padding import CircularPad2d as CircularPad2d
from refbp.nn.padding import CircularPad3d as CircularPad3d
from refbp.nn.padding import ConstantPad1d as ConstantPad1d
from refbp.nn.padding import ConstantPad2d as ConstantPad2d
from refbp.nn.padding import ConstantPad3d as ConstantPad3d
from refbp.nn.padding import ReflectionPad1d as ReflectionPad1d
from refbp.nn.padding import ReflectionPad2d as ReflectionPad2d
from refbp.nn.padding import ReflectionPad3d as ReflectionPad3d
from refbp.nn.padding import ReplicationPad1d as ReplicationPad1d
from refbp.nn.padding import ReplicationPad2d as ReplicationPad2d
from refbp.nn.padding import ReplicationPad3d as ReplicationPad3d
from refbp.nn.padding import ZeroPad1d as ZeroPad1d
from refbp.nn.padding import ZeroPad2d as ZeroPad2d
from refbp.nn.padding import ZeroPad3d as ZeroPad3d
from refbp.nn.pair_probe import PairProbe as PairProbe
from refbp.nn.pooling import AvgPool1d as AvgPool1d
from refbp.nn.pooling import AvgPool2d as AvgPool2d
from refbp.nn.pooling import AvgPool3d as AvgPool3d
from refbp.nn.pooling import MaxPool1d as MaxPool1d
from refbp.nn.pooling import MaxPool2d as MaxPool2d
from refbp.nn.pooling import MaxPool3d as MaxPool3d
from refbp.nn.rnn import GRU as GRU
from refbp.nn.rnn import LSTM as LSTM
from refbp.nn.rnn import RNN as RNN
from refbp.nn.rnn import RNNBase as RNNBase
from refbp.nn.rnn_cell import GRUCell as GRUCell
from refbp.nn.rnn_cell import LSTMCell as LSTMCell
from refbp.nn.rnn_cell import RNNCell as RNNCell
from refbp.nn.rnn_cell import RNNCellBase as RNNCellBase
from refbp.nn.sequence import RNNOutput as RNNOutput
from refbp.nn.shuffle import ChannelShuffle as ChannelShuffle
from refbp.nn.shuffle import PixelShuffle as PixelShuffle
from refbp.nn.shuffle import PixelUnshuffle as PixelUnshuffle
from refbp.nn.transformer import TransformerEncoder as TransformerEncoder
from refbp.nn.transformer import TransformerEncoderLayer as TransformerEncoderLayer
from refbp.nn.transformer_decoder import Transformer as Transformer
from refbp.nn.transformer_decoder import TransformerDecoder as TransformerDecoder
from refbp.nn.transformer_decoder import TransformerDecoderLayer as TransformerDecoderLayer
from refbp.nn.unflatten import Unflatten as Unflatten
from refbp.nn.unpool import MaxUnpool1d as MaxUnpool1d
from refbp.nn.unpool import MaxUnpool2d as MaxUnpool2d
from refbp.nn.unpool import MaxUnpool3d as MaxUnpool3d
from refbp.nn.upsample import Upsample as Upsample
from refbp.nn.upsample import UpsamplingBilinear2d as UpsamplingBilinear2d
from refbp.nn.upsample import UpsamplingNearest2d as UpsamplingNearest2d

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveLogSoftmaxWithLoss",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AlphaDropout",
    "AttentionProbe",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Bilinear",
    "CELU",
    "CTCLoss",
    "ChannelShuffle",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "CosineEmbeddingLoss",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "CrossMapLRN2d",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "ELU",
    "Embedding",
    "EmbeddingBag",
    "FeatureAlphaDropout",
    "Flatten",
    "Fold",
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
    "GELU",
    "GLU",
    "GRU",
    "GRUCell",
    "GaussianNLLLoss",
    "GroupNorm",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "Identity",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "KLDivLoss",
    "L1Loss",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "LazyLinear",
    "LeakyReLU",
    "Linear",
    "LinearCrossEntropyLoss",
    "LocalResponseNorm",
    "LogSigmoid",
    "LogSoftmax",
    "Loss",
    "MSELoss",
    "MarginRankingLoss",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "MultiheadAttention",
    "NLLLoss",
    "PReLU",
    "PairProbe",
    "PairwiseDistance",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "PixelShuffle",
    "PixelUnshuffle",
    "PoissonNLLLoss",
    "RMSNorm",
    "RNN",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "RNNOutput",
    "RReLU",
    "ReLU",
    "ReLU6",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "SDPAProbe",
    "SELU",
    "SSELoss",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "SyncBatchNorm",
    "Tanh",
    "Tanhshrink",
    "Threshold",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "Unflatten",
    "Unfold",
    "Upsample",
    "UpsamplingBilinear2d",
    "UpsamplingNearest2d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "init",
    "utils",
]
