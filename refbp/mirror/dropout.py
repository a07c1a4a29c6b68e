"""The torch half of the dropout-mask mechanism: read the masks stock torch draws.

refbp cannot reproduce torch's random stream, so a parity run takes the masks from torch and
feeds them to refbp (``refbp.nn.dropout.feed_masks``; the design is described there). The torch
model stays stock: a :class:`DropoutMaskTap` puts a forward pre-hook on every module that
draws dropout. Just before such a module runs, the hook saves torch's CPU generator state,
runs the module's own *stock* function (``F.dropout``, ``F.dropout1d``/``2d``/``3d``,
``F.alpha_dropout``, ``F.feature_alpha_dropout``) on a tensor of ones shaped like the input,
reads the keep-mask off the result (the kept elements are the positive ones), and restores
the generator state. The module then draws from the very same state, so its mask is
identical to the one read (same shape, dtype, strides and generator state go through the
same kernel), and torch's output and gradients are those of an untouched model. The masks
collected during one forward pass are, in order, the masks refbp must use.

Layers that drop internally (dropout between stacked recurrent layers, on attention weights)
register their own probe with :func:`register_mask_probe`: a function of the module and its
forward arguments returning the masks that module will draw, in its draw order, built from
:func:`next_dropout_mask` calls inside one :func:`rewound_rng` block.

A model captured as a graph (``refbp.mirror.export``) may also drop *inside its own code*:
``F.dropout(attn, p, training=self.training)`` (Llama's and BERT's attention in
``transformers``) or ``F.scaled_dot_product_attention(..., dropout_p=p)``, no module to hook.
For such a model the tap is *functional* (``DropoutMaskTap(model, functional=True)``): during
the forward pass a :class:`torch.overrides.TorchFunctionMode` sees every call of
``F.dropout`` (``nn.Dropout`` calls it too), ``F.dropout1d``/``2d``/``3d``,
``F.alpha_dropout``, ``F.feature_alpha_dropout``, ``F.rrelu`` (their modules call them) and
``F.scaled_dot_product_attention``, reads the mask (or RReLU's slopes) the call is about to
draw the same way, with the probe of the call's module (same shapes, dtype and generator
state, rewound), and lets the call run untouched. For attention the probe runs the same call with
zero queries and keys (uniform weights, positive wherever attention is allowed) and values
that are columns of the identity, so the output holds the dropped weights, block by block of
``E`` keys: its non-zero entries are the kept ones (a masked-out weight is zero either way).
The graph's ``dropout`` and attention nodes take these masks in the same order.

Fractional max pooling draws too, in training and in eval mode: torch's functional calls
``torch.rand(N, C, 2|3, dtype=input.dtype)`` for the samples that place its windows (unless
the module holds fixed ``_random_samples``). Its module probe and the functional tap read that
draw the same way (the same call on the rewound generator), and the functional tap records
every other ``torch.rand`` call of the model's code as it is made. A captured graph holds these
draws as ``rand`` nodes, which take the recorded values in the same order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["DropoutMaskTap", "MaskProbe", "fractional_samples", "next_dropout_mask",
           "register_mask_probe", "rewound_rng", "rrelu_noise", "sdpa_dropout_mask",
           "step_generator"]

MaskProbe = Callable[[torch.nn.Module, tuple[Any, ...]], list[np.ndarray]]


@contextmanager
def rewound_rng() -> Iterator[None]:
    """Run the block, then put torch's CPU generator back where it was before the block."""
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


