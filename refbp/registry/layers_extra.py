"""Declarations of the dropout variants, fractional max pooling, the two-input layers
(distances, bilinear, the transformer's decoder) and EmbeddingBag.

The two-input layers run in the op checks through the one-input ``PairProbe``
(``refbp.nn.pair_probe``), which cuts the input's last axis in two; the layers themselves say
so in their ``suite_note``. Their data are ``tensors`` of shape (N, 3, 8) cut into two
(N, 3, 4) halves, with targets of the output's shape. The dropout variants' masks and the
random samples that place fractional max pooling's windows are drawn by torch and fed to
refbp (``refbp.mirror.dropout``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refbp.registry import samples_attention, shapes, sizes
from refbp.registry.opinfo import REQUIRED, Check, Data, Layers, OpInfo, Sample

_F = "torch.nn.functional"
_MSE: tuple[str, Mapping[str, Any]] = ("MSELoss", {})
_FLAT: Layers = (("Flatten", {}),)
_DROP = {"p": 0.5, "inplace": False}
_PAIRS = "refbp.mirror.pairs"
_ATT = "refbp.mirror.attention"
_TF_LAYER = {"d_model": REQUIRED, "nhead": REQUIRED, "dim_feedforward": 2048, "dropout": 0.1,
             "activation": "relu", "layer_norm_eps": 1e-5, "batch_first": False,
             "norm_first": False, "bias": True}
_F32_ATT = {"float32": "float32_attention"}


def _layer(name: str, module: str, args: Mapping[str, Any], functional: str | None,
           aten: tuple[str, ...], **kw: Any) -> OpInfo:
    """A layer whose maths are its class's ``forward`` and ``backward``."""
    path = f"refbp.nn.{module}"
    return OpInfo(name=name, kind="layer", module=path, forward=f"{path}:{name}.forward",
                  backward=f"{path}:{name}.backward", args=args,
                  functional=f"{_F}.{functional}" if functional else None, aten=aten, **kw)


def _tensors(features: int, *size: int, n: int = 4) -> Data:
    """Normals of shape (n, features, *size); the target has the model's output shape."""
    return Data("tensors", n=n, features=features, outputs=0, extra={"size": list(size)})


def _flat_mse(id: str, options: Mapping[str, Any], data: Data, text: str) -> Sample:
    """An op check of a layer whose output is flattened into an MSE loss."""
    return Sample(id, options, data, after=_FLAT, loss=_MSE, description=text)


def _pair(id: str, op: str, options: Mapping[str, Any], text: str, *, split: int = 4,
          data: Data | None = None, **kwargs: Any) -> Sample:
    """An op check of ``op`` through ``PairProbe`` on the halves of (N, 3, 8) normals."""
    probe = {"op": op, "split": split, "options": dict(options), "kwargs": kwargs}
    return Sample(id, probe, data or _tensors(3, 8), after=_FLAT, loss=_MSE, description=text)


def _pair_probe_size(a: Mapping[str, Any]) -> int:
    """``PairProbe(op, split, options)``: what ``op(**options)`` holds, by the size rule of
    ``op``'s declaration here (every two-input layer is declared in this module), its
    arguments completed with the declared defaults."""
    inner = next((o for o in EXTRA_LAYERS if o.name == a["op"]), None)
    if inner is None or inner.size is None:
        return 0
    options = a["options"] if isinstance(a["options"], Mapping) else {}
    args = {**inner.args, **options}
    if any(v is REQUIRED for v in args.values()):
        raise KeyError(f"{inner.name}: a required argument is missing")
    return inner.size(args)


def _two_inputs(name: str) -> str:
    return (f"takes two inputs: the op checks op-pair-{name.lower()}* run it through the "
            "one-input PairProbe; parity_tests/test_pairs_parity.py checks broadcasting and "
            "every option against torch")


