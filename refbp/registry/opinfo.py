"""The declaration of one op (layer, activation or loss): :class:`OpInfo` and its parts.

A declaration names things, it does not import them: the refbp class is ``refbp.nn.<name>``,
the torch module, the functional core and the torch-side twin are dotted paths
(``"refbp.nn.functional_act:leaky_relu"``) resolved by :func:`resolve` when a consumer needs
them. So importing the declarations costs no NumPy-side import and never imports torch
(``refbp --help`` stays fast, and the NumPy side imports with torch unimportable).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from refbp.registry.shapes import ShapeRule
from refbp.registry.sizes import SizeRule
from refbp.versions import CONVENTIONS

#: The kinds of op: an elementwise or along-a-dimension activation, a layer, a loss.
KINDS = ("activation", "layer", "loss")
#: The ``refbp.nn`` module of an op's class, by kind (a layer names its own).
KIND_MODULES: Mapping[str, str] = {"activation": "refbp.nn.activation", "loss": "refbp.nn.loss"}


class _Required:
    """The default of a constructor argument that has none (``in_features``)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: torch constructor arguments that no refbp op takes: placement, and deprecated reductions.
TORCH_ONLY_EVERYWHERE: Mapping[str, str] = {
    "device": "refbp computes on the CPU in NumPy",
    "dtype": "refbp's dtype is a keyword-only argument where an op has parameters",
    "size_average": "deprecated in torch in favour of reduction",
    "reduce": "deprecated in torch in favour of reduction",
}
#: refbp constructor arguments that torch does not take (keyword-only on the refbp side); the
#: arguments of the conventions torch releases changed are declared in ``refbp.versions``.
REFBP_ONLY_EVERYWHERE: Mapping[str, str] = {
    "dtype": "the NumPy dtype of the parameters (torch: the dtype factory argument)",
    "generator": "the NumPy random generator of the initialisation (torch: the global seed)",
    **{c.keyword: c.argument for c in CONVENTIONS},
}


def resolve(path: str) -> Any:
    """The object a dotted path names: ``"package.module:attr.attr"`` (or ``"package.attr"``).

    Raises ``ImportError`` or ``AttributeError`` naming the path when it does not resolve.
    """
    module, _, attr = path.partition(":")
    if not attr:
        module, _, attr = path.rpartition(".")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AttributeError(f"declared path {path!r} does not resolve: {exc}") from exc
    return obj


@dataclass(frozen=True)
class Data:
    """The synthetic data of an op check (fields of ``refbp.parity.scenario.DataSpec``)."""

    kind: str
    n: int
    features: int
    outputs: int
    extra: Mapping[str, Any] = field(default_factory=dict)


#: Layers around an op in an op check: (type name, options) each.
Layers = tuple[tuple[str, Mapping[str, Any]], ...]

#: Activations are checked on extreme inputs (0, +-1e-8, +-1, +-30, +-1e4) of 6 features.
EXTREME = Data("extreme", n=16, features=6, outputs=6)


@dataclass(frozen=True)
class Sample:
    """One op-check scenario of the built-in suites: forward and every gradient, no update.

    ``id`` is the scenario's name (``op-<id>-f64``). The model is ``before``, the op built
    with ``options``, then ``after`` (each layer a type name and its options), fed ``data``
    and closed by ``loss``; a loss op is itself the loss, after ``before`` (``Identity`` when
    empty). Defaults by kind: activations run on :data:`EXTREME` through ``SSELoss``, with
    the description "<op> on extreme inputs (...)"; a loss's description is its spec's.
    ``tensors`` data with ``outputs=0`` get the target shape of the built model's output.
    ``tolerance`` (dtype -> key of ``refbp.tolerances.OVERRIDES``) is the scenario's
    exception where the op's own ``tolerance`` does not apply. ``target_grad_note`` says
    why the sample of a loss declared ``target_grad`` does not compare the target's
    gradient (its data make it infinite or NaN in both libraries).
    """

    id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    data: Data | None = None
    before: Layers = ()
    after: Layers = ()
    loss: tuple[str, Mapping[str, Any]] | None = None
    description: str = ""
    tolerance: Mapping[str, str] = field(default_factory=dict)
    target_grad_note: str = ""


@dataclass(frozen=True)
class Feed:
    """How a scenario feeds a loss of more than an input and a target (the names of its
    class's ``arguments``): the first ``inputs`` arguments are slices of the model's output
    along dimension 1, ``output[:, j]`` (one input: the output itself), so the input gradient
    of the scenario holds the gradient of each of them; the other arguments come from the
    data's target: one is the target itself, several are its columns (the first all but the
    last ones, each further one a column: CTCLoss's targets, input_lengths and
    target_lengths). ``time_major``: the one input is the output with its first two
    dimensions swapped (CTCLoss's (T, N, C) log-probabilities of an (N, T, C) output)."""

    inputs: int = 1
    time_major: bool = False

    def __post_init__(self) -> None:
        if self.inputs < 1 or (self.time_major and self.inputs != 1):
            raise ValueError(f"a feed takes one or more inputs, time_major only one; got "
                             f"inputs={self.inputs}, time_major={self.time_major}")


