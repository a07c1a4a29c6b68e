"""Every declared op (``refbp.registry``) is converted both ways by ``refbp.mirror``.

(The suite, docs and catalog coverage need no torch: ``tests/test_registry.py``.)
"""

from __future__ import annotations

import pytest

from refbp.mirror import modules as mirror_modules
from refbp.registry.opinfo import OpInfo
from refbp.registry.ops import OPS

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_declared_op_has_its_converter(op: OpInfo) -> None:
    conv = mirror_modules._REGISTRY.get(op.numpy_class())
    assert conv is not None, f"{op.name} is declared but refbp.mirror has no converter for it"
    assert conv.torch_type is op.torch_class()
    assert mirror_modules._BY_TORCH[conv.torch_type] is conv
    if op.converter != "namesake":
        assert conv.to_torch.__module__ == op.converter, (op.name, conv.to_torch.__module__)


def test_every_converted_type_is_declared() -> None:
    declared = {o.numpy_class() for o in OPS}
    ours = {t for t in mirror_modules._REGISTRY if t.__module__.startswith("refbp.")}
    extra = {t.__name__ for t in ours - declared}
    assert extra == {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
