"""The report's judge sections on constructed sweeps and judgments with known answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.report.build import Settings, build_report
from harness.store import JobDir
from tests.report_synthetic import write_job

TASKS = 8
FLAGGED = range(4)  # anger conversations of these tasks break the instruction's facts, and fail


def judgment(task: int, turns: list[tuple[int, str, int]], flags: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "task_id": task,
        "trial": 0,
        "conversation_started_at": None,
        "judge": "x",
        "turns": [{"turn": t, "reason": "r", "emotion": e, "intensity": i} for t, e, i in turns],
        "fidelity": [{"kind": kind, "turn": 0, "quote": "q"} for kind in flags],
        "error": None,
        "error_kind": None,
        "attempts": 1,
        "usage": {"prompt_tokens": 100, "completion_tokens": 10},
    }


def write_judgments(
    job: Path, judge: str, judgments: list[dict[str, Any]], model: str = "judge-model"
) -> None:
    path = JobDir(job).judgments(judge)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(j) + "\n" for j in judgments))
    info = {"judge": judge, "model": model, "backend": "vllm", "plumbing_check": False}
    JobDir(job).judge_info(judge).write_text(json.dumps(info))


def set_onset(job: Path, onset: int) -> None:
    lines = (job / "conversations.jsonl").read_text().splitlines()
    records = [{**json.loads(line), "onset_after_turns": onset} for line in lines]
    (job / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def simulated_by(job: Path, model: str) -> None:
    data = json.loads((job / "job.json").read_text())
    data["fingerprint"]["model"] = {"name": model}
    (job / "job.json").write_text(json.dumps(data))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """control: always succeeds, judged neutral; anger (emotion from turn 1 on): judged neutral at turn 0,
    anger at turn 1; fails where it was flagged for wrong facts."""
    control = write_job(tmp_path, "toy", "control", TASKS, 1, lambda t, k: True)
    anger = write_job(tmp_path, "toy", "anger", TASKS, 1, lambda t, k: t not in FLAGGED)
    set_onset(anger, 1)
    write_judgments(control, "a", [judgment(t, [(0, "neutral", 0), (1, "neutral", 0)]) for t in range(TASKS)])
    write_judgments(
        anger,
        "a",
        [
            judgment(t, [(0, "neutral", 0), (1, "anger", 3)], ["facts"] if t in FLAGGED else [])
            for t in range(TASKS)
        ],
    )
    return tmp_path


def test_emotion_shares_and_intensity_count_only_active_turns(sweep: Path) -> None:
    tables = build_report(sweep, settings=Settings(resamples=300, model=False)).tables
    emotions = tables["judge_emotions"].set_index("condition")
    assert emotions.loc["anger", "anger"] == 1.0 and emotions.loc["anger", "active_turns"] == TASKS
    assert emotions.loc["control", "neutral"] == 1.0 and emotions.loc["control", "active_turns"] == 2 * TASKS
    intensity = tables["judge_intensity"].set_index("condition")
    assert (
        intensity.loc["anger", "mean_intensity"] == 3.0 and intensity.loc["control", "mean_intensity"] == 0.0
    )


def test_the_manipulation_test_pairs_by_task_against_control(sweep: Path) -> None:
    (row,) = (
        build_report(sweep, settings=Settings(resamples=300, model=False))
        .tables["judge_manipulation"]
        .itertuples()
    )
    assert (row.condition, row.emotion, row.baseline) == ("anger", "anger", "control")
    assert (row.pairs, row.baseline_rate, row.variant_rate, row.delta) == (TASKS, 0.0, 1.0, 1.0)
    assert row.p_value == pytest.approx(2 / 2**TASKS) and row.took_effect


def test_fidelity_rates_and_the_clean_sensitivity_analysis(sweep: Path) -> None:
    report = build_report(sweep, settings=Settings(resamples=300, model=False))
    fidelity = report.tables["judge_fidelity"].set_index("condition")
    assert fidelity.loc["anger", "any_rate"] == 0.5 and fidelity.loc["anger", "facts_rate"] == 0.5
    assert fidelity.loc["anger", "goal_rate"] == 0.0 and fidelity.loc["control", "any_rate"] == 0.0
    deltas = report.tables["judge_fidelity_deltas"].set_index("flag")
    assert deltas.loc["any", "delta"] == 0.5 and deltas.loc["facts", "ci_low"] > 0
    (clean,) = report.tables["judge_clean_success_deltas"].itertuples()
    assert (clean.pairs, clean.delta) == (TASKS, -0.5)
    assert (clean.clean_pairs, clean.clean_delta) == (TASKS - len(FLAGGED), 0.0)
    text = report.markdown.read_text()
    assert "Success deltas on fidelity-clean conversations" in text and "judge_emotions.png" in text
    assert "same model as the simulated user" not in text


def test_neutral_is_the_baseline_when_present(sweep: Path) -> None:
    neutral = write_job(sweep, "toy", "neutral", TASKS, 1, lambda t, k: True)
    write_judgments(neutral, "a", [judgment(t, [(0, "anger", 1), (1, "anger", 1)]) for t in range(TASKS)])
    tables = build_report(sweep, settings=Settings(resamples=300, model=False)).tables
    rows = tables["judge_manipulation"].set_index("condition")
    assert rows.loc["anger", "baseline"] == "neutral" and rows.loc["anger", "delta"] == 0.0
    assert set(tables["judge_fidelity_deltas"]["condition"]) == {"anger", "control"}


def test_cohens_kappa_between_two_judge_runs_and_the_same_model_warning(sweep: Path) -> None:
    control, anger = (sweep / "toy-model" / "toy-test" / v / "seed0" for v in ("control", "anger"))
    write_judgments(
        control, "b", [judgment(t, [(0, "neutral", 0), (1, "neutral", 0)]) for t in range(TASKS)], "toy-model"
    )
    # the second judge calls two of anger's active turns frustration, and flags nothing
    write_judgments(
        anger,
        "b",
        [judgment(t, [(0, "neutral", 0), (1, "frustration" if t < 2 else "anger", 2)]) for t in range(TASKS)],
        "toy-model",
    )
    simulated_by(anger, "judge-model")
    report = build_report(sweep, settings=Settings(resamples=300, model=False))
    (row,) = report.tables["judge_agreement"].itertuples()
    assert (row.judge, row.other_judge, row.turns_in_both) == ("a", "b", 4 * TASKS)
    observed, expected = 30 / 32, (24 / 32) ** 2 + (8 / 32) * (6 / 32)  # neutral 24 vs 24; anger 8 vs 6
    assert row.emotion_kappa == pytest.approx((observed - expected) / (1 - expected))
    assert row.any_flag_kappa == pytest.approx(0.0)  # judge b never flags: no agreement beyond chance
    assert "the same model as the simulated user in 1 jobs" in report.markdown.read_text()


def test_a_sweep_without_judgments_has_no_judge_section_but_the_lexicon_check(sweep: Path) -> None:
    for path in sweep.rglob("judgments"):
        for file in path.iterdir():
            file.unlink()
    report = build_report(sweep, settings=Settings(resamples=300, model=False))
    assert "judge_emotions" not in report.tables and "Judge:" not in report.markdown.read_text()
    lexicon = report.tables["lexicon_check"]
    # anger's only words come before its onset (turn 1 is the bare stop): nothing of it is scored
    assert set(lexicon["condition"]) == {"control"} and set(lexicon["lexicon"]) == {"anger"}
    assert (lexicon["active_turns"] == TASKS).all() and (lexicon["markers_per_100_words"] == 0).all()
