"""The optimizers of refbp, each declared once (no NumPy-side or torch import).

An :class:`OptimInfo` says everything refbp knows about one optimizer besides its update
rule: torch's class (``torch.optim.<name>``, the same name as ``refbp.optim.<name>``), the
hyperparameters with torch's names, defaults and order and the spellings user code writes for
them (``learning_rate``, ``eta``, ``b1, b2``...), the per-parameter state keys, the option
sets the checks run (this table plays the part of torch's ``optim_db``), the quick suite's
training runs, the torch keywords refbp does not take, and the explain-mode families.

Built from these declarations and nowhere else: the ``state_keys`` of the ``refbp.optim``
classes, the converters' accepted keywords (``refbp.mirror.optim``), the option-set table
(``refbp.parity.optim_cases``), the quick suite's optimizer scenarios (training,
``maximize-*``, ``defaults-*``), the float32 tolerance exceptions of the suites, the
judging's wording for optimizers that divide by a running RMS, the ``check-optimizer``
families and ``--like`` help, the explain mode's hyperparameter spellings, the docs table of
``refbp.optim`` and the parametrized unit and parity tests. ``tests/test_registry_optim.py``
fails when a declared optimizer is missing from any of them; CONTRIBUTING.md ("Add an
optimizer or lr scheduler") lists the files in order.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from refbp.registry.opinfo import REQUIRED
from refbp.registry.table import by_name, lookup

# -- the spellings of hyperparameters in user code (explain mode) ------------------------------
_LR = ("lr", "learning_rate", "eta", "step_size", "lr_rate", "learningrate", "alpha")
_EPS = ("eps", "epsilon", "delta", "fuzz_factor", "e")
_WD = ("weight_decay", "wd", "l2", "l2_reg", "lambd", "lambda_", "weight_decay_rate")
_DECAY = ("alpha", "rho", "decay_rate", "gamma", "beta", "beta2", "decay")

#: torch name -> the names (one, or two for a pair such as ``betas``) user code writes for it,
#: in the order the explain mode tries them. A declaration can leave spellings out where they
#: mean something else in that optimizer (:attr:`Hyper.not_aliases`).
SPELLINGS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "lr": tuple((n,) for n in _LR),
    "betas": (("betas",), ("beta1", "beta2"), ("b1", "b2"), ("beta_1", "beta_2"),
              ("decay1", "decay2"), ("rho1", "rho2"), ("beta_m", "beta_v")),
    "eps": tuple((n,) for n in _EPS),
    "weight_decay": tuple((n,) for n in _WD),
    "momentum": (("momentum",), ("mu",), ("beta",), ("gamma",), ("momentum_rate",)),
    "alpha": tuple((n,) for n in _DECAY),
    "rho": tuple((n,) for n in _DECAY if n != "alpha"),
    "nesterov": (("nesterov",), ("use_nesterov",)),
    "etas": (("etas",), ("etaminus", "etaplus"), ("eta_minus", "eta_plus"),
             ("eta_neg", "eta_pos")),
    "step_sizes": (("step_sizes",), ("step_size_min", "step_size_max"),
                   ("delta_min", "delta_max")),
}

#: torch keywords that select an implementation, not the mathematics. refbp always follows
#: torch's single-tensor code path (``foreach=False``); its optimizers accept the keywords
#: their torch class takes (``OptimInfo.torch_only``) as keyword arguments: ``foreach`` and
#: ``fused`` with any value (the same update rule; torch's multi-tensor and fused kernels
#: evaluate it in another order, so torch itself differs from its single-tensor path in the
#: last bits), ``capturable`` and ``differentiable`` only as ``False`` (``True`` is refused:
#: refbp has no CUDA graphs and no autograd through the step). They are kept in the param
#: groups with torch's defaults (:data:`SWITCH_DEFAULTS`), so that ``param_groups`` and
#: ``state_dict()`` hold torch's keys and values.
SWITCHES: Mapping[str, str] = {
    "foreach": "refbp always runs torch's single-tensor path (foreach=False)",
    "fused": "no fused kernels in NumPy",
    "capturable": "CUDA-graph capture; refbp computes on the CPU in NumPy",
    "differentiable": "autograd through the step; refbp's optimizers are not differentiated",
}

#: torch's default of each switch, as its param groups hold it.
SWITCH_DEFAULTS: Mapping[str, Any] = {"foreach": None, "fused": None, "capturable": False,
                                      "differentiable": False}

#: The switches accepted only as ``False`` (or None), with the reason given when refused.
REFUSED_SWITCHES: Mapping[str, str] = {
    "capturable": "refbp computes on the CPU in NumPy, without CUDA graphs",
    "differentiable": "refbp's optimizers are not differentiated (no autograd through step)",
}


#: An empty, read-only mapping: the default of declared options.
_NONE: Mapping[str, Any] = MappingProxyType({})


class Hyper(NamedTuple):
    """One hyperparameter: torch's name and default, keyword-only or not, and the spellings of
    user code that the explain mode pairs with it (:data:`SPELLINGS` less ``not_aliases``)."""

    name: str
    default: Any = REQUIRED
    keyword_only: bool = False
    not_aliases: tuple[str, ...] = ()
    torch_since: str = ""
    """The torch release that added it (empty: every supported release has it). An older
    torch's class does not take it: the converters leave it out at its default and refuse
    another value (``refbp.mirror.optim.torch_hyperparameters``)."""

    @property
    def aliases(self) -> tuple[tuple[str, ...], ...]:
        """The spellings tried for this hyperparameter, torch's own name first."""
        return tuple(names for names in SPELLINGS.get(self.name, ((self.name,),))
                     if not set(names) & set(self.not_aliases))

    @property
    def pair(self) -> bool:
        """A pair of numbers (``betas``, ``etas``), which user code may spell as two names."""
        return isinstance(self.default, tuple) and len(self.default) == 2


