"""refbp.nn.init: fan and gain rules, distributions, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.nn import Parameter, init


def test_gain_table() -> None:
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_fans() -> None:
    assert init.calculate_fan_in_and_fan_out(np.zeros((3, 5))) == (5, 3)
    assert init.calculate_fan_in_and_fan_out(np.zeros((3, 5, 2, 2))) == (20, 12)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.calculate_fan_in_and_fan_out(np.zeros(3))


@pytest.mark.parametrize(
    "fn,kwargs,std",
    [
        (init.xavier_normal_, {}, math.sqrt(2 / (400 + 300))),
        (init.xavier_uniform_, {}, math.sqrt(2 / (400 + 300))),
        (init.kaiming_normal_, {"nonlinearity": "relu"}, math.sqrt(2) / math.sqrt(400)),
        (init.kaiming_uniform_, {"nonlinearity": "relu", "mode": "fan_out"},
         math.sqrt(2) / math.sqrt(300)),
        (init.normal_, {"std": 0.3}, 0.3),
    ],
)
def test_distribution_std(fn, kwargs, std) -> None:  # type: ignore[no-untyped-def]
    w = np.zeros((300, 400))
    fn(w, generator=np.random.default_rng(0), **kwargs)
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std + 1e-3


def test_uniform_bounds_and_parameter_in_place() -> None:
    p = Parameter(np.zeros((50, 40)))
    init.kaiming_uniform_(p, a=math.sqrt(5), generator=np.random.default_rng(0))
    bound = math.sqrt(3) * math.sqrt(2 / 6) / math.sqrt(40)
    assert np.abs(p.data).max() <= bound
    assert np.abs(p.data).max() > 0.9 * bound
    init.constant_(p, 2.5)
    assert np.all(p.data == 2.5)
    init.zeros_(p)
    assert not p.data.any()
    init.ones_(p)
    assert np.all(p.data == 1)


def test_manual_seed_is_deterministic() -> None:
    init.manual_seed(7)
    a = init.normal_(np.zeros(5))
    init.manual_seed(7)
    b = init.normal_(np.zeros(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="float ndarray"):
        init.normal_(np.zeros(3, dtype=np.int64))
