"""The exact distribution of every initial draw: each layer's parameters and each initialiser,
recorded from the generator they are given (the bounds and standard deviations, computed by
hand from torch's rules in ``torch/nn/init.py`` and the layers' ``reset_parameters``).

A parity run copies refbp's initial weights into torch (the two libraries' random streams
differ), so it cannot see a wrong bound; these tests can, exactly and without torch. The
statistical checks of ``tests/test_init.py`` add that the draws fill the whole range.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refbp import nn as rnn
from refbp.nn import init

Draw = tuple[tuple[int, ...], str, float, float]
"""(shape, "uniform" or "normal", low or mean, high or std)."""


class Recorder:
    """A stand-in for ``numpy.random.Generator`` that records each ``uniform``/``normal``
    call's arguments and returns zeros of the asked shape."""

    def __init__(self) -> None:
        self.draws: list[Draw] = []

    def uniform(self, low: float, high: float, size: tuple[int, ...]) -> np.ndarray:
        self.draws.append((tuple(size), "uniform", low, high))
        return np.zeros(size)

    def normal(self, loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray:
        self.draws.append((tuple(size), "normal", loc, scale))
        return np.zeros(size)


def _draws(build: Callable[[Any], Any]) -> list[Draw]:
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-element tensors: torch's no-op warning
        build(rec)
    return rec.draws


def _u(shape: tuple[int, ...], bound: float) -> Draw:
    return (shape, "uniform", -bound, bound)


def _same(got: list[Draw], want: list[Draw]) -> None:
    """Equal shapes and kinds, and bounds equal to the hand-derived ones up to the rounding of
    the at most 8 operations either side takes (each within half an ulp, 1.1e-16 relative:
    2e-15 bounds them; a planted bug moves a bound by a factor)."""
    assert [(s, k) for s, k, _, _ in got] == [(s, k) for s, k, _, _ in want]
    for (_, _, a, b), (_, _, wa, wb) in zip(got, want, strict=True):
        assert a == pytest.approx(wa, rel=2e-15, abs=0.0)
        assert b == pytest.approx(wb, rel=2e-15, abs=0.0)


# (name, build(generator), draws): Linear and Conv weights are kaiming_uniform_(a=sqrt(5)):
# gain sqrt(2 / (1 + 5)) = 1/sqrt(3), bound sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in);
# their bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Recurrent layers: every parameter
# U(-1/sqrt(hidden), 1/sqrt(hidden)). Embedding N(0, 1).
LAYERS: list[tuple[str, Callable[[Any], Any], list[Draw]]] = [
    ("Linear(40, 30)", lambda g: rnn.Linear(40, 30, generator=g),
     [_u((30, 40), 1 / math.sqrt(40)), _u((30,), 1 / math.sqrt(40))]),
    # no input feature: the weight has no element (left alone), the bias bound is 0
    ("Linear(0, 3)", lambda g: rnn.Linear(0, 3, generator=g), [_u((3,), 0.0)]),
    ("Conv2d(4, 6, 3)", lambda g: rnn.Conv2d(4, 6, 3, generator=g),  # fan_in 4 * 9 = 36
     [_u((6, 4, 3, 3), 1 / 6), _u((6,), 1 / 6)]),
    ("Conv2d(4, 6, 3, groups=2)", lambda g: rnn.Conv2d(4, 6, 3, groups=2, generator=g),
     [_u((6, 2, 3, 3), 1 / math.sqrt(18)), _u((6,), 1 / math.sqrt(18))]),
    ("Conv1d(3, 5, 4)", lambda g: rnn.Conv1d(3, 5, 4, generator=g),  # fan_in 12
     [_u((5, 3, 4), 1 / math.sqrt(12)), _u((5,), 1 / math.sqrt(12))]),
    # transposed: weight (in, out / groups, k, k), fan_in = size(1) * 9 = 54
    ("ConvTranspose2d(4, 6, 3)", lambda g: rnn.ConvTranspose2d(4, 6, 3, generator=g),
     [_u((4, 6, 3, 3), 1 / math.sqrt(54)), _u((6,), 1 / math.sqrt(54))]),
    ("RNN(3, 25)", lambda g: rnn.RNN(3, 25, generator=g),
     [_u((25, 3), 0.2), _u((25, 25), 0.2), _u((25,), 0.2), _u((25,), 0.2)]),
    ("GRU(3, 16, bias=False)", lambda g: rnn.GRU(3, 16, bias=False, generator=g),
     [_u((48, 3), 0.25), _u((48, 16), 0.25)]),
    ("LSTMCell(2, 4)", lambda g: rnn.LSTMCell(2, 4, generator=g),
     [_u((16, 2), 0.5), _u((16, 4), 0.5), _u((16,), 0.5), _u((16,), 0.5)]),
    ("Embedding(10, 4)", lambda g: rnn.Embedding(10, 4, generator=g),
     [((10, 4), "normal", 0.0, 1.0)]),
    # in_proj xavier_uniform_: fans 8 and 24, bound sqrt(3) * sqrt(2 / 32) = sqrt(6 / 32);
    # the out_proj Linear's own draws first (built before the reset), its bias then zeroed;
    # bias_k/bias_v xavier_normal_ of (1, 1, 8): fans 8 and 8, std sqrt(2 / 16)
    ("MultiheadAttention(8, 2, add_bias_kv=True)",
     lambda g: rnn.MultiheadAttention(8, 2, add_bias_kv=True, generator=g),
     [_u((8, 8), 1 / math.sqrt(8)), _u((8,), 1 / math.sqrt(8)), _u((24, 8), math.sqrt(6 / 32)),
      ((1, 1, 8), "normal", 0.0, math.sqrt(2 / 16)),
      ((1, 1, 8), "normal", 0.0, math.sqrt(2 / 16))]),
]


@pytest.mark.parametrize("name,build,want", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_initial_draws(name: str, build: Callable[[Any], Any], want: list[Draw]) -> None:
    _same(_draws(build), want)


# (name, call(weight, generator), draws) on a (300, 400) weight: fan_in 400, fan_out 300
W = (300, 400)
INITIALISERS: list[tuple[str, Callable[[np.ndarray, Any], Any], list[Draw]]] = [
    ("uniform_ defaults", lambda w, g: init.uniform_(w, generator=g), [(W, "uniform", 0.0, 1.0)]),
    ("normal_ defaults", lambda w, g: init.normal_(w, generator=g), [(W, "normal", 0.0, 1.0)]),
    ("xavier_uniform_ gain 2", lambda w, g: init.xavier_uniform_(w, gain=2.0, generator=g),
     [_u(W, 2 * math.sqrt(6 / 700))]),
    ("xavier_normal_ gain 2", lambda w, g: init.xavier_normal_(w, gain=2.0, generator=g),
     [(W, "normal", 0.0, 2 * math.sqrt(2 / 700))]),
    # leaky_relu with its default a = 0 (not the gain table's slope 0.01): gain sqrt(2)
    ("kaiming_uniform_ defaults", lambda w, g: init.kaiming_uniform_(w, generator=g),
     [_u(W, math.sqrt(6) / 20)]),
    ("kaiming_uniform_ relu fan_out",
     lambda w, g: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu", generator=g),
     [_u(W, math.sqrt(6 / 300))]),
    ("kaiming_normal_ a=0.2", lambda w, g: init.kaiming_normal_(w, a=0.2, generator=g),
     [(W, "normal", 0.0, math.sqrt(2 / 1.04) / 20)]),
    ("kaiming_normal_ tanh fan_out",
     lambda w, g: init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh", generator=g),
     [(W, "normal", 0.0, (5 / 3) / math.sqrt(300))]),
]


@pytest.mark.parametrize("name,call,want", INITIALISERS, ids=[x[0] for x in INITIALISERS])
def test_initialiser_draws(name: str, call: Callable[[np.ndarray, Any], Any],
                           want: list[Draw]) -> None:
    _same(_draws(lambda g: call(np.zeros(W), g)), want)


def test_constant_initialisers_and_prelu_rmsnorm_resets() -> None:
    w = np.full((2, 3), 7.0)
    assert np.all(init.ones_(w) == 1.0)
    assert np.all(init.zeros_(w) == 0.0)
    assert np.all(init.constant_(w, -2.5) == -2.5)
    prelu = rnn.PReLU(3, init=0.1)
    prelu.weight.data[...] = 5.0
    prelu.reset_parameters()
    assert np.all(prelu.weight.data == 0.1)
    norm = rnn.RMSNorm(4)
    norm.weight.data[...] = 5.0
    norm.reset_parameters()
    assert np.all(norm.weight.data == 1.0)
