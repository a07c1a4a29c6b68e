"""``-k`` expressions select scenario names as pytest's ``-k`` selects tests."""

from __future__ import annotations

import pytest

from refbp.parity.keyword import KeywordError, keyword_matcher

NAMES = ["adam-mlp-f64", "adam-mlp-f32", "sgd-mlp-f64", "op-relu-f64", "op-ReLU6-f32",
         "teach-line-gd-f64"]


def _pick(expression: str) -> list[str]:
    m = keyword_matcher(expression)
    return [n for n in NAMES if m(n)]


@pytest.mark.parametrize(("expression", "expected"), [
    ("adam", ["adam-mlp-f64", "adam-mlp-f32"]),
    ("ADAM", ["adam-mlp-f64", "adam-mlp-f32"]),
    ("relu", ["op-relu-f64", "op-ReLU6-f32"]),
    ("adam and not f32", ["adam-mlp-f64"]),
    ("sgd or teach", ["sgd-mlp-f64", "teach-line-gd-f64"]),
    ("not f64", ["adam-mlp-f32", "op-ReLU6-f32"]),
    ("(adam or sgd) and f64", ["adam-mlp-f64", "sgd-mlp-f64"]),
    ("adam or sgd and f64", ["adam-mlp-f64", "adam-mlp-f32", "sgd-mlp-f64"]),  # and binds first
    ("not not relu", ["op-relu-f64", "op-ReLU6-f32"]),
    ("*-f32", ["adam-mlp-f32", "op-ReLU6-f32"]),
    ("op-* AND NOT *relu6*", ["op-relu-f64"]),
    ("nothing", []),
])
def test_expressions(expression: str, expected: list[str]) -> None:
    assert _pick(expression) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("adam and", "expected a word, 'not' or '\\(' at the end"),
    ("(adam or sgd", "expected '\\)' at the end"),
    ("adam sgd", "expected 'and', 'or' or the end at 'sgd'"),
    ("or adam", "expected a word, 'not' or '\\(' at 'or'"),
    ("adam)", "expected 'and', 'or' or the end at '\\)'"),
])
def test_malformed_expressions_are_clear_errors(expression: str, message: str) -> None:
    with pytest.raises(KeywordError, match=message):
        keyword_matcher(expression)
