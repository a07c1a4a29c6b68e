"""The exports of ``refbp.optim`` for type checkers, generated from the declarations
by ``python -m refbp.registry.docs`` (do not edit; ``__init__.py`` builds the same
names at run time)."""

from refbp.optim import lr_scheduler as lr_scheduler
from refbp.optim import swa_utils as swa_utils
from refbp.optim.adadelta import Adadelta as Adadelta
from refbp.optim.adafactor import Adafactor as Adafactor
from refbp.optim.adagrad import Adagrad as Adagrad
from refbp.optim.adam import Adam as Adam
from refbp.optim.adam import AdamW as AdamW
from refbp.optim.adamax import Adamax as Adamax
from refbp.optim.asgd import ASGD as ASGD
from refbp.optim.default_dtype import default_dtype as default_dtype
from refbp.optim.default_dtype import get_default_dtype as get_default_dtype
from refbp.optim.default_dtype import set_default_dtype as set_default_dtype
from refbp.optim.lbfgs import LBFGS as LBFGS
from refbp.optim.muon import Muon as Muon
from refbp.optim.nadam import NAdam as NAdam
from refbp.optim.optimizer import Optimizer as Optimizer
from refbp.optim.radam import RAdam as RAdam
from refbp.optim.rmsprop import RMSprop as RMSprop
from refbp.optim.rprop import Rprop as Rprop
from refbp.optim.sgd import SGD as SGD
from refbp.optim.sparse_adam import SparseAdam as SparseAdam

__all__ = [
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LBFGS",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "SparseAdam",
    "default_dtype",
    "get_default_dtype",
    "lr_scheduler",
    "set_default_dtype",
    "swa_utils",
]