# PairProbe's samples check the two-input layers declared below
_PROBE_SAMPLES = (
    _pair("pair-cosinesimilarity", "CosineSimilarity", {},
          "CosineSimilarity along dim 1 of two (N, 3, 4) halves"),
    _pair("pair-cosinesimilarity-eps", "CosineSimilarity", {"dim": -1, "eps": 0.5},
          "CosineSimilarity along the last dim, eps 0.5 (some norms clamped)"),
    _pair("pair-pairwisedistance", "PairwiseDistance", {},
          "PairwiseDistance, p=2, of two (N, 3, 4) halves"),
    _pair("pair-pairwisedistance-p1-keepdim", "PairwiseDistance",
          {"p": 1.0, "eps": 0.0, "keepdim": True},
          "PairwiseDistance, p=1, eps 0, keepdim"),
    _pair("pair-pairwisedistance-p3", "PairwiseDistance", {"p": 3.0},
          "PairwiseDistance, p=3"),
    _pair("pair-bilinear", "Bilinear",
          {"in1_features": 3, "in2_features": 5, "out_features": 2}, split=3,
          data=_tensors(3, 8), text="Bilinear(3, 5, 2) of two halves (N, 3, 3) and (N, 3, 5)"),
    _pair("pair-bilinear-nobias", "Bilinear",
          {"in1_features": 4, "in2_features": 4, "out_features": 3, "bias": False},
          "Bilinear(4, 4, 3) without bias"),
)

_TOKENS = Data("tokens", n=6, features=7, outputs=3, extra={"seq_len": 5})
_CE: tuple[str, Mapping[str, Any]] = ("CrossEntropyLoss", {})
_BAG_SAMPLES = tuple(
    Sample(f"embeddingbag-{mode}", {"num_embeddings": 7, "embedding_dim": 3, "mode": mode,
                                    "padding_idx": 0, **extra}, _TOKENS, loss=_CE,
           description=f"EmbeddingBag, mode {mode}, padding_idx 0, over (6, 5) token bags "
           f"as class scores{text}")
    for mode, extra, text in (("sum", {}, ""), ("mean", {"scale_grad_by_freq": True},
                                                ", scale_grad_by_freq"), ("max", {}, "")))

