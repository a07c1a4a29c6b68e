"""Declarations: every op (layer, activation, loss), optimizer and lr scheduler of refbp, each
declared once.

In the manner of torch's ``OpInfo`` / ``module_db`` / ``optim_db``, but as the source of truth
rather than a test table: the converters, the op-check scenarios of the suites, ``refbp list``,
the explain catalog's registration, CLI help text, the docs tables and the parametrized tests
are built from these declarations. Importing the package is cheap and imports neither torch
nor the NumPy side: classes and functions are named by dotted path and resolved on demand.

- :mod:`refbp.registry.opinfo`: the declaration types (:class:`~refbp.registry.opinfo.OpInfo`,
  :class:`~refbp.registry.opinfo.Sample`, :class:`~refbp.registry.opinfo.Check`);
- :mod:`refbp.registry.activations`, :mod:`~.losses`, :mod:`~.layers`: the declarations;
- :mod:`refbp.registry.ops`: all of them (``OPS``) and the look-ups (by name, kind, ATen op);
- :mod:`refbp.registry.optimizers`: the optimizers (:class:`~.optimizers.OptimInfo`);
- :mod:`refbp.registry.schedulers`: the lr schedulers (:class:`~.schedulers.SchedulerInfo`);
- :mod:`refbp.registry.table`: the name look-up the optimizer and scheduler tables share;
- :mod:`refbp.registry.docs`: the op table of ``docs/ops.md`` and ``refbp list --ops``.

How to add an op: CONTRIBUTING.md, "Add a layer, loss or activation"; an optimizer or lr
scheduler: "Add an optimizer or lr scheduler".
"""
