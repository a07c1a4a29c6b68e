"""``check_optimizer``, ``check_layer``, ``check_loss``: does user code follow torch's convention,
and if not, which catalogued convention does it follow?

Each check runs one deterministic problem (see :mod:`refbp.diagnose.trajectories`) through the
user's code, torch (``oracle="torch"``; ``oracle="refbp"`` uses refbp's torch-convention
implementation instead and never imports torch) and every variant of the family, in float64,
and returns a :class:`~refbp.diagnose.diagnosis.Diagnosis`.

Options are given once, under torch's names, and go to both sides; options torch does not
know (e.g. ``accumulation_steps`` for a loss) go to the user's code and the variants only.
With no options the user's constructor gets none (its own defaults apply) and torch uses its
defaults.

Every check has two halves: the *user side* (``*_user_run``) loads and drives the user's code
and returns a :class:`UserRun` of plain data (the trajectory's arrays, the options the code
took, notes); the *verdict side* (``*_verdict``) recomputes the same deterministic problem
and runs torch, the variants and the comparison. The public ``check_*`` functions
(:mod:`refbp.diagnose.api`) and ``refbp check-*`` put the halves together, the user side in a
child process (:mod:`refbp.diagnose.isolation`) when the user's code is a spec string.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from refbp.diagnose import trajectories as T
from refbp.diagnose.adapters import user_name
from refbp.diagnose.catalog import Variant, family, variants_for
from refbp.diagnose.diagnosis import Diagnosis, Record, Verdict, build_diagnosis
from refbp.diagnose.fit import Fitted, fit_constants
from refbp.diagnose.guard import guarded
from refbp.diagnose.loader import load
from refbp.diagnose.naming import literals, signature_params, source_of
from refbp.diagnose.optim_driver import lr_change_problem
from refbp.diagnose.optim_styles import make_optimizer_driver
from refbp.diagnose.spec import accepted_kwargs, format_options
from refbp.registry.optimizers import SWITCHES


def resolve_oracle(oracle: str) -> str:
    """``"auto"`` -> ``"torch"`` when torch is installed, else ``"refbp"``."""
    if oracle == "auto":
        try:
            return "torch" if importlib.util.find_spec("torch") is not None else "refbp"
        except ImportError:
            return "refbp"
    if oracle not in ("torch", "refbp"):
        raise ValueError(f"oracle must be 'torch', 'refbp' or 'auto', got {oracle!r}")
    return oracle


def _load(user: Any) -> tuple[Any, str, list[str]]:
    if isinstance(user, str):
        with guarded(user):  # no sys.exit, BaseException or argv parsing escapes the import
            loaded = load(user)
        return loaded.obj, user, loaded.notes
    return user, user_name(user), []


def accepted_options(cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``cls`` (refbp/torch) accepts."""
    ok = accepted_kwargs(cls)
    return dict(options) if ok is None else {k: v for k, v in options.items() if k in ok}


def _thread_noise(run: Any, wanted: bool, oracle: str) -> float | None:
    if not wanted or oracle != "torch":
        return None
    from refbp.diagnose.noise import thread_noise

    return thread_noise(run).normwise


def _build_variant(v: Variant, options: dict[str, Any], like: str, params: list[Any]) -> Any:
    return v.build(params, options, like)


LR_FACTOR = 0.5
"""The learning rate is multiplied by this half way through an optimizer check."""
_NOT_OPTIONS = ("maximize", *SWITCHES)


def torch_defaults(build: Any, skip: int) -> dict[str, Any]:
    """The hyperparameters of a refbp (= torch) class and their defaults."""
    params, _ = signature_params(build, skip)
    return {k: v for k, v in params.items()
            if k not in _NOT_OPTIONS and v is not inspect.Parameter.empty}


