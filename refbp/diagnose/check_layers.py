"""``check_layer`` and ``check_loss``: a user's layer or loss against ``torch.nn`` and the
catalogued conventions (see :mod:`refbp.diagnose.check`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from refbp.diagnose import trajectories as T
from refbp.diagnose.adapters import user_name
from refbp.diagnose.adapters_layer import ALIASES
from refbp.diagnose.catalog import Variant, family, variants_for
from refbp.diagnose.catalog.layer import SPECS, batchnorm_combinations
from refbp.diagnose.catalog.loss import LOG_EPS, module_fn
from refbp.diagnose.check import (
    UserRun,
    accepted_options,
    load_subject,
    refit,
    start_verdict,
    torch_defaults,
)
from refbp.diagnose.diagnosis import Diagnosis, Record
from refbp.diagnose.layer_styles import (
    SIZE_NAMES,
    FunctionalLayer,
    UserLayer,
    build_user_layer,
    functional_pair,
)
from refbp.diagnose.loss_styles import build_user_loss
from refbp.diagnose.naming import build_naming, config_keys, signature_params
from refbp.diagnose.optim_driver import config_param
from refbp.diagnose.spec import format_options

_NOT_LAYER_OPTIONS = ("bias", "device", "dtype", "inplace")
DEFAULT_BATCH = 8
"""Samples per batch of the layer and loss problems."""
_LOG_EPS_FAMILIES = ("CrossEntropyLoss", "BCELoss")


def _user_layer_params(user: Any) -> tuple[dict[str, Any], bool]:
    """The user's option names and defaults (not the sizes, not the parameter arrays)."""
    if inspect.isfunction(user):
        fwd, _ = functional_pair(user)
        cfg = config_param(fwd)
        return (config_keys(fwd, cfg) if cfg else {}), False
    if not inspect.isclass(user):
        return {}, False
    params, var_kw = signature_params(user)
    skip = {n for names in (*ALIASES.values(), *SIZE_NAMES.values()) for n in names}
    return {k: v for k, v in params.items() if k not in skip}, var_kw


def _layer_variants(like: str) -> list[Variant]:
    singles = variants_for(like)
    return singles + (batchnorm_combinations(singles) if like == "BatchNorm1d" else [])


@dataclass
class _LayerProblem:
    """The deterministic layer problem both sides recompute from the options."""

    sizes: dict[str, int]
    defaults: dict[str, Any]
    values: dict[str, Any]
    xs: list[Any]
    douts: list[Any]
    tensors: dict[str, tuple[int, ...]]


def _layer_sizes(like: str, options: dict[str, Any] | None) -> tuple[dict[str, int],
                                                                     dict[str, Any]]:
    """The layer's sizes (from the options or the family's) and the options without them."""
    opts = dict(options or {})
    return {k: int(opts.pop(k, v)) for k, v in SPECS[like].sizes.items()}, opts


def check_layer_limits(like: str, options: dict[str, Any] | None, problem: dict[str, Any],
                       allow_large: bool = False) -> None:
    """The layer check's sizes are within :mod:`refbp.limits` (parameters, and the
    activations of every step), before any user code runs."""
    from refbp import limits

    sizes, opts = _layer_sizes(like, options)
    shape = SPECS[like].input_shape(sizes, int(problem.get("batch", DEFAULT_BATCH)))
    limits.check_layer_check(like, {**sizes, **opts}, shape, int(problem["steps"]),
                             allow_large)


def _layer_defaults(like: str, sizes: dict[str, int]) -> dict[str, Any]:
    fam = family(like, "layer")
    return {k: v for k, v in torch_defaults(fam.build, 0).items()
            if k not in sizes and k not in _NOT_LAYER_OPTIONS}


def _layer_problem(like: str, sizes: dict[str, int], eff: dict[str, Any], steps: int,
                   batch: int, seed: int) -> _LayerProblem:
    fam, spec = family(like, "layer"), SPECS[like]
    ref = fam.build(**{**sizes, **accepted_options(fam.build, eff)})
    values = T.layer_values(ref, seed)
    shape = spec.input_shape(sizes, batch)
    ref.load_state_dict(values, strict=False)
    probe = ref(T.layer_problem(shape, (1,), 0, seed)[0][0])
    xs, douts = T.layer_problem(shape, probe.shape, steps, seed)
    xs = T.with_kinks(xs) if spec.kinks else xs
    tensors = {**{n: a.shape for n, a in values.items()},
               **{b: getattr(ref, b).shape for b in spec.buffers}}
    return _LayerProblem(sizes, _layer_defaults(like, sizes), values, xs, douts, tensors)


