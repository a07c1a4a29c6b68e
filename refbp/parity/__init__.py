"""The parity harness: scenarios run through refbp and torch side by side.

- :mod:`refbp.parity.scenario`: what a scenario is (model, loss, optimizer, data, dtype, seed);
- :mod:`refbp.parity.suites`: the built-in suites (``quick``, ``full``), one module per family;
- :mod:`refbp.parity.build`, :mod:`~.trial`, :mod:`~.runner`, :mod:`~.judging`,
  :mod:`~.referee`: build both sides, step them, measure and judge every tensor;
- :mod:`refbp.parity.session` and :mod:`~.sweep`: run a list of scenarios (serially, in
  worker processes or on Dask) and stream the rows to a report.

Importing this package imports nothing else; the submodules that need torch import it.
"""
