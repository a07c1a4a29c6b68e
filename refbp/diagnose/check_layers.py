"""``check_layer`` and ``check_loss``: a user's layer or loss against ``torch.nn`` and the
catalogued conventions (see :mod:`refbp.diagnose.check`)."""

from __future__ import annotations

import inspect
from typing import Any

from refbp.diagnose import trajectories as T
from refbp.diagnose.adapters_layer import ALIASES
from refbp.diagnose.catalog import Variant, variants_for
from refbp.diagnose.catalog.layer import SPECS, batchnorm_combinations
from refbp.diagnose.catalog.loss import LOG_EPS, module_fn
from refbp.diagnose.check import accepted_options, refit, start_check, torch_defaults
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


def check_layer(user: Any, like: str = "Linear", options: dict[str, Any] | None = None, *,
                steps: int = 3, batch: int = 8, seed: int = 0, oracle: str = "auto",
                thread_noise: bool = False) -> Diagnosis:
    """Check a user layer (forward, backward, parameter gradients, buffers) against
    ``torch.nn.<like>`` and the catalogued variants.

    Sizes default to ``in_features=4, out_features=3`` (Linear), ``num_features=4``
    (BatchNorm1d) and 5 features (activations) and can be overridden in ``options``. The user
    layer is built from the parameter arrays, its own size names or positional sizes, or no
    arguments (see :mod:`refbp.diagnose.layer_styles`); its parameters are then set to the
    same seeded values as torch's. Its running statistics are read, never set.
    """
    c = start_check("layer", like, user, options, oracle, seed, thread_noise)
    fam, spec = c.fam, SPECS[like]
    opts = dict(c.opts)
    sizes = {k: int(opts.pop(k, v)) for k, v in spec.sizes.items()}
    defaults = {k: v for k, v in torch_defaults(fam.build, 0).items()
                if k not in sizes and k not in _NOT_LAYER_OPTIONS}
    up, var_kw = _user_layer_params(c.obj)
    naming = build_naming(up, var_kw, defaults, opts, like)
    eff = {**dict(spec.fixed), **naming.effective}
    ref = fam.build(**{**sizes, **accepted_options(fam.build, eff)})
    values = T.layer_values(ref, seed)
    shape = spec.input_shape(sizes, batch)
    ref.load_state_dict(values, strict=False)
    probe = ref(T.layer_problem(shape, (1,), 0, seed)[0][0])
    xs, douts = T.layer_problem(shape, probe.shape, steps, seed)
    xs = T.with_kinks(xs) if spec.kinks else xs
    tensors = {**{n: a.shape for n, a in values.items()},
               **{b: getattr(ref, b).shape for b in spec.buffers}}
    if inspect.isfunction(c.obj):
        fwd, bwd = functional_pair(c.obj)
        u: Any = FunctionalLayer(fwd, bwd, tensors, values, naming.user_kwargs, xs[0])
    else:
        obj = build_user_layer(c.obj, sizes, naming.user_kwargs, values, xs[0])
        u = UserLayer(obj, tensors, values, xs[0])
    user_traj = T.user_layer_trajectory(u, xs, douts, spec.params, spec.buffers)

    def run(o: dict[str, Any], v: Variant | None) -> list[Record] | None:
        if v is not None and not v.applies(o):
            return None
        kw = {**sizes, **accepted_options(fam.build, o)}
        m = fam.build(**kw) if v is None else v.build(kw)
        m.load_state_dict(values, strict=False)
        return T.module_layer_trajectory(m, xs, douts, spec.buffers)

    def reference(o: dict[str, Any]) -> list[Record]:
        if c.oracle == "torch":
            from refbp.diagnose import torch_side

            m = fam.build(**{**sizes, **accepted_options(fam.build, o)})
            m.load_state_dict(values, strict=False)
            return torch_side.layer_trajectory(m, xs, douts, spec.buffers)
        return run(o, None) or []

    describe = {"batching": f"{steps} batches of {batch}"}
    return refit(c, user_traj, eff, naming, defaults, _layer_variants(like), run, reference,
                 lambda o: {**describe, "model": f"{like}({format_options({**sizes, **o})})"},
                 u.notes + naming.notes)


def check_loss(user: Any, like: str = "MSELoss", options: dict[str, Any] | None = None, *,
               steps: int = 3, batch: int = 8, seed: int = 0, oracle: str = "auto",
               thread_noise: bool = False) -> Diagnosis:
    """Check a user loss (value and d loss / d prediction) against ``torch.nn.<like>`` and
    the catalogued variants (``"MSELoss"``, ``"CrossEntropyLoss"`` or ``"BCELoss"``); see
    :mod:`refbp.diagnose.loss_styles` for the accepted styles."""
    c = start_check("loss", like, user, options, oracle, seed, thread_noise)
    fam = c.fam
    defaults = torch_defaults(fam.build, 0)
    up, var_kw = (signature_params(c.obj) if inspect.isclass(c.obj) else ({}, False))
    naming = build_naming(up, var_kw, defaults, c.opts, like)
    eff = dict(naming.effective)
    data = T.loss_problem(like, steps, seed, batch)
    n_classes = data[0][0].shape[1] if like == "CrossEntropyLoss" else None
    u = build_user_loss(c.obj, naming.user_kwargs)
    user_traj = T.loss_trajectory(lambda p, t: u.value_and_grad(p, t, n_classes), data)

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
    return refit(c, user_traj, eff, naming, {**defaults, **extra}, variants_for(like), run,
                 reference, lambda o: {**describe, "loss": f"{like}({format_options(o)})"},
                 u.notes + naming.notes)
