"""Hyperparameters in the user's own names and constants (no torch).

Options are given under torch's names (``lr``, ``betas``, ``eps``, ``alpha``, ...). User code
names them its own way: ``learning_rate``, ``beta1``/``beta2``, ``decay_rate``, ``epsilon``, a
``config`` dict with ``config.setdefault("learning_rate", 1e-2)``, or a constant written
inside the update (``np.sqrt(h) + 1e-7``). This module

- reads the user's hyperparameters and their defaults (constructor signature, or the keys a
  function reads from its config/hyperparameter dict),
- pairs them with torch's names through an alias table (family-dependent: ``alpha`` is the
  learning rate of Adam in Kingma & Ba's notation, but RMSprop's smoothing constant in torch),
- builds the effective options for both sides: the user's defaults are the user's choice (a
  book's ``lr=0.01`` is not a mismatch with torch's default), explicit options override them,
  and nothing goes to a user's ``**kwargs`` (it would be swallowed silently),
- lists the numeric literals of the user's source, the candidates for constants that are
  hard-coded rather than passed (see :mod:`refbp.diagnose.fit`).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Any

from refbp.registry.optimizers import SPELLINGS, find, pairs

ALIASES: dict[str, tuple[tuple[str, ...], ...]] = {
    **SPELLINGS,
    "label_smoothing": (("label_smoothing",), ("smoothing",)),
    "num_features": (("num_features",),),
}
"""torch name -> user spellings (an unlisted name is spelled as torch spells it) of options of
layers and losses, and of options a family's optimizer does not take; a declared optimizer's
own hyperparameters use their declaration (:attr:`refbp.registry.optimizers.Hyper.aliases`)."""
_PAIRS = pairs()
_PRIORITY = ("lr", "betas", "eps", "alpha", "rho", "weight_decay", "momentum")
LR_ATTRS = ("lr", "learning_rate", "current_learning_rate", "current_lr", "eta", "step_size",
            "lr_rate")
COUNTER_KEYS = ("t", "step", "iteration", "iterations", "timestep")
CONFIG_PARAMS = ("config", "hyperparams", "hyperparameters", "hparams", "params_dict",
                 "optim_config", "bn_param", "opts", "options")


@dataclass
class Naming:
    """How torch's option names map onto one user implementation.

    ``user_params``: the user's hyperparameter names and defaults (``inspect.Parameter.empty``
    when required); ``names``: torch name -> user names (one, or two for ``betas``);
    ``effective``: the options both sides run with, under torch's names; ``user_kwargs``: what
    is passed to the user's code, under its names; ``hard_coded``: torch options the user's
    code does not take (constants to fit); ``notes``: sentences for the diagnosis.
    """

    user_params: dict[str, Any]
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    effective: dict[str, Any] = field(default_factory=dict)
    user_kwargs: dict[str, Any] = field(default_factory=dict)
    hard_coded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def user_name(self, torch_name: str) -> str:
        """``"beta1, beta2"`` for ``betas``; the torch name itself when unmapped."""
        return ", ".join(self.names.get(torch_name, (torch_name,)))


def signature_params(fn: Any, skip: int = 0) -> tuple[dict[str, Any], bool]:
    """``({name: default}, takes **kwargs)`` of a callable's keyword-able parameters, skipping
    the first ``skip`` positional ones (the parameters of a step-style optimizer)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, True
    out: dict[str, Any] = {}
    var_kw = False
    positional = 0
    for n, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.kind is p.POSITIONAL_OR_KEYWORD and positional < skip:
                positional += 1
                continue
            out[n] = p.default
    return out, var_kw


def aliases(torch_name: str, like: str) -> tuple[tuple[str, ...], ...]:
    """The user spellings of ``torch_name`` in the family ``like``: the declared optimizer's
    own (RMSprop's ``alpha`` is no learning rate), else :data:`ALIASES`."""
    info = find(like)
    if info is not None and info.has(torch_name):
        return info.hyper(torch_name).aliases
    return ALIASES.get(torch_name, ((torch_name,),))


def _torch_value(torch_name: str, values: list[Any]) -> Any:
    return tuple(values) if torch_name in _PAIRS and len(values) == 2 else values[0]


def _user_values(torch_name: str, value: Any, n: int) -> list[Any]:
    if n == 2:
        return list(value)
    return [tuple(value) if torch_name in _PAIRS and isinstance(value, list | tuple) else value]


