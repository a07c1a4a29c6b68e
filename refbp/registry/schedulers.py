"""The lr schedulers of refbp, each declared once (no NumPy-side or torch import).

A :class:`SchedulerInfo` names the scheduler (``refbp.optim.lr_scheduler.<name>`` and
``torch.optim.lr_scheduler.<name>``; ``swa_utils`` for ``SWALR``), says what it does in one
line, declares its constructor arguments after ``optimizer`` with torch's names, order and
defaults (``hyperparameters``: checked against the refbp class by
``tests/test_registry_optim.py`` and against torch's by
``parity_tests/test_defaults_parity.py``), and lists the scenarios the quick suite runs it in:
the arguments of its ``defaults-*`` scenario (the required ones only, every other argument takes
each library's own default), its option sets (``sched-*``, SGD with momentum on a linear model)
and the option sets also stepped with an explicit epoch (``sched-epoch-*``, torch's deprecated
``step(epoch)``). A scheduler that wraps others names them with :class:`Sub`; a ``LambdaLR`` /
``MultiplicativeLR`` names its function from ``refbp.parity.lr_lambdas``.

Built from these declarations: the scheduler scenarios of the quick suite
(``refbp.parity`` option and defaults scenarios) and the registry test that fails when a
declared scheduler is missing from ``refbp.optim.lr_scheduler``, the suite or the docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from refbp.registry.opinfo import REQUIRED
from refbp.registry.optimizers import Hyper, signature_text
from refbp.registry.table import by_name, lookup


class Sub(NamedTuple):
    """A scheduler inside another one's arguments (``SequentialLR(schedulers=[...])``)."""

    type: str
    options: Mapping[str, Any] = MappingProxyType({})


class SchedulerOptions(NamedTuple):
    """One option set: the scenario ``sched-<id>`` (and ``sched-epoch-<id>`` when
    ``epoch_stride`` is set: stepped with ``step(epoch)``, epochs ``stride`` apart)."""

    id: str
    options: Mapping[str, Any]
    epoch_stride: float | None = None
    epoch_only: bool = False


class SchedulerCheck(NamedTuple):
    """One case of the parity test (``parity_tests/test_lr_scheduler_parity.py``): 300 steps
    of an optimizer with two param groups (lr 0.1 and 0.03) against torch, every group's lr,
    the momentum (SGD) or beta1 (Adam) and the state dict; named ``<name>`` (``id`` empty) or
    ``<name>-<id>``."""

    id: str
    options: Mapping[str, Any]
    optimizer: str = "SGD"

    def label(self, name: str) -> str:
        """The case's name."""
        return f"{name}-{self.id}" if self.id else name


class SchedulerInfo(NamedTuple):
    """One lr scheduler, declared once.

    Attributes
    ----------
    name:
        The class name in ``refbp.optim.lr_scheduler`` and ``torch.optim.lr_scheduler``.
    summary:
        One line for the docs.
    defaults:
        The arguments of the ``defaults-<name>`` scenario (only the required ones); ``None``
        when the scheduler has none, with the reason in ``no_defaults``.
    option_sets:
        The ``sched-*`` / ``sched-epoch-*`` scenarios, in order.
    no_defaults:
        Why there is no ``defaults-<name>`` scenario (``defaults`` is None).
    hyperparameters:
        torch's constructor arguments after ``optimizer``, in order, with torch's defaults
        (:data:`~refbp.registry.opinfo.REQUIRED` for none).
    checks:
        The cases of the 300-step parity test (:class:`SchedulerCheck`), the first with only
        the required arguments where the scheduler has any default.
    steps_on_metric:
        ``step(metric)``: stepped with the loss (``ReduceLROnPlateau``).
    optimizer_first:
        The constructor starts with ``optimizer`` and ``hyperparameters`` are the arguments
        after it; False: they are all of them (``ChainedScheduler(schedulers,
        optimizer=None)``).
    module:
        The module of ``refbp.optim`` and of ``torch.optim`` that holds the class:
        ``lr_scheduler``, or ``swa_utils`` (``SWALR``).
    """

    name: str
    summary: str
    defaults: Mapping[str, Any] | None = MappingProxyType({})
    option_sets: tuple[SchedulerOptions, ...] = ()
    no_defaults: str = ""
    hyperparameters: tuple[Hyper, ...] = ()
    checks: tuple[SchedulerCheck, ...] = ()
    steps_on_metric: bool = False
    optimizer_first: bool = True
    module: str = "lr_scheduler"

    def signature(self) -> str:
        """``"(step_size, gamma=0.1, last_epoch=-1)"``: the constructor after ``optimizer``."""
        return signature_text(self.hyperparameters)

    def required(self) -> list[str]:
        """The constructor arguments without a default."""
        return [h.name for h in self.hyperparameters if h.default is REQUIRED]