def layer_user_run(user: Any, like: str, options: dict[str, Any] | None, *, steps: int,
                   seed: int, batch: int = DEFAULT_BATCH) -> UserRun:
    """The user side of ``check_layer``: load, build, drive and record the user's layer."""
    family(like, "layer")  # an unknown family is refused before the user's code loads
    spec = SPECS[like]
    obj, subject, loader_notes, consts = load_subject(user)
    sizes, opts = _layer_sizes(like, options)
    defaults = _layer_defaults(like, sizes)
    up, var_kw = _user_layer_params(obj)
    naming = build_naming(up, var_kw, defaults, opts, like)
    eff = {**dict(spec.fixed), **naming.effective}
    pb = _layer_problem(like, sizes, eff, steps, batch, seed)
    if inspect.isfunction(obj):
        fwd, bwd = functional_pair(obj)
        u: Any = FunctionalLayer(fwd, bwd, pb.tensors, pb.values, naming.user_kwargs, pb.xs[0])
    else:
        built = build_user_layer(obj, sizes, naming.user_kwargs, pb.values, pb.xs[0])
        u = UserLayer(built, pb.tensors, pb.values, pb.xs[0])
    traj = T.user_layer_trajectory(u, pb.xs, pb.douts, spec.params, spec.buffers)
    return UserRun(traj, eff, list(naming.names), u.notes + naming.notes, loader_notes,
                   user_name(obj), subject, consts)


def layer_verdict(user: UserRun, like: str, options: dict[str, Any] | None, *, steps: int,
                  seed: int, oracle: str, thread_noise: bool,
                  batch: int = DEFAULT_BATCH) -> Diagnosis:
    """The verdict side of ``check_layer``: torch, the variants, the comparison."""
    c = start_verdict("layer", like, user, options, oracle, seed, thread_noise)
    fam, spec = c.fam, SPECS[like]
    sizes, _ = _layer_sizes(like, options)
    eff = user.options
    pb = _layer_problem(like, sizes, eff, steps, batch, seed)

    def run(o: dict[str, Any], v: Variant | None) -> list[Record] | None:
        if v is not None and not v.applies(o):
            return None
        kw = {**sizes, **accepted_options(fam.build, o)}
        m = fam.build(**kw) if v is None else v.build(kw)
        m.load_state_dict(pb.values, strict=False)
        return T.module_layer_trajectory(m, pb.xs, pb.douts, spec.buffers)

    def reference(o: dict[str, Any]) -> list[Record]:
        if c.oracle == "torch":
            from refbp.diagnose import torch_side

            m = fam.build(**{**sizes, **accepted_options(fam.build, o)})
            m.load_state_dict(pb.values, strict=False)
            return torch_side.layer_trajectory(m, pb.xs, pb.douts, spec.buffers)
        return run(o, None) or []

    describe = {"batching": f"{steps} batches of {batch}"}
    return refit(c, user.traj, eff, user.names, pb.defaults, _layer_variants(like), run,
                 reference,
                 lambda o: {**describe, "model": f"{like}({format_options({**sizes, **o})})"},
                 user.notes)


def loss_user_run(user: Any, like: str, options: dict[str, Any] | None, *, steps: int,
                  seed: int, batch: int = DEFAULT_BATCH) -> UserRun:
    """The user side of ``check_loss``: load, build, drive and record the user's loss."""
    fam = family(like, "loss")
    obj, subject, loader_notes, consts = load_subject(user)
    defaults = torch_defaults(fam.build, 0)
    up, var_kw = (signature_params(obj) if inspect.isclass(obj) else ({}, False))
    naming = build_naming(up, var_kw, defaults, dict(options or {}), like)
    data = T.loss_problem(like, steps, seed, batch)
    n_classes = data[0][0].shape[1] if like == "CrossEntropyLoss" else None
    u = build_user_loss(obj, naming.user_kwargs)
    traj = T.loss_trajectory(lambda p, t: u.value_and_grad(p, t, n_classes), data)
    return UserRun(traj, dict(naming.effective), list(naming.names), u.notes + naming.notes,
                   loader_notes, user_name(obj), subject, consts)


def loss_verdict(user: UserRun, like: str, options: dict[str, Any] | None, *, steps: int,
                 seed: int, oracle: str, thread_noise: bool,
                 batch: int = DEFAULT_BATCH) -> Diagnosis:
    """The verdict side of ``check_loss``: torch, the variants, the comparison."""
    c = start_verdict("loss", like, user, options, oracle, seed, thread_noise)
    fam = c.fam
    defaults = torch_defaults(fam.build, 0)
    eff = dict(user.options)
    data = T.loss_problem(like, steps, seed, batch)

    def run(o: dict[str, Any], v: Variant | None) -> list[Record] | None:
        if v is not None and not v.applies(o):
            return None
        fn = module_fn(fam.build(**accepted_options(fam.build, o))) if v is None else v.build(o)
        return T.loss_trajectory(fn, data)

    def reference(o: dict[str, Any]) -> list[Record]:
        if c.oracle == "torch":
            from refbp.diagnose import torch_side

            return torch_side.loss_trajectory(like, accepted_options(fam.build, o), data)
        return run(o, None) or []

    extra = {"log_eps": None} if like in _LOG_EPS_FAMILIES else {}
    if extra:
        eff.setdefault("log_eps", LOG_EPS)
    describe = {"batching": f"{steps} batches of {batch}"}
    return refit(c, user.traj, eff, user.names, {**defaults, **extra}, variants_for(like), run,
                 reference, lambda o: {**describe, "loss": f"{like}({format_options(o)})"},
                 user.notes)