def signature_text(hypers: tuple[Hyper, ...]) -> str:
    """``"(lr=0.001, ..., *, maximize=False)"``: a constructor's arguments after the first."""
    parts, star = [], False
    for h in hypers:
        if h.keyword_only and not star:
            parts.append("*")
            star = True
        parts.append(h.name if h.default is REQUIRED else f"{h.name}={h.default!r}")
    return f"({', '.join(parts)})"


class TensorLr(NamedTuple):
    """A Tensor learning rate in an option set: torch ``torch.tensor(value)``, refbp a 0-d
    float32 array (``refbp.parity.optim_cases.tensor_lr``)."""

    value: float = 1e-3


class OptionSet(NamedTuple):
    """One set of constructor options the checks run (``optimizer(params, **options)``)."""

    name: str
    options: Mapping[str, Any] = _NONE
    description: str = ""


class QuickRun(NamedTuple):
    """A training scenario of the quick suite (``mlp-mse-<id>``, both dtypes), with the key of
    a ``refbp.tolerances.OVERRIDES`` entry where float32 needs the stated exception, and its
    number of steps (fewer for L-BFGS, whose steps run several iterations each)."""

    id: str
    options: Mapping[str, Any]
    float32_tolerance: str | None = None
    steps: int = 20


class OptimInfo(NamedTuple):
    """Everything refbp knows about one optimizer besides its update rule, declared once.

    Attributes
    ----------
    name:
        The class name in ``refbp.optim`` and ``torch.optim``.
    module:
        The ``refbp.optim`` module that implements it (update rule and algorithm box).
    summary:
        One line for the docs table.
    hyperparameters:
        torch's constructor arguments after ``params``, in order, with torch's defaults
        (checked against the refbp class by a unit test, against torch's by a parity test).
    state_keys:
        Every per-parameter state key the optimizer may create (torch's names).
    option_sets:
        The option sets of the checks (``refbp.parity.optim_cases.CASES``: the parity tests,
        the ``full`` suite), torch's ``optim_db`` CPU entries plus refbp's own.
    quick:
        The quick suite's training runs (``mlp-mse-<id>``).
    torch_only:
        torch keywords refbp does not take (:data:`SWITCHES`; dropped by the converters).
    running_rms:
        The update divides by a running RMS + eps (the judging's explanation of noise).
    long_float32_tolerance:
        Key of the ``refbp.tolerances.OVERRIDES`` entry of the ``full`` suite's 100-step
        float32 training, where that needs the stated exception.
    long_float32_skip:
        Why the ``full`` suite leaves out the optimizer's 100-step float32 training (empty:
        it runs); the option sets are still checked with identical gradients.
    families:
        The ``refbp check-optimizer --like`` families this optimizer is the torch reference of.
    fixed:
        Param-group entries that are not constructor arguments, with their fixed value
        (AdamW's ``decoupled_weight_decay=True``, as in torch's groups).
    matrices_only:
        The optimizer takes 2-D parameters only (Muon): its checks train models without
        biases (``Linear(..., bias=False)``).
    closure:
        ``step`` needs a closure that re-evaluates the loss and refills the gradients
        (LBFGS): the harness and the checks give one to both sides.
    single_group:
        One parameter group only (LBFGS): the checks build one optimizer per model.
    sparse_grads:
        The optimizer takes sparse gradients only (SparseAdam, ``Embedding(sparse=True)``): its
        quick runs train an embedding (``emb-ce-<id>``), its checks are in
        ``parity_tests/test_sparse_adam_parity.py`` and the ``full`` suite leaves it out.
    long_steps:
        The steps of the ``full`` suite's training runs (100; fewer where each step runs
        many iterations, as L-BFGS's 20).
    tolerance:
        dtype name -> key of the ``refbp.tolerances.OVERRIDES`` entry every check of this
        optimizer in that dtype uses (as ``OpInfo.tolerance``), where its arithmetic cannot
        follow torch's to the last bit (Muon's bfloat16 Newton-Schulz iteration) or amplifies
        the last bit (L-BFGS).
    """

    name: str
    module: str
    summary: str
    hyperparameters: tuple[Hyper, ...]
    state_keys: frozenset[str]
    option_sets: tuple[OptionSet, ...]
    quick: tuple[QuickRun, ...]
    torch_only: tuple[str, ...] = ("foreach", "capturable", "differentiable")
    running_rms: bool = False
    long_float32_tolerance: str | None = None
    long_float32_skip: str = ""
    families: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = _NONE
    matrices_only: bool = False
    tolerance: Mapping[str, str] = _NONE
    closure: bool = False
    single_group: bool = False
    long_steps: int = 100
    sparse_grads: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        """Hyperparameter name -> torch's default (in declaration order)."""
        return {h.name: h.default for h in self.hyperparameters}

    def has(self, name: str) -> bool:
        """Whether the optimizer takes the hyperparameter ``name``."""
        return any(h.name == name for h in self.hyperparameters)

    def hyper(self, name: str) -> Hyper:
        """The hyperparameter called ``name`` (KeyError naming the declared ones)."""
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise KeyError(f"{self.name} has no hyperparameter {name!r}; it has "
                       f"{', '.join(self.defaults)}")

    def signature(self) -> str:
        """``"(lr=0.001, ..., *, maximize=False)"``: the constructor after ``params``."""
        return signature_text(self.hyperparameters)

    def numpy_class(self) -> type:
        """The ``refbp.optim`` class (imports the NumPy side)."""
        cls: type = getattr(importlib.import_module(self.module), self.name)
        return cls

    def torch_class(self) -> type:
        """``torch.optim.<name>`` (imports torch)."""
        cls: type = getattr(importlib.import_module("torch.optim"), self.name)
        return cls


