"""The declared study: its schema, the report's declared section first, every table tagged, worst-case verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from harness.job.study import Study, study_from
from harness.report.contrasts import Options, contrast_table
from harness.report.design import PRIMARY, Contrast
from harness.report.estimand import EXPLORATORY_LABEL, PRIMARY_LABEL
from tests.report_frames import arm_conversations
from tests.report_synthetic import write_job
from tests.test_report import report_cli

TASKS, TRIALS = 40, 2


def test_the_study_block_is_validated_with_the_choices() -> None:
    with pytest.raises(ValidationError, match=r"choose one of \['emotion − neutral'"):
        study_from({"primary_contrast": "anger vs calm"})
    with pytest.raises(ValidationError, match="less than 1"):
        study_from({"alpha": 2})
    with pytest.raises(ValidationError, match=r"study\.family is empty"):
        study_from({"family": []})
    declared = study_from({"primary_contrast": "emotion - control", "family": ["anger"], "scope": "pooled"})
    assert (
        declared.declared
        and declared.kind == "vs_control"
        and declared.primary_contrast == "emotion − control"
    )
    assert declared.in_family("anger") and not declared.in_family("anxiety")
    assert study_from(None) == Study.default() and not Study.default().declared


def _sweep(root: Path, study: dict[str, object] | None) -> Path:
    """Retail: neutral, control, anger (−30 points), anxiety (no effect)."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.4, 0.9, TASKS)
    for variant, shift in (("control", 0.0), ("neutral", 0.0), ("anger", -0.3), ("anxiety", 0.0)):
        draws = rng.uniform(size=(TASKS, TRIALS)) < np.clip(base + shift, 0, 1)[:, None]
        write_job(root, "retail", variant, TASKS, TRIALS, lambda t, k, d=draws: bool(d[t, k]), study=study)
    return root


def _sections(markdown: str) -> list[tuple[str, str]]:
    parts = re.split(r"^(#{2,6} .*)$", markdown, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_the_report_opens_with_the_declared_family_and_tags_every_other_table(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, {"primary_contrast": "emotion − neutral", "family": ["anger"], "alpha": 0.05})
    result = report_cli(sweep, "--resamples", "500", "--permutations", "2000")
    assert result.returncode == 0, result.stderr[-2000:]
    markdown = (sweep / "report" / "report.md").read_text()
    sections = _sections(markdown)
    title, body = sections[0]
    assert title == "## Declared estimand: the primary results"
    assert body.strip().startswith(PRIMARY_LABEL + " Declared estimand (the sweep's `study:` block)")
    primary = pd.read_csv(sweep / "report" / "primary.csv")
    # the family is anger alone: Holm over one contrast is its raw p
    assert primary["contrast"].tolist() == ["anger − neutral"]
    assert primary["p_holm"].iloc[0] == primary["p_value"].iloc[0] < 0.05
    assert primary["holm_family"].iloc[0] == "declared: emotion − neutral (1 contrasts)"
    deltas = pd.read_csv(sweep / "report" / "deltas.csv")
    everything = deltas[(deltas["kind"] == PRIMARY) & (deltas["condition"] == "anger")].iloc[0]
    assert everything["p_holm"] > primary["p_holm"].iloc[0]  # the exploratory Holm counts anxiety too
    for heading, text in sections[1:]:
        if "|---|" in text and heading not in ("## Jobs", "## Cost", "## Settings"):
            assert text.strip().startswith((PRIMARY_LABEL, EXPLORATORY_LABEL)), heading
    assert markdown.count(PRIMARY_LABEL) == 1
    terminations = pd.read_csv(sweep / "report" / "termination_deltas.csv")
    assert set(terminations["holm_family"]) == {"exploratory: termination changes (within each model, kind)"}
    html = (sweep / "report" / "report.html").read_text()
    assert html.index("Declared estimand: the primary results") < html.index("<h2>Jobs</h2>")


def test_a_sweep_without_a_declaration_says_so_and_uses_the_default(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, None)
    result = report_cli(sweep, "--resamples", "500", "--permutations", "2000")
    assert result.returncode == 0, result.stderr[-2000:]
    markdown = (sweep / "report" / "report.md").read_text()
    assert (
        "No estimand was declared (no `study:` block in the sweep): the report uses the default, " in markdown
    )
    primary = pd.read_csv(sweep / "report" / "primary.csv")
    assert sorted(primary["contrast"]) == ["anger − neutral", "anxiety − neutral"]


def test_jobs_declaring_different_studies_are_refused_in_one_line(tmp_path: Path) -> None:
    _sweep(tmp_path, {"alpha": 0.05})
    write_job(tmp_path, "airline", "neutral", 5, 1, lambda t, k: True, study={"alpha": 0.01})
    result = report_cli(tmp_path)
    assert result.returncode != 0
    assert "declare different studies" in result.stderr and "Traceback" not in result.stderr


def _opposite_losses(rng: np.random.Generator) -> pd.DataFrame:
    """No true effect; neutral loses 30 % of its successes, anger 30 % of its failures, to user_error."""
    tasks = 115
    logits = rng.normal(0.5, 1.5, tasks)
    frames = []
    for condition, lost_when in (("neutral", 1.0), ("anger", 0.0)):
        outcomes = (rng.uniform(size=(tasks, 4)) < 1 / (1 + np.exp(-logits[:, None]))).astype(float)
        lost = (outcomes == lost_when) & (rng.uniform(size=outcomes.shape) < 0.3)
        frames.append(arm_conversations(condition, outcomes, lost))
    return pd.concat(frames, ignore_index=True)


def test_opposite_direction_losses_are_not_called_significant() -> None:
    rng = np.random.default_rng(5)
    contrast = [Contrast(PRIMARY, "m", "retail", "test", "anger", "neutral")]
    row = contrast_table(_opposite_losses(rng), contrast, {}, rng, Options(500, 2000)).iloc[0]
    # scored pairs alone: a large spurious gain; both same-direction imputations agree with it
    assert row["delta"] > 0.1 and row["p_holm"] < 0.05
    assert row["bounds_flag"] == ""
    assert row["worst_ci_low"] < 0 < row["worst_ci_high"]
    assert row["verdict"].startswith("not robust to unscored conversations (worst case -")
