"""The public API is typed for users: ``mypy --strict`` on a user's file sees the real
signatures behind the lazy package faces (``refbp.testing``, ``refbp.report``,
``refbp.diagnose``) and behind ``refbp.nn``'s and ``refbp.optim``'s exports built from the
declarations, so a misspelt keyword is reported, and a correct file passes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import refbp

mypy_api = pytest.importorskip("mypy.api")

CORRECT = """\
    import numpy as np
    from torch import nn

    import refbp.testing
    from refbp.diagnose import check_optimizer
    from refbp.report import load_results
    from refbp.nn import Linear
    from refbp.testing import assert_parity, parity_table

    reveal_type(refbp.testing.assert_parity)
    reveal_type(check_optimizer)
    reveal_type(load_results)
    reveal_type(Linear)


    def check(model: nn.Module) -> int:
        x = np.zeros((4, 3))
        y = np.zeros((4, 2))
        assert_parity(model, x, y, loss=nn.MSELoss(), steps=2, dtype="float64")
        return len(parity_table(model, x, y, loss=nn.MSELoss(), optimizer=("SGD", {"lr": 0.1})))
    """

MISSPELT = """\
    import numpy as np
    from torch import nn

    from refbp.nn import Linear
    from refbp.optim import Adam
    from refbp.testing import assert_parity


    def check(model: nn.Module) -> None:
        x = np.zeros((4, 3))
        assert_parity(model, x, x, loss=nn.MSELoss(), step=2)
        Linear(in_feature=3, out_features=2)
        Adam(Linear(3, 2).parameters(), beta=(0.9, 0.99))
    """

# refbp is read as an installed package is (its own errors are not the user's); torch is left
# out of the analysis (it would be Any without its stubs too) to keep the check quick.
CONFIG = """\
    [mypy]
    strict = True
    mypy_path = {root}

    [mypy-refbp.*]
    follow_imports = silent

    [mypy-torch.*]
    follow_imports = skip
    follow_imports_for_stubs = True
    """


@pytest.mark.slow  # a mypy run (~10 s); CI runs -m slow
def test_mypy_strict_sees_the_real_signatures(tmp_path: Path) -> None:
    root = Path(refbp.__file__).resolve().parents[1]
    (tmp_path / "mypy.ini").write_text(textwrap.dedent(CONFIG).format(root=root))
    (tmp_path / "user_ok.py").write_text(textwrap.dedent(CORRECT))
    (tmp_path / "user_typo.py").write_text(textwrap.dedent(MISSPELT))
    out, err, _ = mypy_api.run(["--config-file", str(tmp_path / "mypy.ini"),
                                "--cache-dir", str(tmp_path / "cache"),
                                str(tmp_path / "user_ok.py"), str(tmp_path / "user_typo.py")])
    lines = [ln for ln in out.splitlines() if ln.startswith(str(tmp_path))]
    errors = [ln for ln in lines if ": error: " in ln]
    assert errors == [f"{tmp_path / 'user_typo.py'}:11: error: Unexpected keyword argument "
                      '"step" for "assert_parity"; did you mean "steps"?  [call-arg]',
                      f"{tmp_path / 'user_typo.py'}:12: error: Unexpected keyword argument "
                      '"in_feature" for "Linear"; did you mean "in_features"?  [call-arg]',
                      f"{tmp_path / 'user_typo.py'}:13: error: Unexpected keyword argument "
                      '"beta" for "Adam"; did you mean "betas"?  [call-arg]',
                      ], out + err
    revealed = [re.sub(r".*Revealed type is ", "", ln) for ln in lines if "Revealed type" in ln]
    assert len(revealed) == 4, out
    assert revealed[0].startswith('"def (torch_model: ') and "steps: int =" in revealed[0]
    assert revealed[1].endswith('-> refbp.diagnose.diagnosis.Diagnosis"')
    assert revealed[2].startswith('"def (path: str | os.PathLike[str]) -> tuple['), revealed[2]
    # refbp.nn's exports are built from the declarations; its generated stub types them
    assert revealed[3].startswith('"def (in_features: int, out_features: int, bias: bool ='), (
        revealed[3])
