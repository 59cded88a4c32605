"""The report's contrasts on constructed sweeps with known truths: neutral baseline, bounds, dose, refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.report_synthetic import write_job
from tests.test_report import report_cli

TASKS, TRIALS = 115, 4
NOOP = (3, 7)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Retail 115 tasks × 4 trials: anger costs 5/10/15 points at low/medium/high against neutral;
    anxiety has no effect but loses 40 % of its would-be failures (and 2 % of successes) to user_error.
    Airline 50 tasks: anger at medium costs 10 points. Every arm draws its own outcomes."""
    sweep = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(11)
    base = {"retail": rng.uniform(0.3, 0.9, TASKS), "airline": rng.uniform(0.3, 0.9, 50)}

    def draws(env: str, shift: float) -> np.ndarray:
        p = np.clip(base[env] + shift, 0, 1)
        return rng.uniform(size=(len(p), TRIALS)) < p[:, None]

    def job(env: str, variant: str, intensity: str | None, outcomes: np.ndarray, **extra: object) -> None:
        write_job(
            sweep,
            env,
            variant,
            outcomes.shape[0],
            TRIALS,
            lambda task, trial: bool(outcomes[task, trial]),
            intensity=intensity,
            affect_tasks=range(0, outcomes.shape[0], 2),
            noop_tasks=NOOP,
            **extra,  # type: ignore[arg-type]
        )

    job("retail", "control", None, draws("retail", 0))
    job("retail", "neutral", "medium", draws("retail", 0))
    for intensity, shift in (("low", -0.05), ("medium", -0.10), ("high", -0.15)):
        job("retail", "anger", intensity, draws("retail", shift))
    anxious = draws("retail", 0)
    lost = rng.uniform(size=anxious.shape) < np.where(anxious, 0.02, 0.40)
    job(
        "retail",
        "anxiety",
        "medium",
        anxious,
        ending=lambda task, trial: "user_error" if lost[task, trial] else "",
    )
    job("airline", "neutral", "medium", draws("airline", 0))
    job("airline", "anger", "medium", draws("airline", -0.10))
    return sweep, report_cli(sweep, "--resamples", "1000", "--permutations", "5000")


def _deltas(sweep: Path, name: str = "deltas") -> pd.DataFrame:
    return pd.read_csv(sweep / "report" / f"{name}.csv", keep_default_na=False, na_values=[""])