def _checked(s: SchedulerInfo) -> SchedulerInfo:
    """``s``, after checking what a declaration must say (a slip raises at import): its
    arguments; the required ones in its defaults scenario;
    why it has no defaults scenario, and only then."""
    if (s.defaults is None) != bool(s.no_defaults):
        raise ValueError(f"{s.name}: a scheduler without a defaults scenario says why "
                         "(no_defaults), and only then")
    if not s.hyperparameters:
        raise ValueError(f"{s.name}: declare torch's constructor arguments after optimizer "
                         "(hyperparameters=...)")
    if not s.checks:
        raise ValueError(f"{s.name}: declare the cases of the parity test (checks=...)")
    missing = set(s.required()) - set(s.defaults or {})
    if s.defaults is not None and missing:
        raise ValueError(f"{s.name}: the defaults scenario leaves out required {sorted(missing)}")
    return s


def args(*required: str, **defaults: Any) -> tuple[Hyper, ...]:
    """Constructor arguments after ``optimizer``: the required ones, then those with a default,
    in torch's order (``args("step_size", gamma=0.1, last_epoch=-1)``)."""
    return (*(Hyper(n) for n in required), *(Hyper(n, d) for n, d in defaults.items()))


Opt = SchedulerOptions
C = SchedulerCheck
_LAST = {"last_epoch": -1}
_PLATEAU = {"factor": 0.5, "patience": 1, "threshold": 0.5}