def constants_phrase(fitted: list[Fitted], explicit: dict[str, Any]) -> tuple[str, str, list[str]]:
    """``(" with eps=1e-07 (torch default 1e-08)", mismatch, notes)``; the mismatch sentence is
    non-empty when a fitted constant overrides an option that was asked for."""
    if not fitted:
        return "", "", []
    text = " with " + ", ".join(f.describe() for f in fitted)
    notes = [f"{f.option}={f.value!r} is a constant written in your code (not a parameter), "
             "found by fitting" for f in fitted]
    ignored = [f for f in fitted if f.option in explicit and explicit[f.option] != f.value]
    mismatch = "; ".join(f"your code ignores {f.option}={explicit[f.option]!r} and uses "
                         f"{f.value!r}" for f in ignored)
    return text, mismatch, notes


@dataclass
class UserRun:
    """What the user's code produced, as plain data: all the verdict side needs from it.

    ``traj``: the user's trajectory (step, tensor, array); ``options``: the options both sides
    run with (torch names); ``names``: the torch options the user's code takes; ``notes``:
    adapter notes; ``loader_notes``: what loading the file skipped; ``label``: the user's
    class or function name; ``subject``: the spec as given; ``literals``: the numeric
    constants written in its source (candidates for fitting); ``untested``: why conventions
    that need a learning-rate change could not be tested; ``lrs``: the learning rate of every
    step (optimizers).
    """

    traj: list[Record]
    options: dict[str, Any]
    names: list[str]
    notes: list[str]
    loader_notes: list[str]
    label: str
    subject: str
    literals: list[float]
    untested: str = ""
    lrs: list[float] = field(default_factory=list)


@dataclass
class _Check:
    """What the three checks share: the family, oracle, the user's label and options, and the
    final comparison of the user's trajectory with the reference and the variants."""

    kind: str
    like: str
    fam: Any
    oracle: str
    label: str
    subject: str
    opts: dict[str, Any]
    seed: int
    thread_noise: bool
    notes: list[str]
    literals: list[float]

    def diagnose(self, user: list[Record], reference: Callable[[], list[Record]],
                 variants: list[tuple[Variant, list[Record] | None]], notes: list[str],
                 describe: dict[str, str], fitted: list[Fitted] | None = None,
                 untested_reason: str = "", eps: Any = None) -> Diagnosis:
        """Run ``reference()`` (and torch against itself with 2 threads, when asked); explain.
        ``eps`` is the value written for "eps" in the matched convention's description."""
        consts, mismatch, fit_notes = constants_phrase(
            [f for f in fitted or [] if f.default is not None], self.opts)
        verdict = Verdict(self.label, self.like, self.oracle, consts,
                          untested_reason=untested_reason,
                          eps="" if eps is None else f"{eps:g}")
        return build_diagnosis(kind=self.kind, like=self.like, subject=self.subject,
                               options=self.opts, oracle=self.oracle, user=user,
                               ref=reference(), variants=variants,
                               notes=self.notes + notes + fit_notes,
                               seed=self.seed, describe=describe,
                               thread_noise=_thread_noise(reference, self.thread_noise,
                                                          self.oracle),
                               verdict=verdict, mismatch=mismatch)


def load_subject(user: Any) -> tuple[Any, str, list[str], list[float]]:
    """The user's object, the spec as given, the loader's notes and the source's constants."""
    obj, subject, notes = _load(user)
    return obj, subject, notes, literals(source_of(obj))


def start_verdict(kind: str, like: str, run: UserRun, options: dict[str, Any] | None,
                  oracle: str, seed: int, thread_noise: bool) -> _Check:
    """Prepare the verdict side of one check of ``kind`` against torch's ``like``."""
    return _Check(kind, like, family(like, kind), resolve_oracle(oracle), run.label,
                  run.subject, dict(options or {}), seed, thread_noise, run.loader_notes,
                  run.literals)


