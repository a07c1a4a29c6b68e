"""The worked examples of the teaching material, runnable (``refbp example NAME --out DIR``).

Each example prints its steps the way a learner follows them, writes its figures as PNG files
and returns its key numbers. Each example is a package: its NumPy half
(``refbp.examples.<name>``, which never imports torch) and, beside it, its torch half
(``refbp.examples.<name>.mirror``), which recomputes the same numbers with torch autograd;
``refbp.examples.replay`` runs both halves and compares them. The derivations are in each
example's docstring.

==================  ===========================================================================
name                what it shows
==================  ===========================================================================
line_gd             y = w x by gradient descent, converging to w* = sum xy / sum x^2
chain_rule          dC0/dw^L = a^(L-1) sigma'(z^L) 2(a^L - y) and the recursion; w_jk, n samples
sigmoid_ce          a sigmoid network with cross-entropy, forward and backward per neuron
graph_apples        the apple / orange computational graphs (``refbp.graph``), both directions
gd_variants         batch vs stochastic vs mini-batch gradient descent (MSE and cross-entropy)
linear_regression   y = a x + b on the SSE loss, compared with least squares
conv_im2col         a 2-D convolution and its backward as im2col + one matrix product
bptt                backpropagation through time: a two-step RNN unrolled, every gradient
==================  ===========================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refbp.examples import (
    bptt,
    chain_rule,
    conv_im2col,
    gd_variants,
    graph_apples,
    line_gd,
    linear_regression,
    sigmoid_ce,
)
from refbp.examples._common import Echo, ExampleSpec

__all__ = ["EXAMPLES", "ExampleSpec", "get_example", "run_example"]

EXAMPLES: dict[str, ExampleSpec] = {
    m.SPEC.name: m.SPEC
    for m in (line_gd, chain_rule, sigmoid_ce, graph_apples, gd_variants, linear_regression,
              conv_im2col, bptt)
}


def get_example(name: str) -> ExampleSpec:
    """The spec of example ``name``; unknown names raise ValueError listing the known ones."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; known examples: {', '.join(EXAMPLES)}")
    return EXAMPLES[name]


def run_example(name: str, out_dir: Path | str | None, *, echo: Echo = print) -> dict[str, Any]:
    """Run example ``name``: print its steps through ``echo``, write its PNG figures into
    ``out_dir`` (created if needed; no figures when None) and return its key numbers.
    """
    spec = get_example(name)
    return spec.run(None if out_dir is None else Path(out_dir), echo)
