"""Every declared op, and the look-ups the rest of refbp uses (no NumPy-side or torch import).

``OPS`` is the activations, then the layers, then the losses, each in declaration order; the
op checks of the suites follow this order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from refbp.registry.activations import ACTIVATIONS
from refbp.registry.layers import LAYERS
from refbp.registry.layers_extra import EXTRA_LAYERS
from refbp.registry.layers_lazy import LAZY_LAYERS
from refbp.registry.losses import LOSSES
from refbp.registry.opinfo import Check, OpInfo

OPS: tuple[OpInfo, ...] = (*ACTIVATIONS, *LAYERS, *EXTRA_LAYERS, *LAZY_LAYERS, *LOSSES)

_BY_NAME = {op.name: op for op in OPS}
if len(_BY_NAME) != len(OPS):  # pragma: no cover - a duplicated declaration is a bug
    raise RuntimeError("an op is declared twice")


#: ``refbp.nn``'s public names that are not ops (base classes, the containers, the parameter
#: type, the ``init`` and ``utils`` modules), by dotted path (``module:attr``; a bare path is
#: a module). With the declared ops they are everything ``refbp.nn`` exports.
NN_OTHERS: Mapping[str, str] = {
    "Module": "refbp.nn.module:Module", "Parameter": "refbp.nn.module:Parameter",
    "Loss": "refbp.nn.loss:Loss", "Sequential": "refbp.nn.container:Sequential",
    "ModuleList": "refbp.nn.container:ModuleList", "ModuleDict": "refbp.nn.container:ModuleDict",
    "ParameterList": "refbp.nn.container:ParameterList",
    "ParameterDict": "refbp.nn.container:ParameterDict",
    "RNNBase": "refbp.nn.rnn:RNNBase", "RNNCellBase": "refbp.nn.rnn_cell:RNNCellBase",
    "init": "refbp.nn.init", "utils": "refbp.nn.utils",
}


def nn_exports() -> dict[str, str]:
    """Every name ``refbp.nn`` exports and the dotted path of what it names, sorted by name:
    :data:`NN_OTHERS` and each declared op's class."""
    table = {**NN_OTHERS, **{o.name: o.class_path for o in OPS}}
    return dict(sorted(table.items()))


def op(name: str) -> OpInfo:
    """The declaration of the op called ``name`` (KeyError listing the declared names)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no op {name!r} is declared; declared: {', '.join(_BY_NAME)}") from None


def names(kind: str | None = None) -> list[str]:
    """The declared op names (of one kind), in declaration order."""
    return [o.name for o in OPS if kind is None or o.kind == kind]


def of_kind(*kinds: str) -> Iterator[OpInfo]:
    """The declarations of the given kinds, in declaration order."""
    return (o for o in OPS if o.kind in kinds)


def by_aten(aten: str) -> list[OpInfo]:
    """The declarations covering an ATen operator (``"aten.relu.default"``; the overload may
    be left out: ``"aten.relu"`` matches every overload)."""
    want = aten if aten.count(".") >= 2 else f"{aten}."
    return [o for o in OPS if any(a == want or a.startswith(want) for a in o.aten)]


def loss_checks() -> list[tuple[str, OpInfo, Check, str]]:
    """``(id, op, check, input kind)`` for every check of every declared loss and each kind
    of input it runs on: the cases of the loss unit and parity tests."""
    return [(f"{c.label(o.name)}-{kind}", o, c, kind)
            for o in of_kind("loss") for c in o.checks for kind in c.inputs]


def family_ops() -> list[tuple[str, OpInfo]]:
    """``(family, op)`` for every explain-mode convention family an op is the reference of."""
    return [(f, o) for o in OPS for f in o.families]