def optimizer_user_run(user: Any, like: str, options: dict[str, Any] | None, *, steps: int,
                       seed: int, lr_factor: float | None = LR_FACTOR) -> UserRun:
    """The user side of ``check_optimizer``: load, drive and record the user's code."""
    fam = family(like, "optimizer")
    obj, subject, loader_notes, consts = load_subject(user)
    params, grads = T.optimizer_problem(seed, steps, like)
    defaults = torch_defaults(fam.build, 1)
    factory = make_optimizer_driver(obj, like, params, dict(options or {}), defaults, grads[0])
    drv = factory()
    opts = dict(drv.naming.effective)
    lr0 = float(opts.get("lr", defaults["lr"]))
    untested = ""
    if lr_factor is not None:
        why = lr_change_problem(factory, grads[0], lr0 * lr_factor)
        if why is not None:
            untested, lr_factor = why, None
    lrs = T.lr_schedule(lr0, steps, lr_factor)
    traj = T.user_optimizer_trajectory(drv, grads, lrs, averages=True)
    return UserRun(traj, opts, list(drv.naming.names), list(drv.notes), loader_notes,
                   user_name(obj), subject, consts, untested, lrs)


def optimizer_verdict(user: UserRun, like: str, options: dict[str, Any] | None, *, steps: int,
                      seed: int, oracle: str, thread_noise: bool) -> Diagnosis:
    """The verdict side of ``check_optimizer``: torch, the variants, the comparison."""
    c = start_verdict("optimizer", like, user, options, oracle, seed, thread_noise)
    fam, oracle = c.fam, c.oracle
    params, grads = T.optimizer_problem(seed, steps, like)
    defaults = torch_defaults(fam.build, 1)
    lrs = user.lrs
    info = T.family_info(like)
    sparse = info is not None and info.sparse_grads
    states = tuple(k for k in T.AVERAGE_KEYS if any(t.endswith(f":{k}") and
                                                    t.startswith("state:")
                                                    for _, t, _ in user.traj))

    def run(o: dict[str, Any], v: Variant | None) -> list[Record] | None:
        if v is not None and not v.applies(o):
            return None
        make = (partial(_build_variant, v, o, like) if v is not None else
                lambda ps: fam.build(ps, **accepted_options(fam.build, o)))
        return T.refbp_optimizer_trajectory(make, params, grads, lrs, sparse=sparse,
                                            states=states)

    def reference(o: dict[str, Any]) -> list[Record]:
        if oracle == "torch":
            from refbp.diagnose import torch_side

            return torch_side.optimizer_trajectory(like, accepted_options(fam.build, o),
                                                   params, grads, lrs, sparse=sparse,
                                                   states=states)
        return run(o, None) or []

    def describe(o: dict[str, Any]) -> dict[str, str]:
        return {"model": f"MLP parameters ({', '.join(params)})",
                "batching": "synthetic " + ("row-sparse " if sparse else "") + "gradients",
                "optimizer": f"{like}({format_options(o)})"}

    return refit(c, user.traj, user.options, user.names, defaults, variants_for(like), run,
                 reference, describe, user.notes, user.untested)


def refit(c: _Check, user_traj: list[Record], opts: dict[str, Any], names: Collection[str],
          defaults: dict[str, Any], variants: list[Variant],
          run: Callable[[dict[str, Any], Variant | None], list[Record] | None],
          reference: Callable[[dict[str, Any]], list[Record]],
          describe: Callable[[dict[str, Any]], dict[str, str]], notes: list[str],
          untested: str = "") -> Diagnosis:
    """Diagnose with the options ``opts``; when neither torch nor a variant explains the user's
    trajectory, fit the constants the user's code does not take as parameters
    (:mod:`refbp.diagnose.fit`) and diagnose again with the fitted value."""

    def evaluate(o: dict[str, Any], fitted: list[Fitted]) -> Diagnosis:
        vs = [(v, run(o, v)) for v in variants]
        return c.diagnose(user_traj, lambda: reference(o), vs, notes, describe(o), fitted,
                          untested, o.get("log_eps"))

    d = evaluate(opts, [])
    if d.matches_torch or d.matched_variant is not None:
        return d
    hard = {k: v for k, v in defaults.items() if k not in names}
    fitted, _ = fit_constants(user_traj, opts, hard, c.literals, variants, run)
    if not fitted:
        return d
    return evaluate({**opts, fitted[0].option: fitted[0].value}, fitted)
