"""NumPy optimizers with ``torch.optim`` semantics (no torch).

Same class names, constructor arguments, defaults, validation messages, ``param_groups``,
``state`` keys, ``zero_grad``, ``step(closure)`` and state dicts as ``torch.optim``; each update
follows torch's single-tensor (``foreach=False``) code path operation by operation. torch's
implementation switches are accepted as keywords where torch's class takes them:
``foreach``/``fused`` with any value (the same update rule), ``capturable``/``differentiable``
only false (``True`` raises ``ValueError`` with the reason); the param groups hold them as
torch's do (torch's defaults when not given). Each
optimizer is declared in :mod:`refbp.registry.optimizers`; the table below is its
``docs_table()`` (a test keeps them equal).

==============  ==========================================================================
class           update rule (see the class docstring for the algorithm box)
==============  ==========================================================================
``SGD``         gradient descent with optional (Nesterov) momentum, dampening, weight decay
``Adam``        adaptive moments, optional AMSGrad and decoupled weight decay
``AdamW``       Adam with decoupled weight decay (default weight_decay=1e-2)
``RMSprop``     running RMS of gradients, optional momentum and centering
``Adagrad``     accumulated squared gradients, optional lr decay
``Adadelta``    ratio of running RMS of updates and gradients
``Adamax``      Adam with the infinity norm
``NAdam``       Adam with Nesterov momentum (and momentum decay)
``RAdam``       rectified Adam
``Rprop``       resilient backpropagation: per-element step sizes, gradient signs only
``ASGD``        averaged SGD: decaying step size, mean of the iterates from step t0
``Adafactor``   factored second moments, relative step size, update clipping
``Muon``        momentum orthogonalised by Newton-Schulz (bfloat16), 2-D parameters only
``LBFGS``       limited-memory BFGS (two-loop recursion), optional strong-Wolfe line search
``SparseAdam``  Adam on the rows a sparse gradient touches (Embedding(sparse=True))
==============  ==========================================================================

Learning-rate schedulers are in ``refbp.optim.lr_scheduler``, weight averaging (SWA, EMA,
``SWALR``, ``update_bn``) in ``refbp.optim.swa_utils``, as in torch.

Scalar state (``step``, NAdam's ``mu_product``) follows torch's default dtype rule:
``refbp.optim.set_default_dtype`` / ``default_dtype`` mirror ``torch.set_default_dtype``.
"""

from __future__ import annotations

from refbp.optim import lr_scheduler, swa_utils
from refbp.optim.adadelta import Adadelta
from refbp.optim.adafactor import Adafactor
from refbp.optim.adagrad import Adagrad
from refbp.optim.adam import Adam, AdamW
from refbp.optim.adamax import Adamax
from refbp.optim.asgd import ASGD
from refbp.optim.default_dtype import default_dtype, get_default_dtype, set_default_dtype
from refbp.optim.lbfgs import LBFGS
from refbp.optim.muon import Muon
from refbp.optim.nadam import NAdam
from refbp.optim.optimizer import Optimizer
from refbp.optim.radam import RAdam
from refbp.optim.rmsprop import RMSprop
from refbp.optim.rprop import Rprop
from refbp.optim.sgd import SGD
from refbp.optim.sparse_adam import SparseAdam

__all__ = [
    "ASGD", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "Muon",
    "NAdam", "Optimizer", "RAdam", "RMSprop", "Rprop", "SparseAdam", "default_dtype",
    "get_default_dtype", "lr_scheduler", "set_default_dtype", "swa_utils",
]