SCHEDULERS: tuple[SchedulerInfo, ...] = (
    SchedulerInfo("StepLR", "multiply by gamma every step_size epochs", {"step_size": 3},
                  (Opt("steplr", {"step_size": 3, "gamma": 0.5}, 1, epoch_only=True),),
                  hyperparameters=args("step_size", gamma=0.1, **_LAST),
                  checks=(C("", {"step_size": 7, "gamma": 0.5}),
                          C("default-gamma", {"step_size": 30}))),
    SchedulerInfo("MultiStepLR", "multiply by gamma at each milestone", {"milestones": [3, 7]},
                  (Opt("multistep", {"milestones": [3, 7], "gamma": 0.5}, 1),),
                  hyperparameters=args("milestones", gamma=0.1, **_LAST),
                  checks=(C("", {"milestones": [10, 50, 200], "gamma": 0.3}),
                          C("repeated", {"milestones": [50, 10, 50], "gamma": 0.5}))),
    SchedulerInfo("ConstantLR", "a constant factor until total_iters", {},
                  (Opt("constant", {"factor": 0.5, "total_iters": 4}, 1),),
                  hyperparameters=args(factor=1 / 3, total_iters=5, **_LAST),
                  checks=(C("", {}), C("long", {"factor": 0.25, "total_iters": 100}))),
    SchedulerInfo("LinearLR", "a factor moving linearly over total_iters", {},
                  (Opt("linear", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 6}, 1),),
                  hyperparameters=args(start_factor=1 / 3, end_factor=1.0, total_iters=5,
                                       **_LAST),
                  checks=(C("", {}),
                          C("decay", {"start_factor": 1.0, "end_factor": 0.05,
                                      "total_iters": 120}))),
    SchedulerInfo("ExponentialLR", "multiply by gamma every epoch", {"gamma": 0.8},
                  (Opt("exponential", {"gamma": 0.8}, 1),),
                  hyperparameters=args("gamma", **_LAST),
                  checks=(C("", {"gamma": 0.98}),)),
    SchedulerInfo("PolynomialLR", "polynomial decay to zero over total_iters", {},
                  (Opt("polynomial", {"total_iters": 8, "power": 2.0}, 1),),
                  hyperparameters=args(total_iters=5, power=1.0, **_LAST),
                  checks=(C("", {}), C("power", {"total_iters": 200, "power": 1.7}))),
    SchedulerInfo("CosineAnnealingLR", "cosine annealing to eta_min over T_max", {"T_max": 4},
                  (Opt("cosine-etamin", {"T_max": 4, "eta_min": 0.01}, 1),),
                  hyperparameters=args("T_max", eta_min=0.0, **_LAST),
                  checks=(C("", {"T_max": 300}), C("periodic", {"T_max": 40, "eta_min": 1e-3}),
                          C("odd", {"T_max": 7, "eta_min": 0.01}))),
    SchedulerInfo("CosineAnnealingWarmRestarts", "cosine annealing with warm restarts (SGDR)",
                  {"T_0": 3},
                  (Opt("warm-restarts", {"T_0": 3, "T_mult": 2, "eta_min": 0.01}, 0.5),
                   Opt("warm-restarts-mult3", {"T_0": 2, "T_mult": 3, "eta_min": 0.01}, 0.5)),
                  hyperparameters=args("T_0", T_mult=1, eta_min=0.0, **_LAST),
                  checks=(C("", {"T_0": 25}),
                          C("mult", {"T_0": 10, "T_mult": 2, "eta_min": 1e-4}))),
    SchedulerInfo("ReduceLROnPlateau", "multiply by factor when the loss stops improving", {},
                  (Opt("plateau", _PLATEAU),
                   Opt("plateau-abs", {"factor": 0.5, "patience": 1, "threshold": 0.05,
                                     "threshold_mode": "abs"}),
                   Opt("plateau-max", {"mode": "max", **_PLATEAU, "threshold_mode": "abs"}),
                   Opt("plateau-max-rel", {"mode": "max", **_PLATEAU}),
                   Opt("plateau-abs-wide", {**_PLATEAU, "threshold_mode": "abs"}),
                   Opt("plateau-eps", {"factor": 0.5, "patience": 0, "threshold": 0.5,
                                       "eps": 0.02})),
                  hyperparameters=args(mode="min", factor=0.1, patience=10, threshold=1e-4,
                                       threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8),
                  checks=(C("", {}),
                          C("max-abs-cooldown", {"mode": "max", "factor": 0.5, "patience": 3,
                                                 "threshold": 1e-3, "threshold_mode": "abs",
                                                 "cooldown": 4}),
                          C("min-lr-eps", {"factor": 0.5, "patience": 2, "min_lr": [0.01, 0.0],
                                           "eps": 1e-3, "threshold": 0.05})), steps_on_metric=True),
    SchedulerInfo("SequentialLR", "run schedulers one after another at milestones", None,
                  (Opt("sequential", {"schedulers": [
                      Sub("ConstantLR", {"factor": 0.5, "total_iters": 2}),
                      Sub("ExponentialLR", {"gamma": 0.8}),
                      Sub("CosineAnnealingLR", {"T_max": 3})], "milestones": [3, 7]}),),
                  no_defaults="its schedulers and milestones are required",
                  hyperparameters=args("schedulers", "milestones", **_LAST),
                  checks=(C("", {"schedulers": [
                              Sub("LinearLR", {"start_factor": 0.1, "total_iters": 20}),
                              Sub("CosineAnnealingLR", {"T_max": 100}),
                              Sub("ExponentialLR", {"gamma": 0.99})], "milestones": [20, 150]}),
                          C("warmup", {"schedulers": [
                              Sub("ConstantLR", {"factor": 0.5, "total_iters": 10}),
                              Sub("StepLR", {"step_size": 25, "gamma": 0.7})],
                                      "milestones": [10]}))),
    SchedulerInfo("LambdaLR", "base lr times a function of the epoch",
                  {"lr_lambda": "inverse_sqrt"},
                  (Opt("lambda", {"lr_lambda": "warmup"}),),
                  hyperparameters=args("lr_lambda", **_LAST),
                  checks=(C("", {"lr_lambda": "exponential"}),
                          C("per-group", {"lr_lambda": ["inverse_time", "sawtooth"]}))),
    SchedulerInfo("MultiplicativeLR", "multiply by a function of the epoch", None,
                  (Opt("multiplicative", {"lr_lambda": "decay"}),),
                  no_defaults="its lr_lambda is required and LambdaLR's defaults scenario "
                  "covers the other argument",
                  hyperparameters=args("lr_lambda", **_LAST),
                  checks=(C("", {"lr_lambda": "decay"}),)),
    SchedulerInfo("OneCycleLR", "the 1cycle policy (lr and momentum)",
                  {"max_lr": 0.1, "total_steps": 12},
                  (Opt("onecycle-linear", {"max_lr": 0.2, "total_steps": 12,
                                         "anneal_strategy": "linear", "three_phase": True}),),
                  hyperparameters=args("max_lr", total_steps=None, epochs=None,
                                       steps_per_epoch=None, pct_start=0.3,
                                       anneal_strategy="cos", cycle_momentum=True,
                                       base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                                       final_div_factor=1e4, three_phase=False, **_LAST),
                  checks=(C("", {"max_lr": [1.0, 0.5], "total_steps": 300}),
                          C("linear-3phase", {"max_lr": 1.0, "epochs": 10, "steps_per_epoch": 31,
                                              "pct_start": 0.25, "anneal_strategy": "linear",
                                              "three_phase": True}),
                          C("no-momentum", {"max_lr": 0.4, "total_steps": 320,
                                            "cycle_momentum": False, "div_factor": 10.0,
                                            "final_div_factor": 100.0}),
                          C("betas", {"max_lr": 0.01, "total_steps": 300,
                                      "base_momentum": [0.8, 0.7], "max_momentum": 0.9},
                            optimizer="Adam"))),
    SchedulerInfo("CyclicLR", "cycle between base_lr and max_lr (and momentum the other way)",
                  {"base_lr": 0.01, "max_lr": 0.1},
                  (Opt("cyclic", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3}),
                   Opt("cyclic-triangular2", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2,
                                              "step_size_down": 3, "mode": "triangular2"}),
                   Opt("cyclic-exp-range", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2,
                                            "mode": "exp_range", "gamma": 0.9,
                                            "base_momentum": 0.6, "max_momentum": 0.95}),
                   Opt("cyclic-no-momentum", {"base_lr": 0.02, "max_lr": 0.05,
                                              "step_size_up": 4, "cycle_momentum": False})),
                  hyperparameters=args("base_lr", "max_lr", step_size_up=2000,
                                       step_size_down=None, mode="triangular", gamma=1.0,
                                       scale_fn=None, scale_mode="cycle", cycle_momentum=True,
                                       base_momentum=0.8, max_momentum=0.9, **_LAST),
                  checks=(C("", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 20}),
                          C("triangular2", {"base_lr": [0.01, 0.005], "max_lr": [0.1, 0.2],
                                            "step_size_up": 15, "step_size_down": 25,
                                            "mode": "triangular2"}),
                          C("exp_range", {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 11,
                                          "mode": "exp_range", "gamma": 0.995,
                                          "base_momentum": 0.7, "max_momentum": 0.95}),
                          C("betas", {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 9,
                                      "base_momentum": [0.8, 0.75], "max_momentum": 0.9},
                            optimizer="Adam"))),
    SchedulerInfo("ChainedScheduler", "step several schedulers together (their factors "
                  "multiply)", None,
                  (Opt("chained", {"schedulers": [
                      Sub("ConstantLR", {"factor": 0.5, "total_iters": 3}),
                      Sub("ExponentialLR", {"gamma": 0.9})]}),
                   Opt("chained-single", {"schedulers": [Sub("ExponentialLR", {"gamma": 0.8})]})),
                  no_defaults="its schedulers are required",
                  hyperparameters=args("schedulers", optimizer=None),
                  checks=(C("", {"schedulers": [Sub("ConstantLR", {"factor": 0.5,
                                                                    "total_iters": 30}),
                                                Sub("ExponentialLR", {"gamma": 0.99})]}),
                          C("cosine", {"schedulers": [
                              Sub("LinearLR", {"start_factor": 0.2, "total_iters": 40}),
                              Sub("CosineAnnealingLR", {"T_max": 60, "eta_min": 1e-3})]})),
                  optimizer_first=False),
    SchedulerInfo("SWALR", "anneal each group's lr to its swa_lr over anneal_epochs, then "
                  "hold it (stochastic weight averaging)", {"swa_lr": 0.05},
                  (Opt("swalr", {"swa_lr": 0.02, "anneal_epochs": 3}),
                   Opt("swalr-linear", {"swa_lr": 0.05, "anneal_epochs": 4,
                                        "anneal_strategy": "linear"}),
                   Opt("swalr-no-anneal", {"swa_lr": 0.02, "anneal_epochs": 0})),
                  hyperparameters=args("swa_lr", anneal_epochs=10, anneal_strategy="cos",
                                       **_LAST),
                  checks=(C("", {"swa_lr": 0.05}),
                          C("linear", {"swa_lr": [0.05, 0.01], "anneal_epochs": 40,
                                       "anneal_strategy": "linear"}),
                          C("short", {"swa_lr": 0.02, "anneal_epochs": 5})),
                  module="swa_utils"),
)