@contextmanager
def step_generator(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator with ``seed`` for the block; the caller's state is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _read_noise(fn: Callable[..., torch.Tensor], like: torch.Tensor, p: float, *,
                feature: bool = False, batched: bool = True) -> np.ndarray:
    """The keep-mask the stock dropout function ``fn`` draws next for an input like ``like``,
    *consuming* the draw: ``fn`` runs on ones of the same shape, dtype and strides (so the
    same Bernoulli draws), and a kept element is the positive one (``1 / (1 - p)`` for
    dropout, ``a (1 + alpha p)`` against ``a alpha (p - 1) < 0`` for alpha dropout). Channel
    dropout (``feature=True``) returns torch's noise shape ``(N, C, 1, ...)``, with a batch of
    one for an input ``fn`` reads as unbatched (``batched=False``)."""
    ones = torch.ones_like(like, requires_grad=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's rank warnings, raised for the model
        mask = (fn(ones, p, True) > 0).numpy()
    if not batched:
        mask = mask[None]
    if feature:
        mask = mask[(slice(None), slice(None)) + (slice(0, 1),) * (mask.ndim - 2)]
    return np.ascontiguousarray(mask)


def next_dropout_mask(like: torch.Tensor, p: float, *, feature: bool = False) -> np.ndarray:
    """The keep-mask stock dropout draws next for an input like ``like``, *consuming* the draw.

    Call it inside :func:`rewound_rng` to read a mask without disturbing the stream. Element
    dropout returns a mask of ``like``'s shape; channel dropout (``feature=True``,
    ``F.dropout2d``) returns torch's noise shape ``(N, C, 1, ...)``.
    """
    return _read_noise(F.dropout2d if feature else F.dropout, like, p, feature=feature)


def _probe(fn: Callable[..., torch.Tensor], *, feature: bool = False,
           batched_rank: int | None = None, draws_at_one: bool = True) -> MaskProbe:
    """The probe of a dropout module that applies ``fn``: no draw for ``p == 0`` or an empty
    input (torch returns the input), nor for ``p == 1`` unless ``draws_at_one`` (refbp's
    Dropout-family layers ask for the all-dropped mask there; the alpha dropouts do not);
    ``batched_rank``: the rank ``fn`` reads as batched (``None``: every rank)."""
    def probe(module: torch.nn.Module, args: tuple[Any, ...]) -> list[np.ndarray]:
        x, p = args[0], cast(float, module.p)
        if p == 0.0 or x.numel() == 0 or (p == 1.0 and not draws_at_one):
            return []
        batched = batched_rank is None or x.dim() == batched_rank
        with rewound_rng():
            return [_read_noise(fn, x, p, feature=feature, batched=batched)]
    return probe


def rrelu_noise(x: torch.Tensor, lower: float, upper: float) -> np.ndarray:
    """The slopes stock ``F.rrelu`` draws next for the input ``x``, *consuming* the draw.

    torch draws one slope per element ``x <= 0`` (in memory order) and writes noise 1
    elsewhere, so the probe runs it on ``-1`` where ``x <= 0`` and ``1`` elsewhere (same
    shape, dtype and sign pattern, hence the same draws): its output is ``-slope`` exactly
    where ``x <= 0``. Call it inside :func:`rewound_rng`.
    """
    with torch.no_grad():
        signs = torch.where(x <= 0, -1.0, 1.0).to(x.dtype).contiguous()
        out = F.rrelu(signs, lower, upper, True)
        noise = torch.where(signs < 0, -out, torch.ones_like(out))
    return np.array(noise.numpy(), copy=True)  # ascontiguousarray would make 0-d 1-d


def _probe_rrelu(module: torch.nn.Module, args: tuple[Any, ...]) -> list[np.ndarray]:
    with rewound_rng():
        return [rrelu_noise(args[0], cast(float, module.lower), cast(float, module.upper))]


def fractional_samples(x: torch.Tensor, dims: int) -> np.ndarray:
    """The samples ``F.fractional_max_pool{dims}d`` draws next for the input ``x`` when it is
    given none, *consuming* the draw: ``torch.rand(N, C, dims, dtype=x.dtype)`` as torch's
    functional calls it (``N = 1`` for an unbatched input). Call it inside
    :func:`rewound_rng`."""
    batch = 1 if x.dim() == dims + 1 else x.size(0)
    return torch.rand(batch, x.size(-dims - 1), dims, dtype=x.dtype).numpy().copy()


def _probe_fractional(dims: int) -> MaskProbe:
    """A fractional max pooling's probe: its samples, unless the module holds fixed ones."""
    def probe(module: torch.nn.Module, args: tuple[Any, ...]) -> list[np.ndarray]:
        if module._random_samples is not None:
            return []
        with rewound_rng():
            return [fractional_samples(args[0], dims)]
    return probe


_PROBES: dict[type, MaskProbe] = {
    torch.nn.Dropout: _probe(F.dropout),
    torch.nn.Dropout1d: _probe(F.dropout1d, feature=True, batched_rank=3),
    torch.nn.Dropout2d: _probe(F.dropout2d, feature=True),
    torch.nn.Dropout3d: _probe(F.dropout3d, feature=True, batched_rank=5),
    torch.nn.AlphaDropout: _probe(F.alpha_dropout, draws_at_one=False),
    torch.nn.FeatureAlphaDropout: _probe(F.feature_alpha_dropout, feature=True,
                                         draws_at_one=False),
    torch.nn.RReLU: _probe_rrelu,
    torch.nn.FractionalMaxPool2d: _probe_fractional(2),
    torch.nn.FractionalMaxPool3d: _probe_fractional(3),
}
#: The types that draw in eval mode too (the others draw only in training).
_EVAL_DRAWS: set[type] = {torch.nn.FractionalMaxPool2d, torch.nn.FractionalMaxPool3d}
#: The functionals whose random samples the functional tap reads (their rank by function).
_FRACTIONAL = {F.fractional_max_pool2d: 2, F.fractional_max_pool2d_with_indices: 2,
               F.fractional_max_pool3d: 3, F.fractional_max_pool3d_with_indices: 3}


def register_mask_probe(torch_type: type, probe: MaskProbe, *, eval_mode: bool = False
                        ) -> None:
    """Declare that modules of ``torch_type`` draw dropout, and how to read their masks.

    ``probe(module, args)`` is called just before the module runs in training mode (in eval
    mode too with ``eval_mode=True``) and must return the keep-masks the module is about to
    draw, in order, leaving torch's generator state as it found it (use
    :func:`rewound_rng`). The refbp twin of the module must ask
    ``refbp.nn.dropout.keep_mask`` for masks of the same shapes in the same order.
    """
    _PROBES[torch_type] = probe
    if eval_mode:
        _EVAL_DRAWS.add(torch_type)
    else:
        _EVAL_DRAWS.discard(torch_type)


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str,
              default: Any) -> Any:
    return kwargs[name] if name in kwargs else args[index] if len(args) > index else default