#: The kinds of input a loss's checks run on (the tests draw each, with its hard spots, in
#: several shapes; class data has 4 classes, binary data is (6, 4)):
LOSS_INPUTS: Mapping[str, str] = {
    "regression": "real input and target; ties and |input - target| = 0.5, 1, 2",
    "probabilities": "input and target in [0, 1], both edges exactly",
    "logits": "real logits up to +-1e4, targets in [0, 1]",
    "class_index": "class scores (N, C, d...) and class-index targets, one ignored",
    "class_probabilities": "class scores and probability targets",
    "log_probabilities": "log-probabilities and class-index targets, one ignored",
    "signs": "real input and targets of +-1",
    "class_rows": "class scores (N, C) or (C,) and class-index targets, none ignored",
    "multilabel_index": "class scores (N, C) or (C,) and lists of target classes padded "
                        "with -1",
    "gaussian": "means, targets and variances (the input's shape, one dimension fewer, one "
                "dimension of size 1, a float), some variances below eps",
    "ranking": "two real inputs and targets of +-1, pairs on the hinge",
    "cosine_pairs": "two (N, D) or (D,) inputs and targets of +-1 (one 0), pairs with cos = "
                    "margin",
    "triplets": "anchors, positives and negatives (N, D) or (D,), ties of the swap",
    "ctc": "log-probabilities (T, N, C) or (T, C), padded and concatenated targets, input "
           "lengths below T, an empty target and one too long for its input",
    "features": "features (N, 5) or (5,) of a loss that maps them to 4 classes (in_features=5, "
                "num_classes=4), class-index (one ignored) and probability targets, a row of "
                "saturating features",
}