def test_a_known_ten_point_effect_is_recovered_against_neutral(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, result = study
    assert result.returncode == 0, result.stderr[-2000:]
    deltas = _deltas(sweep)
    primary = deltas[deltas["kind"] == "primary"].set_index(["env", "condition"])
    anger = primary.loc[("retail", "anger@medium")]
    assert anger["baseline"] == "neutral" and anger["comparisons"] == 5
    assert anger["ci_low"] <= -0.10 <= anger["ci_high"]
    assert anger["sim_ci_low"] <= -0.10 <= anger["sim_ci_high"]
    assert anger["sim_ci_low"] < anger["ci_low"]  # Bonferroni over the 5 primary contrasts
    assert anger["p_holm"] < 0.05 and anger["verdict"].endswith("points lower (significant after Holm)")
    assert pd.isna(anger["bounds_flag"])  # no unscored conversation: the bounds are the delta itself
    assert (anger["worst_ci_low"], anger["worst_ci_high"]) == (anger["sim_ci_low"], anger["sim_ci_high"])
    low = deltas[(deltas["kind"] == "vs_control") & (deltas["condition"] == "anger@low")].iloc[0]
    assert low["verdict"] == f"{100 * -low['delta']:.1f} points lower (significant after Holm)"
    assert 0.06 < anger["mde"] < anger["mde_adjusted"] < 0.13  # about 8 points, 9-10 after Holm over 5
    framing = deltas[deltas["kind"] == "framing"].iloc[0]
    assert (framing["condition"], framing["baseline"]) == ("neutral", "control")
    assert framing["verdict"].startswith("inconclusive at this size (MDE ")
    assert "retail/anger@medium − neutral: delta" in result.stdout


def test_no_effect_with_differential_user_errors_is_flagged_not_significant(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    deltas = _deltas(sweep)
    anxiety = deltas[(deltas["kind"] == "primary") & (deltas["condition"] == "anxiety")].iloc[0]
    # the scored pairs alone show a spurious gain: the lost conversations were mostly failures
    assert anxiety["delta"] > 0.05 and anxiety["p_holm"] < 0.05
    assert anxiety["variant_unscored"] > 0.1 and anxiety["baseline_unscored"] == 0
    assert anxiety["unscored_delta"] > 0.1 and anxiety["unscored_p"] < 0.001
    assert anxiety["delta_if_failure"] < 0.02 < 0.1 < anxiety["delta_if_success"]
    assert anxiety["p_holm_if_failure"] > 0.05 > anxiety["p_holm_if_success"]
    assert "significance" in anxiety["bounds_flag"]
    # the worst case (its unscored as failures, neutral's as successes) spans 0: no claim
    assert anxiety["worst_low"] <= anxiety["delta_if_failure"] and anxiety["worst_ci_low"] < 0
    assert anxiety["worst_ci_high"] >= anxiety["delta_if_success"]
    assert anxiety["verdict"] == (
        f"not robust to unscored conversations (worst case {anxiety['worst_ci_low']:+.3f} "
        f"to {anxiety['worst_ci_high']:+.3f})"
    )
    assert "significant after Holm" not in anxiety["verdict"]
    terminations = _deltas(sweep, "termination_deltas")
    user_error = terminations[
        (terminations["condition"] == "anxiety") & (terminations["termination"] == "user_error")
    ]
    assert len(user_error) == 2 and (user_error["delta"] > 0.1).all()  # against neutral and control


def test_pass_k_is_compared_on_tasks_complete_in_both_arms(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    table = _deltas(sweep, "pass_k_deltas")
    anxiety = table[(table["contrast"] == "anxiety − neutral") & (table["k"] == TRIALS)].iloc[0]
    conversations = pd.read_json(
        sweep / "toy-model/retail-test/anxiety/seed0/conversations.jsonl", lines=True
    )
    complete = conversations.groupby("task_id")["scored"].all()
    assert anxiety["tasks_complete_in_both"] == complete.sum() < TASKS
    assert anxiety["tasks_left_out"] == TASKS - complete.sum()
    # the complete tasks are the ones whose failures were not lost: the bounds show the selection
    assert anxiety["delta_if_failure"] < anxiety["delta"] - 0.1 and anxiety["delta_if_success"] > 0.1
    # worst case: cross-imputed, each end with its interval, wider than the same-direction pair
    assert (
        anxiety["worst_low"]
        <= anxiety["delta_if_failure"]
        <= anxiety["delta_if_success"]
        <= anxiety["worst_high"]
    )
    assert (
        anxiety["worst_ci_low"] <= anxiety["worst_low"] and anxiety["worst_high"] <= anxiety["worst_ci_high"]
    )
    assert anxiety["worst_ci_low"] < 0 < anxiety["worst_ci_high"]


def test_the_dose_response_finds_the_planted_trend(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    trend = _deltas(sweep, "dose_trend").set_index(["env", "emotion"])
    anger = trend.loc[("retail", "anger")]
    assert anger["doses"] == "0,1,2,3"
    assert anger["ci_low"] <= -0.05 <= anger["ci_high"] and anger["ci_high"] < 0
    assert anger["p_value"] < 0.01
    assert "one intensity of this emotion" in trend.loc[("retail", "anxiety"), "note"]
    points = _deltas(sweep, "dose_response")
    assert points[(points["env"] == "retail") & (points["emotion"] == "anger")]["arm"].tolist() == [
        "neutral", "low", "medium", "high"
    ]  # fmt: skip
    assert (sweep / "report" / "dose_response.png").stat().st_size > 5000


def test_the_primary_effect_is_pooled_across_envs(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    pooled = _deltas(sweep, "deltas_pooled")
    assert pooled["contrast"].tolist() == ["anger@medium − neutral"]
    row = pooled.iloc[0]
    assert row["envs"] == "airline,retail" and row["tasks"] == TASKS + 50
    assert row["ci_low"] <= -0.10 <= row["ci_high"] and row["p_holm"] < 0.05


def test_headlines_are_given_without_the_no_op_tasks(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    without = _deltas(sweep, "deltas_without_noop")
    anger = without[(without["env"] == "retail") & (without["condition"] == "anger@medium")]
    assert set(anger["tasks"]) == {TASKS - len(NOOP)}
    listed = "no-op tasks left out: toy-model/airline/test: tasks 3, 7; toy-model/retail/test: tasks 3, 7"
    assert listed in (sweep / "report" / "report.md").read_text()


def test_the_instruction_mood_interaction_is_tested(
    study: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = study
    mood = _deltas(sweep, "instruction_mood")
    anger = mood[(mood["env"] == "retail") & (mood["contrast"] == "anger@medium − neutral")].iloc[0]
    assert (anger["tasks_with_mood"], anger["tasks_without"]) == (58, 57)
    assert anger["interaction"] == pytest.approx(anger["delta_with_mood"] - anger["delta_without"])
    assert anger["ci_low"] < anger["interaction"] < anger["ci_high"] and 0 < anger["p_value"] <= 1


def test_the_report_model_covers_the_effect(study: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    sweep, _ = study
    model = _deltas(sweep, "conditional_logit").set_index(["env", "contrast"])
    anger = model.loc[("retail", "anger@medium − neutral")]
    assert anger["ci_high"] < 0 and anger["informative_tasks"] > 50


def test_jobs_with_different_user_simulators_are_refused(tmp_path: Path) -> None:
    write_job(tmp_path, "retail", "neutral", 20, 2, lambda task, trial: task % 2 == 0)
    write_job(
        tmp_path,
        "retail",
        "anger",
        20,
        2,
        lambda task, trial: task % 4 == 0,
        user_simulator={"backend": "vllm", "model": "other-user", "temperature": 0.7},
    )
    result = report_cli(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    line = (
        "toy-model/retail/test anger − neutral: refused: the jobs differ in user.sampling.temperature, "
        "user_simulator.backend, user_simulator.model, user_simulator.temperature (only the variant may differ)"
    )
    assert line in result.stdout.splitlines()
    deltas = pd.read_csv(tmp_path / "report" / "deltas.csv")
    assert deltas["delta"].isna().all() and (deltas["refused"] == line.split(": ", 1)[1]).all()
    assert pd.read_csv(tmp_path / "report" / "failure_examples.csv").empty


def test_a_sweep_without_neutral_names_the_missing_contrast(tmp_path: Path) -> None:
    write_job(tmp_path, "retail", "control", 12, 2, lambda task, trial: True)
    write_job(tmp_path, "retail", "anger", 12, 2, lambda task, trial: task >= 6)
    result = report_cli(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert (
        "toy-model/retail/test: no neutral arm, so the emotions' own effect (emotion − neutral) is missing; "
        "emotion − control mixes emotion and framing"
    ) in lines
    deltas = pd.read_csv(tmp_path / "report" / "deltas.csv")
    assert deltas["kind"].tolist() == ["vs_control"] and deltas["delta"].iloc[0] == -0.5


def test_agent_models_that_talked_to_different_users_are_not_compared(tmp_path: Path) -> None:
    for model, user in (("agent-a", "user-a"), ("agent-b", "user-b"), ("agent-c", "user-a")):
        for variant in ("neutral", "anger"):
            write_job(
                tmp_path,
                "retail",
                variant,
                8,
                1,
                lambda task, trial: task % 2 == 0,
                model=model,
                user_simulator={"backend": "vllm", "model": user, "temperature": 1.0},
            )
    result = report_cli(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("models ")]
    assert lines == [
        f"models {a} and {b} are not comparable: their jobs differ in user_simulator.model (only the agent "
        "may differ); their results are reported side by side, never against each other"
        for a, b in (("agent-a", "agent-b"), ("agent-b", "agent-c"))
    ]
    deltas = pd.read_csv(tmp_path / "report" / "deltas.csv")
    assert deltas["refused"].isna().all()  # each model's own contrasts stand
