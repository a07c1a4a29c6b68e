"""A diagnosis written as a report carries its explanation into summary.md and report.html."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from refbp.diagnose import check_optimizer
from refbp.report import collect_provenance, scenario_summary, write_report

USER = Path(__file__).parent / "user_code"


def test_explanation_reaches_summary_and_html(tmp_path: Path) -> None:
    d = check_optimizer(f"{USER}/adam_family.py:AdamEpsInsideSqrt", like="Adam", oracle="refbp")
    assert not d.matches_torch
    assert "epsilon is added inside the square root" in d.explanation
    summary = scenario_summary(d.frame)
    assert summary["explanation"].iloc[0] == d.explanation
    assert not summary["passed"].iloc[0]
    prov = collect_provenance(seeds=[0], started=datetime.now(timezone.utc), wall_time_s=0.0)
    out = write_report(d.frame, tmp_path / "diag", prov)
    md = (out / "summary.md").read_text()
    html = (out / "report.html").read_text()
    head = "your AdamEpsInsideSqrt matches torch"
    assert f"**Explanation:** {head}'s (refbp reference) Adam except" in md
    assert f"<b>Explanation:</b> {head}&#x27;s (refbp reference) Adam" in html


def test_check_report_labels_the_user_side_as_user_code(tmp_path: Path) -> None:
    from refbp.cli import main

    code = main(["check-optimizer", f"{USER}/adam_family.py:AdamEpsInsideSqrt", "--like",
                 "Adam", "--oracle", "refbp", "--out", str(tmp_path / "rep")])
    assert code == 1
    md = (tmp_path / "rep" / "summary.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "your code (AdamEpsInsideSqrt) vs torch. Each row's verdict" in md
    assert (f"reproduce with: `refbp check-optimizer {USER}/adam_family.py:AdamEpsInsideSqrt "
            "--like Adam --steps 20 --seed 0 --oracle refbp`") in md
    assert "| kind | result | worst normwise | worst tol ratio | at step | tensor | index | " \
        "your code | torch |" in md
    assert "your code (AdamEpsInsideSqrt) vs torch. Each row&#x27;s verdict" in html
    assert "refbp (NumPy) vs torch" not in md