def _checked(o: OptimInfo) -> OptimInfo:
    """``o``, after checking what a declaration must say (a slip raises at import)."""
    unknown = set(o.torch_only) - set(SWITCHES)
    if unknown:
        raise ValueError(f"{o.name}: unknown torch switches {sorted(unknown)}")
    if not any(s.name == "default" and not s.options for s in o.option_sets):
        raise ValueError(f"{o.name}: the option sets need a 'default' set with no options")
    return o


def _h(name: str, default: Any, **kw: Any) -> Hyper:
    return Hyper(name, default, **kw)


_MAX = _h("maximize", False, keyword_only=True)
_BETAS = _h("betas", (0.9, 0.999))
_EPS8 = _h("eps", 1e-8)
_WD0 = _h("weight_decay", 0)
T = TensorLr()
S = OptionSet

OPTIMIZERS: tuple[OptimInfo, ...] = (
    OptimInfo(
        "SGD", "refbp.optim.sgd",
        "gradient descent with optional (Nesterov) momentum, dampening, weight decay",
        (_h("lr", 1e-3), _h("momentum", 0), _h("dampening", 0), _WD0, _h("nesterov", False),
         _MAX),
        frozenset({"momentum_buffer"}),
        (S("default", {}, "torch defaults (lr=1e-3, no momentum)"),
         S("lr", {"lr": 1e-2}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr (0-d float32 array)"),
         S("weight_decay", {"weight_decay": 0.5}, "L2 penalty added to the gradient"),
         S("momentum", {"momentum": 0.9}, "heavy-ball momentum"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "gradient ascent with decay"),
         S("dampening", {"momentum": 0.9, "dampening": 0.5}, "dampened momentum"),
         S("momentum_wd", {"momentum": 0.9, "weight_decay": 0.1}, "weight decay w/ momentum"),
         S("nesterov", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, "Nesterov"),
         S("nesterov_max", {"momentum": 0.9, "nesterov": True, "maximize": True},
           "Nesterov, maximize")),
        (QuickRun("sgd", {"lr": 0.1}),
         QuickRun("sgd-nesterov", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 1e-3})),
        torch_only=("foreach", "differentiable", "fused"), families=("SGD",)),
    OptimInfo(
        "Adam", "refbp.optim.adam", "adaptive moments, optional AMSGrad and decoupled weight decay",
        (_h("lr", 1e-3), _BETAS, _EPS8, _WD0, _h("amsgrad", False), _MAX,
         _h("decoupled_weight_decay", False, keyword_only=True)),
        frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 1e-2}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay (coupled)"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize with decay"),
         S("amsgrad", {"weight_decay": 0.1, "amsgrad": True}, "AMSGrad"),
         S("amsgrad_max", {"amsgrad": True, "maximize": True}, "AMSGrad, maximize"),
         S("betas_eps", {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps"),
         S("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True},
           "Adam(decoupled_weight_decay=True) == AdamW"),
         S("tensor_lr_amsgrad", {"lr": T, "amsgrad": True, "weight_decay": 0.1},
           "Tensor lr with AMSGrad")),
        (QuickRun("adam", {"lr": 0.01}),
         QuickRun("adam-amsgrad", {"lr": 0.01, "amsgrad": True, "weight_decay": 1e-2})),
        torch_only=("foreach", "capturable", "differentiable", "fused"), running_rms=True,
        families=("Adam",)),
    OptimInfo(
        "AdamW", "refbp.optim.adam", "Adam with decoupled weight decay (default weight_decay=1e-2)",
        (_h("lr", 1e-3), _BETAS, _EPS8, _h("weight_decay", 1e-2), _h("amsgrad", False), _MAX),
        frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
        (S("default", {}, "torch defaults (weight_decay=1e-2)"),
         S("lr", {"lr": 1e-2}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr: decay factor 1 - lr*wd in float32"),
         S("weight_decay", {"weight_decay": 0.1}, "stronger decoupled decay"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize"),
         S("amsgrad", {"weight_decay": 0.1, "amsgrad": True}, "AMSGrad"),
         S("betas_eps", {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps")),
        (QuickRun("adamw", {"lr": 0.01}),),
        torch_only=("foreach", "capturable", "differentiable", "fused"), running_rms=True,
        families=("AdamW",), fixed={"decoupled_weight_decay": True}),
    OptimInfo(
        "RMSprop", "refbp.optim.rmsprop",
        "running RMS of gradients, optional momentum and centering",
        (_h("lr", 1e-2, not_aliases=("alpha",)), _h("alpha", 0.99, not_aliases=("decay",)),
         _EPS8, _WD0, _h("momentum", 0), _h("centered", False), _h("maximize", False)),
        frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 1e-3}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("maximize", {"maximize": True}, "maximize"),
         S("centered", {"weight_decay": 0.1, "centered": True}, "centered"),
         S("maximize_wd", {"maximize": True, "weight_decay": 0.1}, "maximize, decay"),
         S("momentum", {"momentum": 0.5}, "momentum, not centered"),
         S("centered_momentum", {"weight_decay": 0.1, "centered": True, "momentum": 0.1},
           "centered with momentum"),
         S("all", {"weight_decay": 0.1, "centered": True, "momentum": 0.1, "maximize": True},
           "maximize, centered, weight_decay, momentum"),
         S("alpha_eps", {"alpha": 0.9, "eps": 1e-6}, "non-default alpha and eps")),
        (QuickRun("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True},
                  float32_tolerance="float32_centered_rmsprop"),),
        running_rms=True, long_float32_tolerance="float32_rms_long_training",
        families=("RMSprop",)),
    OptimInfo(
        "Adagrad", "refbp.optim.adagrad", "accumulated squared gradients, optional lr decay",
        (_h("lr", 1e-2), _h("lr_decay", 0), _WD0, _h("initial_accumulator_value", 0),
         _h("eps", 1e-10), _MAX),
        frozenset({"step", "sum"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 0.1}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize"),
         S("initial_acc", {"initial_accumulator_value": 0.1, "weight_decay": 0.1},
           "initial_accumulator_value"),
         S("lr_decay", {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1}, "lr_decay"),
         S("eps", {"eps": 1e-6}, "non-default eps")),
        (QuickRun("adagrad", {"lr": 0.1, "lr_decay": 1e-3}),),
        torch_only=("foreach", "differentiable", "fused"), running_rms=True,
        families=("Adagrad",)),
    OptimInfo(
        "Adadelta", "refbp.optim.adadelta", "ratio of running RMS of updates and gradients",
        (_h("lr", 1.0, not_aliases=("alpha",)), _h("rho", 0.9), _h("eps", 1e-6), _WD0, _MAX),
        frozenset({"step", "square_avg", "acc_delta"}),
        (S("default", {}, "torch defaults (lr=1.0)"),
         S("lr", {"lr": 0.01}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("maximize", {"maximize": True}, "maximize"),
         S("maximize_wd", {"weight_decay": 0.1, "maximize": True}, "maximize, decay"),
         S("rho", {"rho": 0.95, "weight_decay": 0.9}, "rho"),
         S("eps", {"eps": 1e-4}, "non-default eps")),
        (QuickRun("adadelta", {"lr": 1.0}),),
        running_rms=True, long_float32_tolerance="float32_rms_long_training",
        families=("Adadelta",)),
    OptimInfo(
        "Adamax", "refbp.optim.adamax", "Adam with the infinity norm",
        (_h("lr", 2e-3), _BETAS, _EPS8, _WD0, _MAX),
        frozenset({"step", "exp_avg", "exp_inf"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 0.1}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("maximize", {"maximize": True}, "maximize"),
         S("maximize_wd", {"weight_decay": 0.1, "maximize": True}, "maximize, decay"),
         S("betas_eps", {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps")),
        (QuickRun("adamax", {"lr": 0.01}),),
        running_rms=True),
    OptimInfo(
        "NAdam", "refbp.optim.nadam", "Adam with Nesterov momentum (and momentum decay)",
        (_h("lr", 2e-3), _BETAS, _EPS8, _WD0, _h("momentum_decay", 4e-3),
         _h("decoupled_weight_decay", False), _MAX),
        frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 1e-3}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("momentum_decay", {"momentum_decay": 6e-3}, "non-default momentum_decay"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("wd_momentum_decay", {"weight_decay": 0.1, "momentum_decay": 6e-3},
           "weight decay, momentum_decay"),
         S("decoupled", {"weight_decay": 0.1, "momentum_decay": 6e-3,
                         "decoupled_weight_decay": True}, "NAdamW"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize"),
         S("betas_eps", {"betas": (0.8, 0.99), "eps": 1e-6}, "non-default betas and eps")),
        (QuickRun("nadam", {"lr": 0.01}),),
        running_rms=True),
    OptimInfo(
        "RAdam", "refbp.optim.radam", "rectified Adam",
        (_h("lr", 1e-3), _BETAS, _EPS8, _WD0, _h("decoupled_weight_decay", False), _MAX),
        frozenset({"step", "exp_avg", "exp_avg_sq"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 2e-3}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("eps", {"eps": 1e-6}, "non-default eps"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True}, "RAdamW"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize"),
         S("betas", {"betas": (0.8, 0.9)}, "beta2=0.9: rho_inf=19, rectified from step 6")),
        (QuickRun("radam", {"lr": 0.01}),),
        running_rms=True),
    OptimInfo(
        "Rprop", "refbp.optim.rprop", "resilient backpropagation: per-element step sizes, "
        "gradient signs only",
        (_h("lr", 1e-2), _h("etas", (0.5, 1.2)), _h("step_sizes", (1e-6, 50)), _MAX),
        frozenset({"step", "prev", "step_size"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 2e-4}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr: the initial step size in float32"),
         S("etas", {"etas": (0.5, 1.5)}, "non-default etas"),
         S("step_sizes", {"step_sizes": (2e-6, 100)}, "non-default step_sizes"),
         S("clamped", {"lr": 0.5, "step_sizes": (1e-3, 0.1)},
           "lr above the largest step size: clamped at the first step"),
         S("maximize", {"maximize": True}, "maximize")),
        (QuickRun("rprop", {"lr": 0.01}),
         QuickRun("rprop-min-step", {"lr": 2e-6})),
        long_float32_skip="Rprop steps by the sign of each gradient element: once training "
        "saturates (a classifier's float32 loss reaches 0) the gradients are rounding residue, "
        "and each side steps a full step size in the direction of its own residue (measured: "
        "2 of 36 float32 runs, etas (0.5, 1.5) on the classifier)",
        families=("Rprop",)),
    OptimInfo(
        "ASGD", "refbp.optim.asgd", "averaged SGD: decaying step size, mean of the iterates "
        "from step t0",
        (_h("lr", 1e-2), _h("lambd", 1e-4), _h("alpha", 0.75, not_aliases=_LR + ("decay",)),
         _h("t0", 1e6), _WD0, _h("maximize", False)),
        frozenset({"step", "eta", "mu", "ax"}),
        (S("default", {}, "torch defaults (averaging from step 1e6: ax copies the parameter)"),
         S("lambd", {"lambd": 0.1}, "non-default lambd"),
         S("lr", {"lr": 0.02}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr: the step-size decay in float32"),
         S("t0", {"t0": 100}, "averaging from step 100"),
         S("t0_early", {"t0": 10, "lambd": 1e-3, "alpha": 0.6}, "averaging from step 10, "
           "faster decay"),
         S("maximize", {"maximize": True}, "maximize"),
         S("weight_decay", {"weight_decay": 0.1}, "L2 weight decay"),
         S("maximize_wd", {"weight_decay": 0.1, "maximize": True}, "maximize, decay")),
        (QuickRun("asgd", {"lr": 0.05, "t0": 5}),),
        torch_only=("foreach", "differentiable", "capturable"), families=("ASGD",)),
    OptimInfo(
        "Adafactor", "refbp.optim.adafactor", "factored second moments, relative step size, update "
        "clipping",
        (_h("lr", 1e-2), _h("beta2_decay", -0.8), _h("eps", (None, 1e-3)), _h("d", 1.0),
         _h("weight_decay", 0.0), _MAX),
        frozenset({"step", "row_var", "col_var", "variance"}),
        (S("default", {}, "torch defaults (eps1 None: the dtype's machine epsilon)"),
         S("weight_decay", {"weight_decay": 0.1, "lr": 0.01}, "decoupled weight decay"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("maximize", {"weight_decay": 0.1, "maximize": True}, "maximize"),
         S("beta2_decay", {"beta2_decay": -1.0}, "non-default beta2_decay"),
         S("d", {"d": 1.5}, "non-default clipping threshold d"),
         S("eps", {"eps": (1e-30, 1e-2), "lr": 0.1}, "explicit eps1, larger eps2, lr above "
           "the relative step cap")),
        (QuickRun("adafactor", {"lr": 0.05}),),
        torch_only=("foreach",), running_rms=True, families=("Adafactor",)),
    OptimInfo(
        "Muon", "refbp.optim.muon", "momentum orthogonalised by Newton-Schulz (bfloat16), "
        "2-D parameters only",
        (_h("lr", 1e-3), _h("weight_decay", 0.1), _h("momentum", 0.95), _h("nesterov", True),
         _h("ns_coefficients", (3.4445, -4.775, 2.0315)), _h("eps", 1e-7), _h("ns_steps", 5),
         _h("adjust_lr_fn", None)),
        frozenset({"momentum_buffer"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 0.01}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("weight_decay", {"weight_decay": 0.2}, "non-default weight_decay"),
         S("momentum", {"momentum": 0.8}, "non-default momentum"),
         S("ns_steps", {"ns_steps": 6}, "six Newton-Schulz steps"),
         S("ns_coefficients", {"ns_coefficients": (3.4, -4.7, 2.0)}, "other coefficients"),
         S("plain_momentum", {"nesterov": False, "lr": 0.01}, "momentum without Nesterov"),
         S("match_rms_adamw", {"adjust_lr_fn": "match_rms_adamw", "lr": 0.01},
           "Moonshot's lr adjustment")),
        (QuickRun("muon", {"lr": 0.02}),
         QuickRun("muon-match-rms", {"adjust_lr_fn": "match_rms_adamw", "lr": 0.01})),
        torch_only=(), families=("Muon",), matrices_only=True,
        tolerance={"float64": "muon_bfloat16", "float32": "muon_bfloat16"}),
    OptimInfo(
        "LBFGS", "refbp.optim.lbfgs", "limited-memory BFGS (two-loop recursion), optional "
        "strong-Wolfe line search",
        (_h("lr", 1), _h("max_iter", 20), _h("max_eval", None), _h("tolerance_grad", 1e-7),
         _h("tolerance_change", 1e-9), _h("history_size", 100), _h("line_search_fn", None),
         _h("maximize", False, keyword_only=True, torch_since="2.14")),
        frozenset({"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                   "prev_flat_grad", "prev_loss", "al"}),
        (S("default", {}, "torch defaults (lr 1, 20 iterations per step, no line search)"),
         S("lr", {"lr": 0.01}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("tolerance_grad", {"tolerance_grad": 1e-6}, "tolerance_grad"),
         S("strong_wolfe", {"line_search_fn": "strong_wolfe"}, "strong-Wolfe line search"),
         S("history", {"history_size": 3, "max_iter": 8, "lr": 0.5},
           "history of 3 pairs (the oldest dropped), 8 iterations"),
         S("wolfe_short", {"line_search_fn": "strong_wolfe", "max_iter": 4, "max_eval": 6,
                           "tolerance_change": 1e-6, "history_size": 2},
           "line search cut by max_eval, short history, looser tolerance_change")),
        (QuickRun("lbfgs", {"lr": 0.1, "max_iter": 5}, steps=4),
         QuickRun("lbfgs-wolfe", {"line_search_fn": "strong_wolfe", "max_iter": 5}, steps=4)),
        torch_only=(), families=("LBFGS",), closure=True, single_group=True,
        tolerance={"float64": "lbfgs_float64", "float32": "lbfgs_float32"}, long_steps=4,
        long_float32_skip="L-BFGS's float32 runs branch on comparisons of float32 rounding "
        "(curvature test, line-search conditions, tolerances); the option sets run in float32 "
        "with identical closures"),
    OptimInfo(
        "SparseAdam", "refbp.optim.sparse_adam", "Adam on the rows a sparse gradient touches "
        "(Embedding(sparse=True))",
        (_h("lr", 1e-3), _BETAS, _EPS8, _h("maximize", False)),
        frozenset({"step", "exp_avg", "exp_avg_sq"}),
        (S("default", {}, "torch defaults"),
         S("lr", {"lr": 0.01}, "non-default lr"),
         S("tensor_lr", {"lr": T}, "Tensor lr"),
         S("maximize", {"maximize": True}, "maximize"),
         S("betas_eps", {"betas": (0.8, 0.99), "eps": 1e-6, "lr": 0.05},
           "non-default betas and eps")),
        (QuickRun("sparseadam", {"lr": 0.05}),),
        torch_only=(), running_rms=True, families=("SparseAdam",), sparse_grads=True),
)

_BY_NAME = by_name(((o.name, _checked(o)) for o in OPTIMIZERS), "optimizer")


def optimizer(name: str) -> OptimInfo:
    """The declaration of the optimizer called ``name`` (KeyError listing the declared ones)."""
    return lookup(_BY_NAME, name, "optimizer")


def find(name: str) -> OptimInfo | None:
    """The declaration of ``name``, or None when no optimizer of that name is declared."""
    return _BY_NAME.get(name)


def names() -> list[str]:
    """The declared optimizer names, in declaration order."""
    return list(_BY_NAME)


def families() -> list[tuple[str, OptimInfo]]:
    """``(family, optimizer)`` for every ``check-optimizer --like`` family, in order."""
    return [(f, o) for o in OPTIMIZERS for f in o.families]


def running_rms() -> frozenset[str]:
    """The optimizers whose update divides by a running RMS + eps."""
    return frozenset(o.name for o in OPTIMIZERS if o.running_rms)


def pairs() -> frozenset[str]:
    """Hyperparameters that are a pair of numbers (``betas``, ``etas``, ``step_sizes``)."""
    return frozenset(h.name for o in OPTIMIZERS for h in o.hyperparameters if h.pair)


def listing() -> list[str]:
    """``refbp list --optimizers``: each optimizer's signature, state and checks."""
    out = []
    for o in OPTIMIZERS:
        out.append(f"{o.name}{o.signature()}")
        out.append(f"    {o.summary}; state {', '.join(sorted(o.state_keys))}")
        out.append(f"    option sets {', '.join(s.name for s in o.option_sets)}; quick runs "
                   f"{', '.join(r.id for r in o.quick)}; explain families "
                   f"{', '.join(o.families) or '-'}")
    return out


#: What ``refbp.optim`` exports besides the declared optimizers (name -> dotted path).
OPTIM_OTHERS: Mapping[str, str] = {
    "Optimizer": "refbp.optim.optimizer:Optimizer",
    "default_dtype": "refbp.optim.default_dtype:default_dtype",
    "get_default_dtype": "refbp.optim.default_dtype:get_default_dtype",
    "set_default_dtype": "refbp.optim.default_dtype:set_default_dtype",
    "lr_scheduler": "refbp.optim.lr_scheduler", "swa_utils": "refbp.optim.swa_utils",
}


def optim_exports() -> dict[str, str]:
    """Every name ``refbp.optim`` exports and the dotted path of what it names, sorted by
    name: :data:`OPTIM_OTHERS` and each declared optimizer's class (from its ``module``)."""
    table = {**OPTIM_OTHERS, **{o.name: f"{o.module}:{o.name}" for o in OPTIMIZERS}}
    return dict(sorted(table.items()))


def docs_table() -> str:
    """The reStructuredText table of ``refbp.optim``'s docstring (one row per optimizer)."""
    width = max(len(o.name) for o in OPTIMIZERS) + 4
    rule = "=" * width + "  " + "=" * 74
    rows = [f"{'``' + o.name + '``':{width}s}  {o.summary}" for o in OPTIMIZERS]
    return "\n".join([rule, f"{'class':{width}s}  update rule (see the class docstring for "
                      "the algorithm box)", rule, *rows, rule])
