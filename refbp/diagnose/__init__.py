"""Explain a mismatch: check a user's own from-scratch code and name the convention it follows.

>>> from refbp.diagnose import check_optimizer
>>> d = check_optimizer("my_adam.py:Adam", like="Adam", options={"lr": 1e-2})  # doctest: +SKIP
>>> d.matches_torch, d.matched_variant.name                                       # doctest: +SKIP
(False, 'adam_eps_inside_sqrt')
>>> print(d.explanation)                                                          # doctest: +SKIP
your Adam matches torch's Adam except epsilon is added inside the square root ...

- :func:`check_optimizer`, :func:`check_layer`, :func:`check_loss` -> :class:`Diagnosis`
- the catalog of conventions: :func:`catalog_frame`, :func:`variants_for`
- :func:`localize`: the first diverging layer and tensor of a user model
- :func:`ulp_distance`, :func:`ulp_histogram`, :func:`thread_noise`
- user code: ``path/to/file.py:ClassName`` (:func:`load_user`), options ``lr=0.01,betas=0.9,0.99``
  (:func:`parse_options`); errors are :class:`UserCodeError` with a message naming what was
  expected.

Importing this package does not import torch; ``oracle="torch"`` (the default when torch is
installed) imports it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refbp._lazy import lazy_exports

_EXPORTS = {
    "Variant": "catalog", "catalog_frame": "catalog", "get_variant": "catalog",
    "variants_for": "catalog", "check_layer": "api", "check_loss": "api",
    "check_optimizer": "api", "Diagnosis": "diagnosis", "Divergence": "diagnosis",
    "Localization": "localization", "localize": "localization", "ThreadNoise": "noise",
    "thread_noise": "noise", "ulp_distance": "noise", "ulp_histogram": "noise",
    "UserCodeError": "spec", "load_user": "loader", "parse_options": "spec",
}
__all__ = [
    "Diagnosis", "Divergence", "Localization", "ThreadNoise", "UserCodeError", "Variant",
    "catalog_frame", "check_layer", "check_loss", "check_optimizer", "get_variant", "load_user",
    "localize", "thread_noise", "parse_options", "ulp_distance", "ulp_histogram", "variants_for",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from refbp.diagnose.api import check_layer, check_loss, check_optimizer
    from refbp.diagnose.catalog import Variant, catalog_frame, get_variant, variants_for
    from refbp.diagnose.diagnosis import Diagnosis, Divergence
    from refbp.diagnose.loader import load_user
    from refbp.diagnose.localization import Localization, localize
    from refbp.diagnose.noise import ThreadNoise, thread_noise, ulp_distance, ulp_histogram
    from refbp.diagnose.spec import UserCodeError, parse_options
