"""Shrink a failing scenario: the fewest steps and the smallest mini-batch that still fail.

``refbp run --shrink`` hands every failing scenario to :func:`shrink`, which reruns it for
real (``refbp.parity.runner.run_scenario``):

1. **Steps.** A run is deterministic and step ``k`` depends only on steps ``1..k``, so the
   scenario cut to its first failing step ``k`` fails at ``k`` as well, and every shorter run
   repeats the steps that passed. One rerun with ``steps = k`` confirms it.
2. **Batch.** For a ``minibatch`` scenario, the batch sizes 1, 2, 4, ... below its own are
   tried in that order with the original number of steps; the first that fails the same way
   (a failing row that is not an ``error`` row: a smaller batch that only breaks the model,
   e.g. BatchNorm on one sample, does not count) is the smallest, and its own first failing
   step is confirmed by one more rerun. Full-batch and one-sample scenarios keep their batch.

The result names the reruns it took and carries the "reproduce with" command of the shrunk
case (``refbp.report.reproduce``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from refbp.parity.runner import ScenarioResult, run_scenario
from refbp.parity.scenario import Scenario
from refbp.report.reproduce import shrunk_text

__all__ = ["Shrunk", "batch_candidates", "shrink"]

Runner = Callable[[Scenario], ScenarioResult]


@dataclass(frozen=True)
class Shrunk:
    """The smallest failing variant of a scenario found by :func:`shrink`."""

    scenario: str
    steps: int
    of_steps: int
    batch_size: int | None
    of_batch_size: int | None
    first_failure: str
    reruns: int
    reproduce: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def sentence(self) -> str:
        """"fails with 2 of 5 step(s) and batch 1 of 8 (step 2, grad:0.weight; 3 rerun(s))"."""
        return shrunk_text(self.as_dict())


def _first_failure(result: ScenarioResult) -> tuple[int, str] | None:
    """``(step, tensor)`` of the first failing row, None when the run passes or only
    errors (an ``error`` row is another failure than the one being shrunk)."""
    row = result.first_failure
    if row is None or row["kind"] == "error":
        return None
    return int(row["step"]), str(row["tensor"])


def batch_candidates(batch_size: int) -> list[int]:
    """1, 2, 4, ... below ``batch_size``, smallest first."""
    out, b = [], 1
    while b < batch_size:
        out.append(b)
        b *= 2
    return out


def shrink(s: Scenario, result: ScenarioResult, *, suite: str = "", floors: str = "auto",
           reproduce: Callable[[Scenario], str] = lambda s: "",
           run: Runner | None = None) -> Shrunk | None:
    """The fewest steps and smallest mini-batch at which ``s`` (whose run gave ``result``)
    still fails; None when ``result`` has no failure to shrink (it passes, or only errors).

    ``run`` reruns a scenario (default: ``run_scenario`` with ``suite`` and ``floors``);
    ``reproduce`` gives the command line of a scenario.
    """
    def rerun(x: Scenario) -> ScenarioResult:
        return (run or (lambda y: run_scenario(y, suite=suite, floors=floors)))(x)

    first = _first_failure(result)
    if first is None:
        return None
    reruns = 0
    best, where = s, first
    cut = s.with_overrides(steps=first[0])
    reruns += 1
    confirmed = _first_failure(rerun(cut))
    if confirmed is not None:
        best, where = cut, confirmed
    if s.batching == "minibatch" and s.batch_size is not None:
        for b in batch_candidates(s.batch_size):
            try:
                smaller = s.with_overrides(batch_size=b)
            except ValueError:  # e.g. micro-batches that do not divide this batch
                continue
            reruns += 1
            found = _first_failure(rerun(smaller))
            if found is None:
                continue
            shorter = smaller.with_overrides(steps=found[0])
            reruns += 1
            again = _first_failure(rerun(shorter))
            best, where = (shorter, again) if again is not None else (smaller, found)
            break
    return Shrunk(s.name, best.steps, s.steps,
                  best.batch_size if s.batching == "minibatch" else None,
                  s.batch_size if s.batching == "minibatch" else None,
                  f"step {where[0]}, {where[1]}", reruns, reproduce(best))
