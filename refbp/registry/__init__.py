"""Declarations: every optimizer and lr scheduler of refbp, each declared once.

In the manner of torch's ``optim_db``, but as the source of truth rather than a test table:
the option-set table of the checks, the suites' optimizer scenarios, CLI help text, the
explain catalog's registration, the docs tables and the parametrized tests are built from
these declarations. Importing the package is cheap and imports neither torch nor the NumPy
side: classes are named by dotted path and resolved on demand.

- :mod:`refbp.registry.optimizers`: the optimizers (:class:`~.optimizers.OptimInfo`);
- :mod:`refbp.registry.schedulers`: the lr schedulers (:class:`~.schedulers.SchedulerInfo`).
"""