def sdpa_dropout_mask(args: tuple[Any, ...], kwargs: dict[str, Any]) -> np.ndarray:
    """The keep-mask, of the attention weights' shape ``(..., L, S)``, that
    ``F.scaled_dot_product_attention(*args, **kwargs)`` (``dropout_p > 0``) draws next (see
    the module docstring for how it is read); every probe call runs on the rewound generator,
    so the stream is left as it was."""
    q, k, v = args[:3]
    rest = {**kwargs, **dict(zip(("attn_mask", "dropout_p", "is_causal", "scale",
                                  "enable_gqa"), args[3:], strict=False))}
    s, e = k.shape[-2], v.shape[-1]
    blocks = []
    for start in range(0, s, e):
        n = min(e, s - start)
        eye = torch.zeros_like(v, requires_grad=False)
        cols = torch.arange(n)
        eye[..., start + cols, cols] = 1.0
        with rewound_rng(), torch.no_grad():
            out = F.scaled_dot_product_attention(torch.zeros_like(q), torch.zeros_like(k), eye,
                                                 **rest)
        blocks.append(out[..., :n])
    return np.ascontiguousarray((torch.cat(blocks, -1) != 0).numpy())


#: The functional calls a graph's drawing nodes come from, the module whose probe reads their
#: draws, and the positions of their ``training`` argument and its default (``F.rrelu``'s
#: first arguments are ``lower`` and ``upper``, the dropouts' ``p``).
_FUNCTIONAL_PROBES: dict[Any, tuple[type, int, bool]] = {
    F.dropout1d: (torch.nn.Dropout1d, 2, True),
    F.dropout2d: (torch.nn.Dropout2d, 2, True),
    F.dropout3d: (torch.nn.Dropout3d, 2, True),
    F.alpha_dropout: (torch.nn.AlphaDropout, 2, False),
    F.feature_alpha_dropout: (torch.nn.FeatureAlphaDropout, 2, False),
    F.rrelu: (torch.nn.RReLU, 3, False),
}


