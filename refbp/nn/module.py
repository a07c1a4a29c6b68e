"""``Module`` and ``Parameter``: the containers every refbp layer is built from.

The contract (shared with every layer in ``refbp.nn``):

- ``forward(x)`` computes the output and caches what backward needs;
- ``backward(grad_out)`` returns d loss / d input and *accumulates* (``+=``) each parameter's
  gradient into ``Parameter.grad`` (``None`` until the first backward, as in torch);
- ``zero_grad()`` resets the gradients (to ``None`` by default, as ``torch.nn.Module.zero_grad``).

Parameter names, ``state_dict`` keys and layouts follow torch so that weights copy 1:1.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from refbp._checks import FLOAT_DTYPES, check_float_dtype
from refbp.dtypes import DTYPE_WORDS


class Parameter:
    """A trainable array and its gradient.

    Attributes
    ----------
    data : ndarray
        The value, float32 or float64. Optimizers update it in place.
    grad : ndarray or None
        The accumulated gradient, same shape and dtype as ``data``; ``None`` until a backward
        pass reaches this parameter (optimizers skip parameters whose ``grad`` is ``None``).
    requires_grad : bool
        When False, backward passes leave ``grad`` untouched.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        arr = np.array(data, copy=True)
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Parameter data must be {DTYPE_WORDS}, got dtype {arr.dtype}")
        self.data: np.ndarray = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the data array."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """dtype of the data array (float32 or float64)."""
        return self.data.dtype

    def accumulate(self, g: np.ndarray, *, owned: bool = False) -> None:
        """Add ``g`` into ``grad`` (allocating it on first use), as autograd does.

        ``owned=True`` says ``g`` is a fresh array nobody else holds, so the first accumulation
        may keep it instead of copying it (a saving of one copy per parameter per step).
        """
        if not self.requires_grad:
            return
        if g.shape != self.data.shape:
            raise ValueError(
                f"gradient shape {g.shape} does not match parameter shape {self.data.shape}"
            )
        if self.grad is None:
            keep = owned and g.dtype == self.data.dtype and g.flags.c_contiguous
            self.grad = g if keep else np.array(g, dtype=self.data.dtype, copy=True)
        else:
            self.grad += g

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every refbp layer and loss.

    Sub-classes assign ``Parameter`` and ``Module`` attributes in ``__init__``; they are
    registered in assignment order, which fixes the order of ``parameters()`` and the keys of
    ``state_dict()`` exactly as ``torch.nn.Module`` does.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"cannot assign {name!r} before Module.__init__() call in {type(self).__name__}"
            )
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        elif value is None and name in params:
            params[name] = None
        elif name in self.__dict__["_buffers"]:
            self.__dict__["_buffers"][name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Register a non-trainable array that is part of ``state_dict`` (e.g. running stats)."""
        self._buffers[name] = value

    # -- traversal ------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` of the direct submodules, in registration order."""
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        """The direct submodules, in registration order."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` of this module (name ``prefix``) and every submodule, depth
        first.
        """
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every submodule, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` of every parameter (each shared parameter once), keys as in
        ``state_dict``.
        """
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter, in ``named_parameters`` order."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """``(dotted name, array)`` of every registered buffer that is not None."""
        for mod_name, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    # -- state ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or eval mode on this module and all submodules; returns
        ``self``.
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set eval mode on this module and all submodules (``train(False)``); returns ``self``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter gradient: to ``None`` (torch's default) or to zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed as torch keys them (``0.weight``, ...)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[pre + name] = p.data.copy()
            for name, b in mod._buffers.items():
                if b is not None:
                    out[pre + name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays into parameters and buffers; shapes must match exactly.

        With ``strict=True`` (the default, as in torch) missing or unexpected keys raise a
        ``KeyError`` that lists them. Values keep this module's dtype.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"Error(s) in loading state_dict for {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for store in (mod._parameters, mod._buffers):
                for name, cur in store.items():
                    key = pre + name
                    if cur is None or key not in state_dict:
                        continue
                    value = np.asarray(state_dict[key])
                    target = cur.data if isinstance(cur, Parameter) else cur
                    if value.shape != target.shape:
                        raise ValueError(
                            f"size mismatch for {key}: copying a param with shape {value.shape}, "
                            f"the shape in current model is {target.shape}"
                        )
                    target[...] = value.astype(target.dtype, copy=False)

    def to(self, dtype: Any) -> Module:
        """Cast every parameter and float buffer to ``dtype`` (float32 or float64), in place."""
        dt = check_float_dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dt)
                    p.grad = None if p.grad is None else p.grad.astype(dt)
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dt)
        return self

    def double(self) -> Module:
        """Convert parameters, gradients and float buffers to float64 in place; returns ``self``."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Convert parameters, gradients and float buffers to float32 in place; returns ``self``."""
        return self.to(np.float32)

    # -- computation ----------------------------------------------------------------------
    def forward(self, *args: Any) -> Any:
        """Compute the output and cache what :meth:`backward` needs (each layer implements it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """Given d loss / d output, return d loss / d input and accumulate into each
        ``Parameter.grad`` (each layer implements it).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({n}): {m!r}".replace("\n", "\n  ") for n, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Cache:
    """A forward-pass cache that raises a clear error when backward runs before forward."""

    __slots__ = ("_owner", "_values")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._values: dict[str, Any] | None = None

    def save(self, **values: Any) -> None:
        """Keep the forward pass's ``values`` for the next backward."""
        self._values = values

    def load(self) -> dict[str, Any]:
        """The values of the last forward pass; RuntimeError if there was none."""
        if self._values is None:
            raise RuntimeError(
                f"{self._owner}.backward() called before forward(): run forward first"
            )
        return self._values
