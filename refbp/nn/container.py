"""``Sequential``: layers applied in order; backward runs them in reverse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from refbp.nn.conv import _ConvBase
from refbp.nn.linear import Linear
from refbp.nn.module import Module

# layers whose backward can skip the input gradient (``backward(g, input_grad=False)``)
SKIPS_INPUT_GRAD = (Linear, _ConvBase)


class Sequential(Module):
    """Chain of modules, keyed ``"0"``, ``"1"``, ... as in ``torch.nn.Sequential``.

    Forward: ``x_{i+1} = f_i(x_i)``. Backward (chain rule): ``g_i = f_i.backward(g_{i+1})``,
    starting from the gradient of the loss with respect to the output.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential argument {i} is {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, under the next integer name (as
        ``torch.nn.Sequential.append``); returns ``self``.
        """
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append takes a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int) -> Module:
        mods = list(self._modules.values())
        return mods[idx]

    def forward(self, x: Any) -> np.ndarray:
        """Apply the modules in order; each caches its own input for backward."""
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_out: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Backward through the layers in reverse; returns dL/d input.

        With ``input_grad=False`` the first layer may skip computing the input gradient (a
        ``Linear`` or a convolution does; ``None`` is then returned), as torch does for data
        that does not require grad. Parameter gradients are accumulated either way.
        """
        mods = list(self._modules.values())
        for i, m in enumerate(reversed(mods)):
            first = i == len(mods) - 1
            if first and not input_grad and isinstance(m, (Sequential, *SKIPS_INPUT_GRAD)):
                return m.backward(grad_out, input_grad=False)
            grad_out = m.backward(grad_out)
        return grad_out