def _functional_draws(func: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> list[np.ndarray]:
    """The masks (or RReLU slopes) the call ``func(*args, **kwargs)`` is about to draw, read
    by the probe of its module (:data:`_PROBES`) on the call's own arguments; none when it
    does not train."""
    module_type, at, default = _FUNCTIONAL_PROBES[func]
    if not _argument(args, kwargs, at, "training", default):
        return []
    if module_type is torch.nn.RReLU:
        like = SimpleNamespace(lower=float(_argument(args, kwargs, 1, "lower", 1.0 / 8)),
                               upper=float(_argument(args, kwargs, 2, "upper", 1.0 / 3)))
    else:
        like = SimpleNamespace(p=float(_argument(args, kwargs, 1, "p", 0.5)))
    return _PROBES[module_type](cast(torch.nn.Module, like), (args[0],))


class _FunctionalTap(TorchFunctionMode):
    """Reads the masks of ``F.dropout`` and ``F.scaled_dot_product_attention`` calls, those
    of the other dropouts and ``F.rrelu`` (:data:`_FUNCTIONAL_PROBES`), the samples of the
    fractional max poolings and every ``torch.rand`` of the model's code."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        super().__init__()
        self.masks = masks

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.dropout:
            p = float(_argument(args, kwargs, 1, "p", 0.5))
            if p > 0.0 and _argument(args, kwargs, 2, "training", True):
                with rewound_rng():
                    self.masks.append(next_dropout_mask(args[0], p))
        elif func in _FUNCTIONAL_PROBES:
            self.masks.extend(_functional_draws(func, args, kwargs))
        elif func in _FRACTIONAL and _argument(args, kwargs, 5, "_random_samples",
                                               None) is None:
            with rewound_rng():
                self.masks.append(fractional_samples(args[0], _FRACTIONAL[func]))
        elif func is torch.rand:  # the model's own draws: recorded as they are made
            out = func(*args, **kwargs)
            self.masks.append(out.detach().numpy().copy())
            return out
        elif func is F.scaled_dot_product_attention and \
                float(_argument(args, kwargs, 4, "dropout_p", 0.0)) > 0.0:
            self.masks.append(sdpa_dropout_mask(args, kwargs))
        return func(*args, **kwargs)


class DropoutMaskTap:
    """Collect, during each forward pass of a torch model, the dropout masks it draws.

    Hooks are stock ``register_forward_pre_hook`` hooks on the modules whose type has a probe;
    they read masks only in training mode. ``functional=True`` (a model run as a graph) reads
    instead every dropout, ``F.rrelu`` and ``F.scaled_dot_product_attention`` call made while
    :meth:`watching` (see the module docstring). Use as a context manager (hooks removed on
    exit) or call :meth:`remove`.
    """

    def __init__(self, model: torch.nn.Module, *, functional: bool = False) -> None:
        self.masks: list[np.ndarray] = []
        self.functional = functional
        self._handles = [] if functional else [m.register_forward_pre_hook(self._hook)
                                               for m in model.modules()
                                               if type(m) in _PROBES]

    @property
    def active(self) -> bool:
        """Whether the model has any module that draws dropout (always, when functional)."""
        return self.functional or bool(self._handles)

    def watching(self) -> AbstractContextManager[Any]:
        """The context in which the model's forward pass runs: the functional tap, or
        nothing (the module hooks are in place already)."""
        return _FunctionalTap(self.masks) if self.functional else nullcontext()

    def _hook(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if module.training or type(module) in _EVAL_DRAWS:
            self.masks.extend(_PROBES[type(module)](module, args))

    def take(self) -> list[np.ndarray]:
        """The masks collected since the last call, in draw order; the tap starts afresh."""
        masks, self.masks = self.masks, []
        return masks

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> DropoutMaskTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
