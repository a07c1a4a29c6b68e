"""The arguments a scenario gives its loss, on both sides (NumPy side; the same indexing
runs on torch tensors).

A loss of an input and a target is called ``loss(output, target)``. A loss of more arguments
is fed as its declaration says (``refbp.registry.opinfo.Feed``): slices of the model's output
along dimension 1, then the data's target or its columns. Its gradient with respect to the
model's output is the gradients of the slices stacked back (refbp: ``backward`` for the
first argument, ``grad(name)`` for the others); torch's autograd does the same through the
indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.registry.opinfo import Feed
from refbp.registry.ops import OPS

_FEEDS = {o.name: o.feed for o in OPS if o.feed is not None}


@dataclass(frozen=True)
class LossFeed:
    """The declared :class:`~refbp.registry.opinfo.Feed` of one loss with the names of its
    arguments (``Loss.arguments``)."""

    feed: Feed
    names: tuple[str, ...]

    def arguments(self, output: Any, target: Any) -> tuple[Any, ...]:
        """The loss's arguments from the model's ``output`` and the data's ``target`` (NumPy
        arrays or torch tensors alike: indexing and ``swapaxes`` only)."""
        k = self.feed.inputs
        if self.feed.time_major:
            inputs: tuple[Any, ...] = (output.swapaxes(0, 1),)
        else:
            inputs = (output,) if k == 1 else tuple(output[:, j] for j in range(k))
        rest = len(self.names) - k
        if rest <= 1:
            return (*inputs, target)[:len(self.names)]
        return (*inputs, target[:, :-(rest - 1)],
                *(target[:, j] for j in range(-(rest - 1), 0)))

    def output_gradient(self, loss: Any) -> np.ndarray:
        """d loss / d model output after ``loss`` ran on :meth:`arguments` (refbp; a 0-d
        loss)."""
        first = np.asarray(loss.backward())
        if self.feed.time_major:
            return first.swapaxes(0, 1)
        if self.feed.inputs == 1:
            return first
        rest = [np.asarray(loss.grad(n)) for n in self.names[1:self.feed.inputs]]
        return np.stack([first, *rest], axis=1)

    @property
    def target_name(self) -> str | None:
        """The argument the data's target is (None when it feeds several or none)."""
        names = self.names[self.feed.inputs:]
        return names[0] if len(names) == 1 else None


def loss_feed(loss: Any) -> LossFeed:
    """How a scenario feeds the refbp ``loss``: its declared feed (``loss(output, target)``
    for a loss without one, also one that is not declared)."""
    names = tuple(getattr(loss, "arguments", ("input", "target")))
    return LossFeed(_FEEDS.get(type(loss).__name__, Feed()), names)