def pair_names(user_params: dict[str, Any], torch_options: set[str], like: str
               ) -> dict[str, tuple[str, ...]]:
    """torch name -> the user's name(s), each user name used once, exact names first."""
    used: set[str] = set()
    out: dict[str, tuple[str, ...]] = {}
    order = sorted(torch_options, key=lambda t: (t not in user_params,
                                                 _PRIORITY.index(t) if t in _PRIORITY else 99))
    for tname in order:
        for names in aliases(tname, like):
            if all(n in user_params and n not in used for n in names):
                out[tname] = names
                used |= set(names)
                break
    return out


def build_naming(user_params: dict[str, Any], var_kw: bool, torch_defaults: dict[str, Any],
                 options: dict[str, Any], like: str) -> Naming:
    """Pair names, read the user's defaults and build both sides' options.

    ``torch_defaults`` are the torch class's keyword defaults (its options); ``options`` the
    explicit ones (torch names, or the user's own names).
    """
    naming = Naming(dict(user_params))
    explicit = dict(options)
    naming.names = pair_names(user_params, set(torch_defaults) | set(explicit), like)
    back = {names[0]: t for t, names in naming.names.items() if len(names) == 1}
    for key in list(explicit):
        if key not in torch_defaults and key in back:
            explicit[back[key]] = explicit.pop(key)
    defaults_used = []
    for tname, names in naming.names.items():
        if tname in explicit:
            for n, v in zip(names, _user_values(tname, explicit[tname], len(names)),
                            strict=True):
                naming.user_kwargs[n] = v
            naming.effective[tname] = explicit[tname]
            continue
        vals = [user_params[n] for n in names]
        if any(v is inspect.Parameter.empty for v in vals) and tname in torch_defaults:
            value = torch_defaults[tname]
            for n, v in zip(names, _user_values(tname, value, len(names)), strict=True):
                naming.user_kwargs[n] = v
            naming.effective[tname] = value
            continue
        if any(v is None or v is inspect.Parameter.empty for v in vals):
            continue
        value = _torch_value(tname, vals)
        naming.effective[tname] = value
        if tname in torch_defaults and value != torch_defaults[tname]:
            defaults_used.append(f"{'='.join([', '.join(names), repr(value)])} ({tname} for "
                                 f"torch; torch's default {torch_defaults[tname]!r})")
    for tname, value in explicit.items():
        if tname in naming.names:
            continue
        if tname in torch_defaults or not var_kw:
            naming.effective[tname] = value
        if tname not in torch_defaults and tname in user_params:
            naming.user_kwargs[tname] = value
    naming.hard_coded = sorted(t for t in torch_defaults if t not in naming.names)
    if defaults_used:
        naming.notes.append("your defaults are used on both sides: " + "; ".join(defaults_used))
    passed = [t for t in explicit if t in torch_defaults and t not in naming.names]
    if passed:
        naming.notes.append(f"{', '.join(passed)} not passed to your code (it has no such "
                            "parameter" + (" other than **kwargs" if var_kw else "") + ")")
    return naming


def source_of(obj: Any) -> str:
    """The source of a user class or function ('' when unavailable)."""
    obj = getattr(obj, "__func__", obj)
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        return ""


def literals(source: str) -> list[float]:
    """The distinct numeric constants written in ``source`` (``10e-7`` -> 1e-06)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[float] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool)):
            v = float(node.value)
            if v not in out:
                out.append(v)
    return out


def config_keys(fn: Any, param: str) -> dict[str, Any]:
    """Keys a function reads from its dict parameter ``param`` with their defaults:
    ``config.setdefault("learning_rate", 1e-2)`` / ``config.get("eps", 1e-8)`` give a default,
    ``hyperparams["lr"]`` none (``inspect.Parameter.empty``)."""
    try:
        tree = ast.parse(source_of(fn))
    except SyntaxError:
        return {}
    out: dict[str, Any] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("setdefault", "get")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == param
                and node.args and isinstance(node.args[0], ast.Constant)):
            default: Any = inspect.Parameter.empty
            if len(node.args) > 1:
                try:
                    default = ast.literal_eval(node.args[1])
                except ValueError:
                    default = inspect.Parameter.empty
            out[str(node.args[0].value)] = default
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
              and node.value.id == param and isinstance(node.slice, ast.Constant)):
            out.setdefault(str(node.slice.value), inspect.Parameter.empty)
    return out


def attribute_reads(fn: Any, param: str) -> list[str]:
    """Attribute names read from parameter ``param`` in a function's source, in order
    (``layer.weights``, ``layer.dweights`` -> ``["weights", "dweights"]``)."""
    try:
        tree = ast.parse(source_of(fn))
    except SyntaxError:
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == param and node.attr not in out):
            out.append(node.attr)
    return out
