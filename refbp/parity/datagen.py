"""Seeded synthetic data sets for parity scenarios (NumPy only).

Every generator draws in float64 from the seed's ``DATA`` stream (``refbp.data.stream_rng``)
and then casts to the scenario dtype, so the float32 and float64 variants of a scenario see the
same data up to rounding. Kinds:

==================  ====================================  =====================================
kind                input X                               target Y
==================  ====================================  =====================================
regression          N(0, 1), (n, features)                X W + 0.1 noise, (n, outputs)
classification      N(0, 1), (n, features)                argmax(X W + noise), int64 (n,)
binary              N(0, 1), (n, features)                1[X W + noise > 0], float (n, outputs)
soft_targets        N(0, 1), (n, features)                softmax of N(0, 1) rows, (n, outputs);
                                                          ``extra: {log: true}``: their logs
signs               N(0, 1), (n, features)                sign(X W + noise), +-1 float
                                                          (n, outputs); ``extra:
                                                          {target_shape: []}`` with one
                                                          output: (n,)
counts              N(0, 1), (n, features)                Poisson(exp(X W / 2)) counts, float
                                                          (n, outputs)
multilabel          N(0, 1), (n, features)                1 to outputs - 1 distinct classes per
                                                          row, then -1, int64 (n, outputs)
probabilities       U(0, 1) with exact 0 and 1, (n, f)    U(0, 1) with exact 0 and 1, (n, f)
extreme             0, +-1e-8, +-1, +-30, +-1e4 mixed     N(0, 1), (n, features)
classification_kd   N(0, 1), (n, outputs, d)              int64 (n, d); ``extra: {d: 5}``;
                                                          ``target: "probabilities"``: softmax
                                                          over the class axis, (n, outputs, d)
sequence            N(0, 1), (n, seq_len, features)       per step: X_t W + noise, (n, L, out);
                                                          last: of the time mean, (n, outputs)
tokens              int64 in [0, features), (n, seq_len)  class: argmax(counts W + noise), (n,);
                                                          per step: running mean of random
                                                          token vectors, (n, L, outputs)
images              smooth blobs, (n, features, H, W)     argmax(flat(X) W + noise), int64 (n,)
image_regression    smooth blobs, (n, features, H, W)     flat(X) W + 0.1 noise, (n, outputs)
tensors             N(0, 1), (n, features, *size)         N(0, 1), (n, *target_shape) or
                                                          (n, outputs)
ctc                 N(0, 1), (n, seq_len, features)       int64 (n, outputs + 2): labels in
                                                          [1, features - 1) padded with 0
                                                          (1 to outputs of them), then the
                                                          input length (2 outputs + 1 to
                                                          seq_len) and the target length
==================  ====================================  =====================================

Images have ``features`` channels and ``extra: {height: 28, width: 28}`` (the defaults): each
channel is the sum of three Gaussian blobs of random centre, width and sign plus 0.1 N(0, 1)
pixel noise, so neighbouring pixels are correlated as in real images.

Tensors (op checks of layers on any spatial shape) have ``features`` channels and
``extra: {size: [H, W]}`` (``[L]`` for 1-D signals; default ``[8, 8]``) and a target of shape
``extra["target_shape"]`` (e.g. the layer's output shape).

Sequence kinds read ``extra: {seq_len: 8, target: "last" | "steps"}`` (defaults 8 and
"last"). ``tokens`` are integer token ids (``features`` is the vocabulary size): they stay
int64 in every dtype, they feed an ``Embedding``, and the harness computes no input gradient
for them.

``extra`` may also carry ``ignore_index`` and ``ignore_fraction`` for classification targets
(some targets set to ``ignore_index``), ``scale`` to multiply X and ``round`` to round X to
that many decimals (after scaling; ties for max pooling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refbp.data import Stream, stream_rng
from refbp.parity.scenario import DataSpec

EXTREMES = np.array([0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 30.0, -30.0,
                     1e4, -1e4])


def _linear_target(rng: np.random.Generator, x: np.ndarray, outputs: int) -> np.ndarray:
    w = rng.standard_normal((x.shape[-1], outputs))
    return x @ w + 0.1 * rng.standard_normal((x.shape[0], outputs))


def _regression(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    return x, _linear_target(rng, x, s.outputs)


def _classification(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    y = np.argmax(_linear_target(rng, x, s.outputs), axis=1).astype(np.int64)
    return x, y


def _binary(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    return x, (_linear_target(rng, x, s.outputs) > 0).astype(np.float64)


def _with_exact_ends(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.uniform(0.0, 1.0, shape)
    mask = rng.uniform(size=shape)
    p[mask < 0.1] = 0.0
    p[mask > 0.9] = 1.0
    return p


def _probabilities(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    shape = (s.n, s.features)
    return _with_exact_ends(rng, shape), _with_exact_ends(rng, shape)


def _extreme(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.choice(EXTREMES, size=(s.n, s.features))
    return x, rng.standard_normal((s.n, s.outputs))


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _soft_targets(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    y = _softmax(rng.standard_normal((s.n, s.outputs)), 1)
    return x, np.log(y) if s.extra.get("log") else y


def _signs(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    y = np.where(_linear_target(rng, x, s.outputs) > 0, 1.0, -1.0)
    shape = s.extra.get("target_shape")
    return x, y if shape is None else y.reshape((s.n, *(int(v) for v in shape)))


def _ctc(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """CTCLoss's data: the labels avoid class 0 and the last (either may be the blank), and
    every input is long enough for its labels with a blank between repeats."""
    steps, most = _seq_len(s), s.outputs
    if s.features < 3 or steps < 2 * most + 1:
        raise ValueError(f"ctc data need features >= 3 and seq_len >= 2 outputs + 1, got "
                         f"features={s.features}, seq_len={steps}, outputs={most}")
    lengths = rng.integers(1, most + 1, s.n)
    labels = rng.integers(1, s.features - 1, (s.n, most)) * (np.arange(most) < lengths[:, None])
    inputs = rng.integers(2 * most + 1, steps + 1, s.n)
    y = np.concatenate([labels, inputs[:, None], lengths[:, None]], axis=1).astype(np.int64)
    return rng.standard_normal((s.n, steps, s.features)), y


def _counts(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    rate = np.exp(np.clip(_linear_target(rng, x, s.outputs) / 2, -5, 3))
    return x, rng.poisson(rate).astype(np.float64)


def _multilabel(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, s.features))
    y = np.full((s.n, s.outputs), -1, dtype=np.int64)
    for row in y:
        k = int(rng.integers(1, max(s.outputs, 2)))
        row[:k] = rng.permutation(s.outputs)[:k]
    return x, y


def _classification_kd(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    d = int(s.extra.get("d", 5))
    x = rng.standard_normal((s.n, s.outputs, d))
    if s.extra.get("target") == "probabilities":
        return x, _softmax(rng.standard_normal((s.n, s.outputs, d)), 1)
    y = rng.integers(0, s.outputs, size=(s.n, d)).astype(np.int64)
    return x, y


def _seq_len(s: DataSpec) -> int:
    return int(s.extra.get("seq_len", 8))


def _per_step(s: DataSpec) -> bool:
    target = s.extra.get("target", "last")
    if target not in ("last", "steps"):
        raise ValueError(f"sequence target must be 'last' or 'steps', got {target!r}")
    return target == "steps"


def _sequence(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((s.n, _seq_len(s), s.features))
    w = rng.standard_normal((s.features, s.outputs))
    if _per_step(s):
        return x, x @ w + 0.1 * rng.standard_normal(x.shape[:2] + (s.outputs,))
    return x, x.mean(axis=1) @ w + 0.1 * rng.standard_normal((s.n, s.outputs))


def _tokens(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, s.features, size=(s.n, _seq_len(s)), dtype=np.int64)
    if _per_step(s):
        vectors = rng.standard_normal((s.features, s.outputs))[x]
        steps = np.arange(1, x.shape[1] + 1)[None, :, None]
        return x, np.cumsum(vectors, axis=1) / steps
    counts = np.stack([np.bincount(row, minlength=s.features) for row in x]).astype(float)
    y = np.argmax(_linear_target(rng, counts, s.outputs), axis=1).astype(np.int64)
    return x, y


def _image_size(s: DataSpec) -> tuple[int, int]:
    return int(s.extra.get("height", 28)), int(s.extra.get("width", 28))


def _tensor_size(s: DataSpec) -> tuple[int, ...]:
    return tuple(int(v) for v in s.extra.get("size", (8, 8)))


def _blob_images(rng: np.random.Generator, s: DataSpec) -> np.ndarray:
    h, w = _image_size(s)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    shape = (s.n, s.features, 3)
    cy, cx = rng.uniform(0, h, shape), rng.uniform(0, w, shape)
    width = rng.uniform(1.0, max(h, w) / 3, shape)
    sign = rng.choice([-1.0, 1.0], shape)
    d2 = ((yy - cy[..., None, None]) ** 2 + (xx - cx[..., None, None]) ** 2)
    blobs = sign[..., None, None] * np.exp(-d2 / (2 * width[..., None, None] ** 2))
    return blobs.sum(axis=2) + 0.1 * rng.standard_normal((s.n, s.features, h, w))


def _images(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = _blob_images(rng, s)
    y = np.argmax(_linear_target(rng, x.reshape(s.n, -1), s.outputs), axis=1)
    return x, y.astype(np.int64)


def _image_regression(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    x = _blob_images(rng, s)
    return x, _linear_target(rng, x.reshape(s.n, -1), s.outputs)


def _tensors(rng: np.random.Generator, s: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(int(v) for v in s.extra.get("target_shape", (s.outputs,)))
    return (rng.standard_normal((s.n, s.features, *_tensor_size(s))),
            rng.standard_normal((s.n, *shape)))


GENERATORS: dict[str, Callable[[np.random.Generator, DataSpec],
                               tuple[np.ndarray, np.ndarray]]] = {
    "regression": _regression,
    "classification": _classification,
    "binary": _binary,
    "soft_targets": _soft_targets,
    "signs": _signs,
    "counts": _counts,
    "multilabel": _multilabel,
    "probabilities": _probabilities,
    "extreme": _extreme,
    "classification_kd": _classification_kd,
    "sequence": _sequence,
    "tokens": _tokens,
    "images": _images,
    "image_regression": _image_regression,
    "tensors": _tensors,
    "ctc": _ctc,
}


def input_shape(spec: DataSpec) -> tuple[int, ...]:
    """The shape of X for ``spec`` (the table above), without generating it."""
    kind, n, f = spec.kind, spec.n, spec.features
    if kind == "classification_kd":
        return (n, spec.outputs, int(spec.extra.get("d", 5)))
    if kind in ("sequence", "ctc"):
        return (n, _seq_len(spec), f)
    if kind == "tokens":
        return (n, _seq_len(spec))
    if kind in ("images", "image_regression"):
        return (n, f, *_image_size(spec))
    if kind == "tensors":
        return (n, f, *_tensor_size(spec))
    return (n, f)


def make_data(spec: DataSpec, dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``(X, Y)`` for a scenario: X in ``dtype`` (int64 token ids stay int64),
    Y float in ``dtype`` or int64."""
    if spec.kind not in GENERATORS:
        raise ValueError(f"unknown data kind {spec.kind!r}; known: {sorted(GENERATORS)}")
    if spec.n < 1 or spec.features < 1 or spec.outputs < 1:
        raise ValueError(f"data sizes must be positive, got n={spec.n}, "
                         f"features={spec.features}, outputs={spec.outputs}")
    rng = stream_rng(seed, Stream.DATA)
    x, y = GENERATORS[spec.kind](rng, spec)
    if x.dtype.kind == "f":
        x = x * float(spec.extra.get("scale", 1.0))
        if "round" in spec.extra:
            x = np.round(x, int(spec.extra["round"]))
        x = x.astype(dtype)
    if y.dtype.kind == "i" and "ignore_index" in spec.extra:
        frac = float(spec.extra.get("ignore_fraction", 0.25))
        y = np.where(rng.uniform(size=y.shape) < frac, int(spec.extra["ignore_index"]), y)
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    return x, y