@dataclass(frozen=True)
class Check:
    """One set of constructor options that the unit and parity tests run the op with: an
    activation on 0-d, 1-d, 2-d and 3-d inputs and an empty batch, or on ``shapes`` (the
    suites' data sets are never empty); a loss on each kind of input in ``inputs``
    (:data:`LOSS_INPUTS`), with every reduction, against finite differences and torch. A
    list option is an array of the input's dtype (a loss's ``weight``).

    ``kinks`` are the inputs where the function or its derivative jumps under these options
    (ReLU at 0, Softplus(beta=2, threshold=1) at 0.5): finite differences must not straddle
    them, and gradient checks put exact values there only for smooth options.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    kinks: tuple[float, ...] = ()
    inputs: tuple[str, ...] = ()
    #: The input shapes of an activation's tests when it does not take every rank (GLU
    #: halves an even size, Softmax2d takes 3-D and 4-D); empty: the tests' own shapes.
    shapes: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.inputs) - set(LOSS_INPUTS)
        if unknown:
            raise ValueError(f"unknown loss inputs {sorted(unknown)}; known: "
                             f"{', '.join(LOSS_INPUTS)}")

    def label(self, name: str) -> str:
        """``name(k=v, ...)`` with the options, e.g. ``Softplus(beta=2.0, threshold=1.0)``; a
        nested list by its shape (``weight=<6x4>``)."""
        return f"{name}({', '.join(f'{k}={_show(v)}' for k, v in self.options.items())})"


def _show(value: Any) -> str:
    """``repr(value)``, or ``<6x4>`` for a nested list of more than one column."""
    shape = []
    inner = value
    while isinstance(inner, list) and inner:
        shape.append(len(inner))
        inner = inner[0]
    return f"<{'x'.join(map(str, shape))}>" if len(shape) > 1 and shape[-1] > 1 else repr(value)


@dataclass(frozen=True)
class OpInfo:
    """Everything refbp knows about one op, declared once.

    Attributes
    ----------
    name:
        The ``refbp.nn`` class name, also ``torch.nn``'s unless ``torch_module`` says otherwise.
        ``refbp.nn`` exports the class under this name (``refbp/nn/__init__.py`` reads the
        declarations; its stub ``__init__.pyi`` is generated from them).
    kind:
        One of :data:`KINDS`.
    module:
        The module of the refbp class (:data:`KIND_MODULES` by default; a layer names its own,
        ``"refbp.nn.linear"``).
    forward, backward:
        The NumPy maths, as dotted paths into the functional core (or the class methods where
        the layer has no functional core); the derivations are in their docstrings.
    args:
        The constructor arguments in order with their defaults (:data:`REQUIRED` for none):
        torch's names and defaults, checked against the refbp class (unit test) and the torch
        class (one parity test over all declarations).
    functional:
        The ``torch.nn.functional`` counterpart (None: torch has none).
    aten:
        The ATen operators the op covers (``"aten.leaky_relu.default"``), by which a graph
        captured with ``torch.export`` finds the declaration (:func:`refbp.registry.ops.by_aten`).
    torch_module:
        The torch twin: ``torch.nn.<name>`` by default, else a path into ``refbp.mirror``.
    aliases:
        Other ``torch.nn`` classes that are this op under another name (a deprecated subclass
        that adds nothing, ``NLLLoss2d``): ``from_torch`` converts them as this op.
    converter:
        ``"namesake"``: converted by name (constructor arguments read from attributes of the
        same name, weights by state dict); else the module that registers its converter.
    torch_only:
        torch constructor arguments refbp does not take, with the reason (beyond
        :data:`TORCH_ONLY_EVERYWHERE`).
    signature_note:
        Why torch's constructor signature cannot be read (``(*args, **kwargs)``), if so.
    samples:
        The op-check scenarios of the suites.
    checks:
        The option sets of the unit and parity tests.
    tolerance:
        dtype -> key of ``refbp.tolerances.OVERRIDES`` (which states the measured reason).
    families:
        The explain-mode convention families the op is the torch reference of
        (``refbp check-layer --like <family>``).
    suite_note:
        Why no op check of the quick suite builds the op itself, and what checks it instead
        (a test fails for an op that is in neither).
    size:
        The rule counting the elements of the parameters and buffers the op would hold from
        its complete constructor arguments (:mod:`refbp.registry.sizes`; checked against
        torch on every ``module_db`` constructor case); None: it holds none.
    output:
        The rule giving the shape the op computes from its input shape and its complete
        constructor arguments, and the inner values its backward pass keeps
        (:mod:`refbp.registry.shapes`; checked against refbp on every declared sample and
        against torch on every ``module_db`` case); None: the output has the input's shape.
    shape_note:
        Why an op whose output shape is not its input's has no ``output`` rule (the unit test
        of the rules accepts a mismatch only then).
    target_grad:
        A loss that torch differentiates in its float target (soft and regression targets):
        its op checks make the target require grad on both sides and compare d loss /
        d target (``grad_target``; class-index targets have none and are left out). False
        where torch gives the target no gradient (HingeEmbeddingLoss) or refuses one
        (SoftMarginLoss).
    feed:
        How a scenario feeds a loss of more than an input and a target from the model's
        output and the data's target (:class:`Feed`); None: ``loss(output, target)``.
    defaults_check:
        The ``defaults-<id>`` op check of the quick suite: the op built from its required
        arguments only (the sample's ``options``, exactly :meth:`required`), so that each
        library's own default of every other argument is what runs (a refbp default that
        differs from torch's fails). For ops whose other op checks always give those
        arguments; None: the samples already run the defaults.
    """

    name: str
    kind: str
    forward: str
    backward: str
    module: str = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    functional: str | None = None
    aten: tuple[str, ...] = ()
    torch_module: str = ""
    aliases: tuple[str, ...] = ()
    converter: str = "namesake"
    torch_only: Mapping[str, str] = field(default_factory=dict)
    signature_note: str = ""
    samples: tuple[Sample, ...] = ()
    checks: tuple[Check, ...] = (Check(),)
    tolerance: Mapping[str, str] = field(default_factory=dict)
    families: tuple[str, ...] = ()
    suite_note: str = ""
    size: SizeRule | None = None
    output: ShapeRule | None = None
    shape_note: str = ""
    defaults_check: Sample | None = None
    target_grad: bool = False
    feed: Feed | None = None

    def __post_init__(self) -> None:
        if self.kind == "loss" and not all(c.inputs for c in self.checks):
            raise ValueError(f"{self.name}: every check of a loss names its inputs")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.torch_module:
            object.__setattr__(self, "torch_module", f"torch.nn.{self.name}")
        if not self.module:
            if self.kind not in KIND_MODULES:
                raise ValueError(f"{self.name}: declare the refbp.nn module of its class "
                                 "(module=...)")
            object.__setattr__(self, "module", KIND_MODULES[self.kind])
        if self.defaults_check is not None and set(self.defaults_check.options) != set(
                self.required()):
            raise ValueError(f"{self.name}: a defaults check gives exactly the required "
                             f"arguments {self.required()}, got "
                             f"{sorted(self.defaults_check.options)}")

    @property
    def class_path(self) -> str:
        """The dotted path of the refbp class (``"refbp.nn.linear:Linear"``)."""
        return f"{self.module}:{self.name}"

    def numpy_class(self) -> type:
        """The ``refbp.nn`` class (imports the NumPy side)."""
        cls: type = resolve(self.class_path)
        return cls

    def torch_class(self) -> type:
        """The torch twin's class (imports torch)."""
        cls: type = resolve(self.torch_module)
        return cls

    @property
    def namesake(self) -> bool:
        """Whether the torch twin is ``torch.nn.<name>``."""
        return self.torch_module == f"torch.nn.{self.name}"

    def required(self) -> list[str]:
        """The constructor arguments without a default."""
        return [k for k, v in self.args.items() if v is REQUIRED]