SCHEDULER_MODULES: tuple[str, ...] = tuple(dict.fromkeys(s.module for s in SCHEDULERS))
"""The modules of ``refbp.optim`` and ``torch.optim`` that hold the declared schedulers, in
the order a scheduler's name is looked up in them."""

_BY_NAME = by_name(((s.name, _checked(s)) for s in SCHEDULERS), "lr scheduler")


def scheduler(name: str) -> SchedulerInfo:
    """The declaration of the lr scheduler called ``name`` (KeyError listing the declared ones)."""
    return lookup(_BY_NAME, name, "lr scheduler")


def steps_on_metric(obj: Any) -> bool:
    """Whether the lr scheduler ``obj`` (refbp's or torch's) is stepped with the loss
    (``step(metric)``), as its declaration says (:attr:`SchedulerInfo.steps_on_metric`; the
    class name is the declared name). KeyError for an undeclared scheduler."""
    return scheduler(type(obj).__name__).steps_on_metric


def names() -> list[str]:
    """The declared scheduler names, in declaration order."""
    return list(_BY_NAME)


def listing() -> list[str]:
    """``refbp list --optimizers`` (schedulers part): what each scheduler does and its
    scenarios."""
    out = []
    for s in SCHEDULERS:
        defaults = ("none: " + s.no_defaults if s.defaults is None
                    else ", ".join(f"{k}={v!r}" for k, v in s.defaults.items()) or "no argument")
        sets = [f"{o.id}" + (f" (epochs {o.epoch_stride:g} apart)" if o.epoch_stride else "")
                for o in s.option_sets]
        out.append(f"{s.name}: {s.summary}")
        out.append(f"    {s.name}{s.signature()}")
        out.append(f"    defaults scenario: {defaults}; option sets {', '.join(sets)}")
    return out
