"""Declarations of the activations (``refbp.nn.activation``, maths in ``refbp.nn.functional_act``).

Their op checks run on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4) through ``SSELoss``; the
unit and parity tests run every :class:`~refbp.registry.opinfo.Check` on seeded normals mixed
with the kinks, the Softplus switches and +-1e4.
"""

from __future__ import annotations

from refbp.registry import sizes
from refbp.registry.opinfo import Check, OpInfo, Sample

_CORE = "refbp.nn.functional_act"
_DIMS = tuple(Check({"dim": d}) for d in (None, 0, 1, -1))


def _act(name: str, fn: str, aten: tuple[str, ...], **kw: object) -> OpInfo:
    """An activation whose core is ``<fn>`` / ``<fn>_backward`` in the functional core and
    whose ``torch.nn.functional`` counterpart has the same name."""
    return OpInfo(name=name, kind="activation", forward=f"{_CORE}:{fn}",
                  backward=f"{_CORE}:{fn}_backward", functional=f"torch.nn.functional.{fn}",
                  aten=aten, **kw)  # type: ignore[arg-type]


ACTIVATIONS: tuple[OpInfo, ...] = (
    _act("ReLU", "relu", ("aten.relu.default",), args={"inplace": False},
         samples=(Sample("relu"),), checks=(Check(kinks=(0.0,)),), families=("ReLU",)),
    _act("LeakyReLU", "leaky_relu", ("aten.leaky_relu.default",),
         args={"negative_slope": 1e-2, "inplace": False},
         samples=(Sample("leakyrelu", {"negative_slope": 0.2}),),
         checks=(Check(kinks=(0.0,)), Check({"negative_slope": 0.2}, kinks=(0.0,)),
                 Check({"negative_slope": 0.1}, kinks=(0.0,)))),
    _act("ELU", "elu", ("aten.elu.default",), args={"alpha": 1.0, "inplace": False},
         samples=(Sample("elu", {"alpha": 1.5}),),
         checks=(Check(), Check({"alpha": 0.5}, kinks=(0.0,)), Check({"alpha": 2.0}, kinks=(0.0,)),
                 Check({"alpha": 0.7}, kinks=(0.0,)))),
    _act("GELU", "gelu", ("aten.gelu.default",), args={"approximate": "none"},
         samples=(Sample("gelu"), Sample("gelu-tanh", {"approximate": "tanh"})),
         checks=(Check(), Check({"approximate": "tanh"}))),
    _act("SiLU", "silu", ("aten.silu.default",), args={"inplace": False},
         samples=(Sample("silu"),)),
    _act("Sigmoid", "sigmoid", ("aten.sigmoid.default",), samples=(Sample("sigmoid"),),
         families=("Sigmoid",)),
    _act("Tanh", "tanh", ("aten.tanh.default",), samples=(Sample("tanh"),), families=("Tanh",)),
    # Softplus switches to x where beta * x > threshold: a jump of log1p(exp(-threshold))/beta.
    _act("Softplus", "softplus", ("aten.softplus.default",),
         args={"beta": 1.0, "threshold": 20.0},
         samples=(Sample("softplus"), Sample("softplus-beta2", {"beta": 2.0, "threshold": 10.0})),
         checks=(Check(kinks=(20.0,)), Check({"beta": 2.0, "threshold": 1.0}, kinks=(0.5,)),
                 Check({"beta": 0.5, "threshold": 5.0}, kinks=(10.0,)))),
    _act("Softmax", "softmax", ("aten.softmax.int", "aten._softmax.default"), args={"dim": None},
         samples=(Sample("softmax", {"dim": 1}),), checks=_DIMS, families=("Softmax",)),
    _act("LogSoftmax", "log_softmax", ("aten.log_softmax.int", "aten._log_softmax.default"),
         args={"dim": None}, samples=(Sample("logsoftmax", {"dim": 1}),), checks=_DIMS),
    # learnable slopes: the op check compares the gradient of ``weight`` too
    _act("PReLU", "prelu", ("aten.prelu.default", "aten._prelu_kernel.default"),
         args={"num_parameters": 1, "init": 0.25},
         samples=(Sample("prelu-channels", {"num_parameters": 6, "init": 0.1},
                         description="PReLU with one slope per feature (6) on extreme inputs "
                         "(0, +-1e-8, +-1, +-30, +-1e4)"),),
         checks=(Check(kinks=(0.0,)), Check({"init": -0.5}, kinks=(0.0,))), size=sizes.prelu),
    _act("Hardtanh", "hardtanh", ("aten.hardtanh.default",),
         args={"min_val": -1.0, "max_val": 1.0, "inplace": False},
         torch_only={"min_value": "deprecated in torch in favour of min_val",
                     "max_value": "deprecated in torch in favour of max_val"},
         samples=(Sample("hardtanh"),
                  Sample("hardtanh-range", {"min_val": -30.0, "max_val": 1e-8},
                         description="Hardtanh(-30, 1e-8): both kinks on extreme inputs (0, "
                         "+-1e-8, +-1, +-30, +-1e4)")),
         checks=(Check(kinks=(-1.0, 1.0)), Check({"min_val": -0.5, "max_val": 2.0},
                                                 kinks=(-0.5, 2.0)))),
)