EXTRA_LAYERS: tuple[OpInfo, ...] = (
    # -- dropout variants (masks drawn by torch, fed to refbp) -----------------------------
    _layer("Dropout1d", "dropout", _DROP, "dropout1d", ("aten.feature_dropout.default",),
           samples=(_flat_mse("dropout1d", {"p": 0.4}, _tensors(3, 5, n=6),
                          "Dropout1d(0.4): one mask per (sample, channel) of (N, 3, 5)"),)),
    _layer("Dropout3d", "dropout", _DROP, "dropout3d", ("aten.feature_dropout.default",),
           samples=(_flat_mse("dropout3d", {"p": 0.5}, _tensors(3, 2, 2, 3, n=4),
                          "Dropout3d(0.5): one mask per (sample, channel) volume"),)),
    _layer("AlphaDropout", "dropout_alpha", _DROP, "alpha_dropout",
           ("aten.alpha_dropout.default",),
           samples=(_flat_mse("alphadropout", {"p": 0.3}, _tensors(6, n=16),
                          "AlphaDropout(0.3): dropped elements set to SELU's saturation, "
                          "then scaled and shifted"),)),
    _layer("FeatureAlphaDropout", "dropout_alpha", _DROP, "feature_alpha_dropout",
           ("aten.feature_alpha_dropout.default",),
           samples=(_flat_mse("featurealphadropout", {"p": 0.5}, _tensors(3, 2, 3, n=6),
                          "FeatureAlphaDropout(0.5) of (N, 3, 2, 3): alpha dropout per "
                          "channel"),)),
    # -- fractional max pooling (window offsets drawn by torch, fed to refbp) ----------------
    *(_layer(f"FractionalMaxPool{n}d", "fractional_pool",
             {"kernel_size": REQUIRED, "output_size": None, "output_ratio": None,
              "return_indices": False, "_random_samples": None}, f"fractional_max_pool{n}d",
             (f"aten.fractional_max_pool{n}d.default",), size=sizes.random_samples,
             output=shapes.fractional(n), samples=samples,
             checks=(Check({"output_size": 2}), Check({"output_ratio": 0.5,
                                                       "return_indices": True})))
      for n, samples in (
        (2, (_flat_mse("fractionalmaxpool2d", {"kernel_size": 2, "output_size": [4, 3]},
                       _tensors(3, 7, 6), "FractionalMaxPool2d 7x6 -> 4x3, 2x2 windows "
                       "(overlapping rows); samples drawn by torch and fed to refbp"),
             _flat_mse("fractionalmaxpool2d-ratio", {"kernel_size": [3, 2],
                                                     "output_ratio": [0.5, 0.7]},
                       _tensors(2, 9, 8), "FractionalMaxPool2d, 3x2 windows, output ratio "
                       "(0.5, 0.7): 9x8 -> 4x5"))),
        (3, (_flat_mse("fractionalmaxpool3d", {"kernel_size": 2, "output_size": [3, 2, 3]},
                       _tensors(2, 5, 4, 6), "FractionalMaxPool3d 5x4x6 -> 3x2x3, 2x2x2 "
                       "windows; samples drawn by torch and fed to refbp"),)))),
    # -- two-input layers ------------------------------------------------------------------
    _layer("CosineSimilarity", "distance", {"dim": 1, "eps": 1e-8}, "cosine_similarity",
           ("aten.cosine_similarity.default",), suite_note=_two_inputs("CosineSimilarity")),
    _layer("PairwiseDistance", "distance", {"p": 2.0, "eps": 1e-6, "keepdim": False},
           "pairwise_distance", ("aten.pairwise_distance.default",), converter=_PAIRS,
           suite_note=_two_inputs("PairwiseDistance")),
    _layer("Bilinear", "bilinear", {"in1_features": REQUIRED, "in2_features": REQUIRED,
                                    "out_features": REQUIRED, "bias": True}, "bilinear",
           ("aten.bilinear.default", "aten._trilinear.default"), size=sizes.bilinear,
           suite_note=_two_inputs("Bilinear")),
    # -- the transformer's decoder (blocks of refbp.nn.transformer) ---------------------------
    _layer("TransformerDecoderLayer", "transformer_decoder", _TF_LAYER, None, (),
           converter=_ATT, tolerance=_F32_ATT, size=sizes.decoder_layer,
           suite_note=_two_inputs("TransformerDecoderLayer").replace(
               "test_pairs_parity.py", "test_transformer_decoder_parity.py")),
    _layer("TransformerDecoder", "transformer_decoder", {"decoder_layer": REQUIRED,
                                                         "num_layers": REQUIRED, "norm": None},
           None, (), converter=_ATT, tolerance=_F32_ATT,
           suite_note="a stack of TransformerDecoderLayer built from a layer object, with two "
           "inputs; parity_tests/test_transformer_decoder_parity.py and the op checks "
           "op-pair-transformer* (inside Transformer) check it"),
    _layer("Transformer", "transformer_decoder",
           {"d_model": 512, "nhead": 8, "num_encoder_layers": 6, "num_decoder_layers": 6,
            "dim_feedforward": 2048, "dropout": 0.1, "activation": "relu",
            "custom_encoder": None, "custom_decoder": None, "layer_norm_eps": 1e-5,
            "batch_first": False, "norm_first": False, "bias": True}, None, (),
           converter=_ATT, tolerance=_F32_ATT, size=sizes.transformer,
           suite_note=_two_inputs("Transformer").replace(
               "test_pairs_parity.py", "test_transformer_decoder_parity.py")),
    # -- bags of embeddings -----------------------------------------------------------------
    _layer("EmbeddingBag", "embedding_bag",
           {"num_embeddings": REQUIRED, "embedding_dim": REQUIRED, "max_norm": None,
            "norm_type": 2.0, "scale_grad_by_freq": False, "mode": "mean", "sparse": False,
            "include_last_offset": False, "padding_idx": None}, "embedding_bag",
           ("aten.embedding_bag.padding_idx", "aten._embedding_bag.default"),
           torch_only={"_weight": "torch's private initial weight (refbp: load_state_dict)"},
           size=sizes.embedding, samples=_BAG_SAMPLES, output=shapes.embedding_bag),
    # refbp's one-input adapter of the two-input layers
    _layer("PairProbe", "pair_probe", {"op": REQUIRED, "split": REQUIRED, "options": None,
                                       "kwargs": None}, None, (),
           torch_module=f"{_PAIRS}:PairProbeTorch", converter=_PAIRS, size=_pair_probe_size,
           shape_note="the output is the probed two-input layer's, which has no rule yet: the "
           "activation estimate keeps the input's shape",
           samples=_PROBE_SAMPLES + samples_attention.TRANSFORMER_DECODER),
)
