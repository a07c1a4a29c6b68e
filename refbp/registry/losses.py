"""Declarations of the losses (``refbp.nn.loss``; maths in ``refbp.nn.functional_loss`` and
``refbp.nn.functional_cross_entropy``).

A loss's op check feeds the data's inputs through ``Identity`` (or the ``before`` layers) into
the loss, and compares the loss and the gradient with respect to the input (with
``target_grad``, a float target's too; a loss that owns parameters, theirs). A loss of more
arguments is fed as its ``feed`` says: slices of the model's output, so the input gradient
holds the gradient of each of them, then the target. Its ``checks``
are the option sets of the unit tests (finite differences) and parity tests (torch), each on
the kinds of input it names (``refbp.registry.opinfo.LOSS_INPUTS``), with every reduction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.registry.opinfo import REQUIRED, Check, Data, Feed, Layers, OpInfo, Sample

_FL = "refbp.nn.functional_loss"
_FD = "refbp.nn.functional_divergence"
_FM = "refbp.nn.functional_margin"
_CE = "refbp.nn.functional_cross_entropy"
_F = "torch.nn.functional"
_REG = Data("regression", n=16, features=5, outputs=5)
_CLS = Data("classification", n=16, features=5, outputs=5)
_PROB = Data("probabilities", n=16, features=5, outputs=5)
_BIN = Data("binary", n=16, features=5, outputs=5)
_KD = Data("classification_kd", n=4, features=5, outputs=5, extra={"d": 3})
_W5 = [0.5, 1.0, 2.0, 1.5, 0.25]
_MEAN: Mapping[str, Any] = {"reduction": "mean"}
_SOFT = Data("soft_targets", n=16, features=5, outputs=5)
_SIGNS = Data("signs", n=16, features=5, outputs=5)
_COUNTS = Data("counts", n=16, features=5, outputs=5)
_LOGP = (("LogSoftmax", {"dim": 1}),)
_EDGES = ("inputs exactly 0 and 1, where d loss / d target = -w logit(x) is infinite in both "
          "libraries; bce-sigmoid compares it on inputs inside (0, 1)")
_MARGIN = "refbp.nn.loss_margin"
_FP = "refbp.nn.functional_pairwise"
_PAIRS = "refbp.nn.loss_embedding"
# The op checks of the losses of several arguments (Feed): slices of the model's output
# along dimension 1 (so grad_input holds every argument's gradient), then the target.
_PAIR = (("Unflatten", {"dim": 1, "unflattened_size": [2, 4]}),)
_SIGNS8 = Data("signs", n=16, features=8, outputs=4)
_TRIPLES = Data("tensors", n=16, features=3, outputs=1, extra={"size": [4]})
_POSITIVE: Layers = (("Softplus", {}),)  # GaussianNLLLoss's variances (inputs and targets too)
_CTC = Data("ctc", n=4, features=5, outputs=3, extra={"seq_len": 8})
_LOGP2 = (("LogSoftmax", {"dim": 2}),)
# weights of the tests' data: one per class of 4, one per row of the (6, 4) binary data
# (broadcast over the classes), one per element of it
_W4 = [0.5, 2.0, 1.0, 3.0]
_ROWS = [[0.5], [0.8], [1.1], [1.4], [1.7], [2.0]]
_GRID = [[round(0.1 + 0.08 * (4 * i + j), 2) for j in range(4)] for i in range(6)]
_POS = [3.0, 10.0, 0.5, 1.0]
# LinearCrossEntropyLoss's sizes: the tests' 5 features to 4 classes, the suites' 5 to 5
_LCE = {"in_features": 5, "num_classes": 4}
_LCE5 = {"in_features": 5, "num_classes": 5}
_ASM = "refbp.nn.loss_adaptive:AdaptiveLogSoftmaxWithLoss"


def _checks(inputs: tuple[str, ...], *option_sets: Mapping[str, Any]) -> tuple[Check, ...]:
    """One check per option set, each run on ``inputs``."""
    return tuple(Check(dict(o), inputs=inputs) for o in option_sets)


_REG_IN = ("regression",)
_CLASS_IN = ("class_index", "class_probabilities")


def _loss(name: str, forward: str, backward: str, functional: str | None, aten: str,
          args: Mapping[str, Any], samples: tuple[Sample, ...], **kw: Any) -> OpInfo:
    return OpInfo(name=name, kind="loss", forward=forward, backward=backward, args=args,
                  functional=f"{_F}.{functional}" if functional else None,
                  aten=(aten,) if aten else (),
                  samples=samples, **kw)


LOSSES: tuple[OpInfo, ...] = (
    _loss("MSELoss", f"{_FL}:mse", f"{_FL}:mse_grad", "mse_loss", "aten.mse_loss.default",
          _MEAN, (Sample("mse", data=_REG), Sample("mse-sum", {"reduction": "sum"}, _REG)),
          target_grad=True,
          checks=_checks(_REG_IN, {}), families=("MSELoss",)),
    # refbp's teaching loss E = 1/2 sum (y - t)^2: torch's twin is 0.5 * mse_loss(sum).
    _loss("SSELoss", f"{_FL}:sse", f"{_FL}:sse_grad", None, "aten.mse_loss.default",
          {"reduction": "sum"}, (Sample("sse", data=_REG),), target_grad=True,
          checks=_checks(_REG_IN, {}),
          torch_module="refbp.mirror.modules:SSELossTorch", converter="refbp.mirror.modules"),
    _loss("L1Loss", f"{_FL}:l1", f"{_FL}:l1_grad", "l1_loss", "aten.l1_loss.default", _MEAN,
          (Sample("l1", data=_REG),), target_grad=True, checks=_checks(_REG_IN, {})),
    _loss("HuberLoss", f"{_FL}:huber", f"{_FL}:huber_grad", "huber_loss",
          "aten.huber_loss.default", {"reduction": "mean", "delta": 1.0},
          (Sample("huber", {"delta": 0.5}, _REG),), defaults_check=Sample("huber", data=_REG),
          target_grad=True,
          checks=_checks(_REG_IN, {}, {"delta": 0.5}, {"delta": 2.0})),
    _loss("SmoothL1Loss", f"{_FL}:smooth_l1", f"{_FL}:smooth_l1_grad", "smooth_l1_loss",
          "aten.smooth_l1_loss.default", {"reduction": "mean", "beta": 1.0},
          (Sample("smoothl1", {"beta": 0.5, "reduction": "sum"}, _REG),),
          defaults_check=Sample("smoothl1", data=_REG),
          target_grad=True,
          checks=_checks(_REG_IN, {}, {"beta": 0.5}, {"beta": 2.0}, {"beta": 0.0})),
    _loss("BCELoss", f"{_FL}:bce", f"{_FL}:bce_grad", "binary_cross_entropy",
          "aten.binary_cross_entropy.default", {"weight": None, "reduction": "mean"},
          (Sample("bce", data=_PROB, target_grad_note=_EDGES),
           Sample("bce-weight", {"weight": _W5}, _PROB, target_grad_note=_EDGES),
           Sample("bce-sigmoid", {"weight": _W5}, _PROB, before=(("Sigmoid", {}),))),
          target_grad=True,
          checks=_checks(("probabilities",), {}, {"weight": _W4}, {"weight": _ROWS}),
          families=("BCELoss",)),
    _loss("BCEWithLogitsLoss", f"{_FL}:bce_with_logits", f"{_FL}:bce_with_logits_grad",
          "binary_cross_entropy_with_logits", "aten.binary_cross_entropy_with_logits.default",
          {"weight": None, "reduction": "mean", "pos_weight": None},
          (Sample("bcelogits", data=_BIN),
           Sample("bcelogits-extreme", {"pos_weight": _W5},
                  Data("binary", n=16, features=5, outputs=5, extra={"scale": 1e4}))),
          target_grad=True,
          checks=_checks(("logits",), {}, {"weight": _W4}, {"pos_weight": _POS},
                         {"weight": _ROWS, "pos_weight": _POS},
                         {"weight": _GRID, "pos_weight": _POS})),
    _loss("CrossEntropyLoss", f"{_CE}:cross_entropy_index",
          f"{_CE}:cross_entropy_index_coefficients", "cross_entropy",
          "aten.cross_entropy_loss.default",
          {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
          (Sample("ce", data=_CLS),
           Sample("ce-extreme", data=Data("classification", n=16, features=5, outputs=5,
                                          extra={"scale": 1e4})),
           Sample("ce-weight-smooth", {"weight": _W5, "label_smoothing": 0.1}, _CLS),
           Sample("ce-ignore", {"ignore_index": 2}, _CLS),
           Sample("ce-soft", {"label_smoothing": 0.2}, Data("soft_targets", n=16, features=5,
                                                            outputs=5)),
           Sample("ce-kdim", {"reduction": "sum"}, _KD),
           Sample("ce-kdim-smooth", {"label_smoothing": 0.1}, _KD),
           Sample("ce-kdim-soft", {"label_smoothing": 0.1},
                  Data("classification_kd", n=4, features=5, outputs=5,
                       extra={"d": 3, "target": "probabilities"}))),
          target_grad=True,
          checks=(*_checks(_CLASS_IN, {}, {"label_smoothing": 0.1}, {"label_smoothing": 1.0},
                           {"weight": _W4}, {"weight": _W4, "label_smoothing": 0.1},
                           {"weight": _W4, "label_smoothing": 1.0}),
                  Check({"weight": _W4, "ignore_index": 2, "label_smoothing": 0.1},
                        inputs=("class_index",))),
          families=("CrossEntropyLoss",)),
    _loss("NLLLoss", f"{_CE}:nll_loss", f"{_CE}:nll_coefficients", "nll_loss",
          "aten.nll_loss_nd.default",
          {"weight": None, "ignore_index": -100, "reduction": "mean"},
          (Sample("nll", {"weight": _W5}, _CLS, before=_LOGP),),
          defaults_check=Sample("nll", data=_CLS, before=_LOGP),
          checks=_checks(("log_probabilities",), {}, {"weight": _W4}, {"ignore_index": 1},
                         {"weight": _W4, "ignore_index": 1}),
          aliases=("NLLLoss2d",)),
    # torch's 'mean' reduction of KLDivLoss warns (it is not the KL divergence): the op
    # checks use 'batchmean' and 'sum'; the unit, parity and module_db tests use 'mean' too
    _loss("KLDivLoss", f"{_FD}:kl_div", f"{_FD}:kl_div_grad", "kl_div", "aten.kl_div.default",
          {"reduction": "mean", "log_target": False},
          (Sample("kldiv", {"reduction": "batchmean"}, _SOFT, before=_LOGP),
           Sample("kldiv-logtarget", {"reduction": "sum", "log_target": True},
                  Data("soft_targets", n=16, features=5, outputs=5, extra={"log": True}),
                  before=_LOGP)),
          module="refbp.nn.loss_likelihood",
          target_grad=True,
          checks=(*_checks(("class_probabilities",), {}),
                  *_checks(_REG_IN, {"log_target": True}))),
    _loss("PoissonNLLLoss", f"{_FD}:poisson_nll", f"{_FD}:poisson_nll_grad", "poisson_nll_loss",
          "aten.poisson_nll_loss.default",
          {"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"},
          (Sample("poissonnll", data=_COUNTS),
           Sample("poissonnll-rate-full", {"log_input": False, "full": True}, _COUNTS,
                  before=(("Softplus", {}),),
                  target_grad_note="counts of 0, where the Stirling term of full=True "
                                   "(masked to 0 for targets <= 1) has a NaN target gradient "
                                   "in torch, which refbp follows (tests/test_loss.py)")),
          module="refbp.nn.loss_likelihood",
          target_grad=True,
          checks=_checks(_REG_IN, {}, {"full": True}, {"eps": 1e-3})),
    _loss("HingeEmbeddingLoss", f"{_FM}:hinge_embedding", f"{_FM}:hinge_embedding_grad",
          "hinge_embedding_loss", "aten.hinge_embedding_loss.default",
          {"margin": 1.0, "reduction": "mean"},
          (Sample("hingeembedding", {"margin": 0.5}, _SIGNS),), module=_MARGIN,
          checks=_checks(("signs",), {}, {"margin": 0.5})),
    _loss("SoftMarginLoss", f"{_FM}:soft_margin", f"{_FM}:soft_margin_grad", "soft_margin_loss",
          "aten.soft_margin_loss.default", _MEAN, (Sample("softmargin", data=_SIGNS),),
          module=_MARGIN, checks=_checks(("signs", "regression"), {})),
    _loss("MultiLabelSoftMarginLoss", f"{_FM}:multilabel_soft_margin",
          f"{_FM}:multilabel_soft_margin_grad", "multilabel_soft_margin_loss",
          "", {"weight": None, "reduction": "mean"},
          (Sample("multilabelsoftmargin", {"weight": _W5}, _BIN),), module=_MARGIN,
          target_grad=True,
          checks=_checks(("logits",), {}, {"weight": _W4})),
    _loss("MultiLabelMarginLoss", f"{_FM}:multilabel_margin_counts",
          f"{_FM}:multilabel_margin_counts", "multilabel_margin_loss",
          "aten.multilabel_margin_loss.default", _MEAN,
          (Sample("multilabelmargin", data=Data("multilabel", n=16, features=5, outputs=5)),),
          module=_MARGIN, checks=_checks(("multilabel_index",), {})),
    _loss("MultiMarginLoss", f"{_FM}:multi_margin_terms", f"{_FM}:multi_margin_terms",
          "multi_margin_loss", "aten.multi_margin_loss.default",
          {"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"},
          (Sample("multimargin", data=_CLS),
           Sample("multimargin-p2-weight", {"p": 2, "margin": 0.5, "weight": _W5}, _CLS)),
          module=_MARGIN,
          checks=_checks(("class_rows",), {}, {"p": 2, "margin": 0.5, "weight": _W4})),
    _loss("GaussianNLLLoss", f"{_FP}:gaussian_nll", f"{_FP}:gaussian_nll_grads",
          "gaussian_nll_loss", "", {"full": False, "eps": 1e-6, "reduction": "mean"},
          (Sample("gaussiannll", data=_TRIPLES, before=_POSITIVE),
           Sample("gaussiannll-full-clamped", {"full": True, "eps": 0.5}, _TRIPLES,
                  before=_POSITIVE)),
          feed=Feed(inputs=3), module="refbp.nn.loss_likelihood",
          checks=_checks(("gaussian",), {}, {"full": True}, {"eps": 0.05})),
    _loss("MarginRankingLoss", f"{_FP}:margin_ranking", f"{_FP}:margin_ranking_grads",
          "margin_ranking_loss", "aten.margin_ranking_loss.default",
          {"margin": 0.0, "reduction": "mean"},
          (Sample("marginranking", {"margin": 0.5}, _SIGNS8, before=_PAIR),),
          defaults_check=Sample("marginranking", data=_SIGNS8, before=_PAIR),
          feed=Feed(inputs=2), target_grad=True, module=_PAIRS,
          checks=_checks(("ranking",), {}, {"margin": 0.5})),
    _loss("CosineEmbeddingLoss", f"{_FP}:cosine_embedding", f"{_FP}:cosine_embedding_grads",
          "cosine_embedding_loss", "aten.cosine_embedding_loss.default",
          {"margin": 0.0, "reduction": "mean"},
          (Sample("cosineembedding", {"margin": 0.3},
                  Data("signs", n=16, features=8, outputs=1, extra={"target_shape": ()}),
                  before=_PAIR),),
          feed=Feed(inputs=2), module=_PAIRS,
          checks=_checks(("cosine_pairs",), {}, {"margin": 0.3}, {"margin": -0.5})),
    _loss("TripletMarginLoss", f"{_FP}:triplet_hinge", f"{_FP}:p_norm_backward",
          "triplet_margin_loss", "aten.triplet_margin_loss.default",
          {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "reduction": "mean"},
          (Sample("tripletmargin", data=_TRIPLES),
           Sample("tripletmargin-p1-swap", {"p": 1.0, "swap": True, "margin": 0.5}, _TRIPLES)),
          feed=Feed(inputs=3), module=_PAIRS,
          checks=_checks(("triplets",), {}, {"swap": True}, {"p": 1.0, "margin": 0.5},
                         {"p": 3.0, "swap": True}, {"p": 1.5}, {"p": float("inf")},
                         {"p": 0.5, "eps": 0.0})),
    _loss("TripletMarginWithDistanceLoss", f"{_FP}:triplet_hinge", f"{_FP}:triplet_hinge_grad",
          "triplet_margin_with_distance_loss", "",
          {"distance_function": None, "margin": 1.0, "swap": False, "reduction": "mean"},
          (Sample("tripletdistance-swap", {"swap": True, "margin": 2.0}, _TRIPLES),),
          defaults_check=Sample("tripletdistance", data=_TRIPLES),
          feed=Feed(inputs=3), module=_PAIRS,
          checks=_checks(("triplets",), {}, {"swap": True, "margin": 2.0})),
    _loss("LinearCrossEntropyLoss", f"{_CE}:cross_entropy_index",
          f"{_CE}:cross_entropy_index_coefficients", "linear_cross_entropy", "",
          {"in_features": REQUIRED, "num_classes": REQUIRED, "out_features": (), "bias": False,
           "reduction": "mean", "weight": None, "ignore_index": None, "label_smoothing": 0.0},
          (Sample("linearce", _LCE5, _CLS),
           Sample("linearce-bias-weight-smooth",
                  {**_LCE5, "bias": True, "weight": _W5, "label_smoothing": 0.1}, _CLS),
           Sample("linearce-soft", {**_LCE5, "bias": True, "reduction": "sum"}, _SOFT)),
          module="refbp.nn.loss_linear", converter="refbp.mirror.losses",
          torch_only={"options": "the chunking strategy of torch's memory-saving path, which "
                                 "computes the same loss in another summation order; refbp "
                                 "computes torch's reference path"},
          target_grad=True,
          checks=_checks(("features",), _LCE, {**_LCE, "bias": True, "weight": _W4},
                         {**_LCE, "label_smoothing": 0.1, "bias": True},
                         {**_LCE, "weight": _W4, "label_smoothing": 0.2})),
    # torch keeps it in torch/nn/modules/adaptive.py as a Module that returns (output, loss)
    _loss("AdaptiveLogSoftmaxWithLoss", f"{_ASM}.forward", f"{_ASM}.backward", None, "",
          {"in_features": REQUIRED, "n_classes": REQUIRED, "cutoffs": REQUIRED,
           "div_value": 4.0, "head_bias": False},
          (), module="refbp.nn.loss_adaptive", converter="refbp.mirror.losses", checks=(),
          suite_note="returns the pair (output, loss) and owns the head and tail linear "
                     "maps, which the generic loss checks cannot compare: "
                     "tests/test_loss_adaptive.py checks hand-derived values and finite "
                     "differences of the input and every parameter, "
                     "parity_tests/test_adaptive_softmax_parity.py compares output, loss, "
                     "log_prob, predict and every gradient with torch in float64 and float32"),
    _loss("CTCLoss", "refbp.nn.functional_ctc:ctc_alpha", "refbp.nn.functional_ctc:ctc_grad",
          "ctc_loss", "aten.ctc_loss.IntList",
          {"blank": 0, "reduction": "mean", "zero_infinity": False},
          (Sample("ctc", data=_CTC, before=_LOGP2),
           Sample("ctc-blank-last-sum", {"blank": 4, "reduction": "sum"}, _CTC,
                  before=_LOGP2)),
          feed=Feed(time_major=True), module="refbp.nn.loss_ctc",
          checks=_checks(("ctc",), {}, {"zero_infinity": True}, {"blank": 4})),
)
