"""``Sequential`` (layers applied in order; backward runs them in reverse) and the containers
a model's own ``forward`` applies: ``ModuleList``, ``ModuleDict``, ``ParameterList``,
``ParameterDict``."""

from __future__ import annotations

import operator
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any

import numpy as np

from refbp.nn.conv import _ConvBase
from refbp.nn.linear import Linear
from refbp.nn.module import Module, Parameter

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


def _index(idx: int, size: int) -> str:
    """The key of a list container's ``idx`` (negative from the end), torch's IndexError."""
    i = operator.index(idx)
    if not -size <= i < size:
        raise IndexError(f"index {i} is out of range")
    return str(i % size)


class ModuleList(Module):
    """Modules in a list, as ``torch.nn.ModuleList``: registered under ``"0"``, ``"1"``, ...
    (``state_dict`` keys ``0.weight``, ...), with ``append``, ``extend``, ``insert``, ``pop``,
    indexing, slicing (a new ``ModuleList``), ``len`` and iteration.

    Like torch's, it has no ``forward`` or ``backward`` of its own: the model that holds it
    applies its modules in its own ``forward`` and calls their ``backward`` in reverse order
    in its own ``backward`` (see ``docs/byo-model.md`` for a model checked as a pair).
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[_index(idx, len(self))]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, _index(idx, len(self)), _module(module, "ModuleList"))

    def __delitem__(self, idx: int | slice) -> None:
        keep = list(self._modules.values())
        if isinstance(idx, slice):
            del keep[idx]
        else:
            del keep[int(_index(idx, len(self)))]
        self._modules.clear()  # renumbered, as torch renumbers
        self.extend(keep)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return type(self)([*self, *other])

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns ``self``."""
        setattr(self, str(len(self)), _module(module, "ModuleList"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of ``modules``; returns ``self``."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (the keys are renumbered)."""
        items = list(self._modules.values())
        items.insert(index, _module(module, "ModuleList"))
        self._modules.clear()
        self.extend(items)

    def pop(self, key: int | slice) -> Module:
        """Remove and return the module at ``key``."""
        value = self[key]
        del self[key]
        return value  # type: ignore[no-any-return]


def _module(value: Any, owner: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner} holds refbp Modules, got {type(value).__name__}")
    return value


class _NamedContainer(Module):
    """The dict operations of ``ModuleDict`` and ``ParameterDict`` over their store
    (``_modules`` or ``_parameters``, named by ``_store_name``); each adds ``__setitem__``."""

    _store_name = "_modules"

    @property
    def _store(self) -> dict[str, Any]:
        store: dict[str, Any] = self.__dict__[self._store_name]
        return store

    def __getitem__(self, key: str) -> Any:
        return self._store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def __delitem__(self, key: str) -> None:
        del self._store[key]

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def keys(self) -> KeysView[str]:
        """The keys, in insertion order."""
        return self._store.keys()

    def values(self) -> ValuesView[Any]:
        """The modules or parameters, in insertion order."""
        return self._store.values()

    def items(self) -> ItemsView[str, Any]:
        """``(key, value)`` pairs, in insertion order."""
        return self._store.items()

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        return self._store.get(key, default)

    def clear(self) -> None:
        """Remove every entry."""
        self._store.clear()

    def pop(self, key: str) -> Any:
        """Remove and return the value under ``key``."""
        return self._store.pop(key)

    def update(self, values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Add or replace entries from a mapping or from ``(key, value)`` pairs."""
        pairs = values.items() if isinstance(values, Mapping) else values
        for key, v in pairs:
            self[key] = v


class ModuleDict(_NamedContainer):
    """Modules by name, as ``torch.nn.ModuleDict``: registered in insertion order under their
    keys (``state_dict`` keys ``<key>.weight``, ...); ``keys``, ``values``, ``items``,
    ``update``, ``pop``, ``get``, ``clear``, ``in``, ``len``, iteration over the keys. No
    ``forward``: the model that holds it applies the modules."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        setattr(self, str(key), _module(module, "ModuleDict"))


def _parameter(value: Any) -> Parameter:
    """A Parameter as it is; an array (of a float dtype) wrapped, as torch wraps a Tensor."""
    return value if isinstance(value, Parameter) else Parameter(value)


class ParameterList(Module):
    """Parameters in a list, as ``torch.nn.ParameterList``: registered under ``"0"``, ``"1"``,
    ... (``state_dict`` keys ``0``, ``1``, ...); an array appended is wrapped in a
    ``Parameter`` as torch wraps a Tensor. Indexing returns the ``Parameter`` (use ``.data``
    for its value in a forward pass, and ``.accumulate(g)`` in the backward pass)."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return type(self)(list(self._parameters.values())[idx])
        return self._parameters[_index(idx, len(self))]

    def __setitem__(self, idx: int, value: Any) -> None:
        setattr(self, _index(idx, len(self)), _parameter(value))

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def append(self, value: Any) -> ParameterList:
        """Add ``value`` (a Parameter, or an array to wrap) at the end; returns ``self``."""
        setattr(self, str(len(self)), _parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Append every value; returns ``self``."""
        for v in values:
            self.append(v)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(_NamedContainer):
    """Parameters by name, as ``torch.nn.ParameterDict`` (``state_dict`` keys are the names;
    arrays are wrapped in ``Parameter``); ``keys``, ``values``, ``items``, ``update``,
    ``pop``, ``get``, ``clear``, ``in``, ``len``, iteration over the keys."""

    _store_name = "_parameters"

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, str(key), _parameter(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterDict should not be called.")
