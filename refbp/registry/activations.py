"""Declarations of the activations (``refbp.nn.activation``, maths in ``refbp.nn.functional_act``).

Their op checks run on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4) through ``SSELoss``; the
unit and parity tests run every :class:`~refbp.registry.opinfo.Check` on seeded normals mixed
with the kinks, the Softplus switches and +-1e4.
"""

from __future__ import annotations

from refbp.registry import shapes, sizes
from refbp.registry.opinfo import REQUIRED, Check, Data, OpInfo, Sample

_CORE = "refbp.nn.functional_act"
_HARD = "refbp.nn.functional_act_hard"
_SMOOTH = "refbp.nn.functional_act_smooth"
_DIMS = tuple(Check({"dim": d}) for d in (None, 0, 1, -1))
_COMPOSED = ("torch declares (*args, **kwargs) for a module without arguments; the refbp "
             "class takes none")


def _act(name: str, fn: str, aten: tuple[str, ...], core: str = _CORE,
         functional: str | None = None, **kw: object) -> OpInfo:
    """An activation whose core is ``<fn>`` / ``<fn>_backward`` in the functional core and
    whose ``torch.nn.functional`` counterpart has the same name (or ``functional``)."""
    module = {_HARD: "refbp.nn.activation_hard", _SMOOTH: "refbp.nn.activation_smooth"}.get(
        core, "")
    return OpInfo(name=name, kind="activation", forward=f"{core}:{fn}",
                  backward=f"{core}:{fn}_backward", module=module,
                  functional=f"torch.nn.functional.{functional or fn}",
                  aten=aten, **kw)  # type: ignore[arg-type]


def _extreme(op: str, note: str) -> str:
    """The description of an op check on extreme inputs, ``op`` with its options."""
    return f"{op} on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4): {note}"


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
    # -- piecewise (refbp.nn.functional_act_hard) --------------------------------------
    _act("ReLU6", "relu6", ("aten.relu6.default",), _HARD,
         args={"inplace": False}, samples=(Sample("relu6"),), checks=(Check(kinks=(0.0, 6.0)),)),
    _act("Hardswish", "hardswish", ("aten.hardswish.default",), _HARD,
         args={"inplace": False}, samples=(Sample("hardswish"),),
         checks=(Check(kinks=(-3.0, 3.0)),)),
    _act("Hardsigmoid", "hardsigmoid", ("aten.hardsigmoid.default",), _HARD,
         args={"inplace": False}, samples=(Sample("hardsigmoid"),),
         checks=(Check(kinks=(-3.0, 3.0)),)),
    _act("Hardshrink", "hardshrink", ("aten.hardshrink.default",), _HARD,
         args={"lambd": 0.5},
         samples=(Sample("hardshrink", {"lambd": 1.0},
                         description=_extreme("Hardshrink(1)", "kinks at +-1")),),
         checks=(Check(kinks=(-0.5, 0.5)), Check({"lambd": 2.0}, kinks=(-2.0, 2.0)))),
    _act("Softshrink", "softshrink", ("aten.softshrink.default",), _HARD,
         args={"lambd": 0.5},
         samples=(Sample("softshrink", {"lambd": 1.0},
                         description=_extreme("Softshrink(1)", "kinks at +-1")),),
         checks=(Check(kinks=(-0.5, 0.5)), Check({"lambd": 1.5}, kinks=(-1.5, 1.5)))),
    _act("Threshold", "threshold", ("aten.threshold.default",), _HARD,
         args={"threshold": REQUIRED, "value": REQUIRED, "inplace": False},
         samples=(Sample("threshold", {"threshold": 1.0, "value": -2.0},
                         description=_extreme("Threshold(1, -2)", "the kink at 1")),),
         checks=(Check({"threshold": 0.5, "value": -1.0}, kinks=(0.5,)),
                 Check({"threshold": -1.0, "value": 20.0}, kinks=(-1.0,)))),
    # training-mode slopes drawn by torch and fed to refbp, as dropout masks
    _act("RReLU", "rrelu", ("aten.rrelu.default", "aten.rrelu_with_noise.default"), _HARD,
         args={"lower": 1.0 / 8, "upper": 1.0 / 3, "inplace": False},
         samples=(Sample("rrelu", description="RReLU in training mode (slopes drawn by torch "
                         "and fed to refbp) on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4)"),),
         checks=(Check(kinks=(0.0,)), Check({"lower": 0.1, "upper": 0.5}, kinks=(0.0,)),
                 Check({"lower": 0.2, "upper": 0.2}, kinks=(0.0,)))),
    # -- smooth (refbp.nn.functional_act_smooth) -----------------------------------------
    _act("Softsign", "softsign", (), _SMOOTH, signature_note=_COMPOSED,
         samples=(Sample("softsign"),)),
    _act("Tanhshrink", "tanhshrink", (), _SMOOTH, signature_note=_COMPOSED,
         samples=(Sample("tanhshrink"),)),
    _act("LogSigmoid", "log_sigmoid", ("aten.log_sigmoid.default",
                                       "aten.log_sigmoid_forward.default"), _SMOOTH,
         functional="logsigmoid", signature_note=_COMPOSED, samples=(Sample("logsigmoid"),)),
    _act("SELU", "selu", ("aten.selu.default",), _SMOOTH, args={"inplace": False},
         samples=(Sample("selu"),), checks=(Check(kinks=(0.0,)),)),
    _act("CELU", "celu", ("aten.celu.default",), _SMOOTH, args={"alpha": 1.0, "inplace": False},
         samples=(Sample("celu", {"alpha": 2.0}),),
         checks=(Check(), Check({"alpha": 0.5}), Check({"alpha": 3.0}))),
    _act("Mish", "mish", ("aten.mish.default",), _SMOOTH, args={"inplace": False},
         samples=(Sample("mish"),)),
    _act("GLU", "glu", ("aten.glu.default",), _SMOOTH, args={"dim": -1},
         samples=(Sample("glu", data=Data("extreme", n=16, features=6, outputs=3)),),
         checks=(Check(shapes=((4,), (3, 4), (2, 3, 6), (0, 4))),
                 Check({"dim": 0}, shapes=((4,), (4, 3), (2, 3, 5), (2, 0))),
                 Check({"dim": 1}, shapes=((3, 4), (2, 6, 3), (0, 2)))), output=shapes.glu),
    _act("Softmin", "softmin", (), _SMOOTH, args={"dim": None},
         samples=(Sample("softmin", {"dim": 1}),), checks=_DIMS),
    _act("Softmax2d", "softmax2d", (), _SMOOTH, functional="softmax",
         signature_note=_COMPOSED,
         samples=(Sample("softmax2d", before=(("Unflatten", {"dim": 1,
                                                              "unflattened_size": [3, 2, 1]}),),
                         after=(("Flatten", {}),),
                         description="Softmax2d over 3 channels of 2x1 maps unflattened from "
                         "extreme inputs (0, +-1e-8, +-1, +-30, +-1e4)"),),
         checks=(Check(shapes=((3, 4, 5), (2, 3, 4, 5), (0, 3, 2, 2), (2, 1, 1, 3))),)),
)
