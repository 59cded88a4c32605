"""A manipulation check that can fail: the judge's prompt is the same whatever the sweep contains, and the
report's confusion matrix, recall/precision, intensity trend, judge errors, measured dose and agreement
figures on constructed judgments with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.judge.prompt import judge_messages, render_transcript
from harness.judge.run import JudgeSettings, family_of, judgeable
from harness.judge.sample import allocate
from harness.judge.schema import EMOTIONS, verdict_schema
from harness.report.build import Settings, build_report
from harness.report.reliability import alpha, alpha_with_ci, cluster_bootstrap, weighted_kappa
from harness.store import CONVERSATIONS, find_job_dirs, latest_by_key, read_conversations
from tests.judge_support import oracle_sweep
from tests.report_synthetic import write_job
from tests.test_report_judge import judgment, write_judgments

TASKS = 8
DOSES = {None: 0, "low": 1, "medium": 2, "high": 3}


def judge_prompts(sweep: Path) -> dict[tuple[int, tuple[int, ...]], set[str]]:
    """The judge's prompt without the dialogue, per (task, customer turns judged)."""
    prompts: dict[tuple[int, tuple[int, ...]], set[str]] = {}
    for job_dir in find_job_dirs(sweep):
        for record in latest_by_key(read_conversations(job_dir / CONVERSATIONS)).values():
            if judgeable(record):
                transcript = render_transcript(record)
                messages = judge_messages(
                    record, transcript, verdict_schema(transcript.judged, transcript.turns)
                )
                shown = messages[0]["content"] + "\n---\n" + messages[1]["content"].split("Conversation:")[0]
                prompts.setdefault((record["task_id"], tuple(transcript.judged)), set()).add(shown)
    return prompts


def test_the_judge_prompt_is_the_same_for_sweeps_of_different_variants(tmp_path: Path) -> None:
    oracle_sweep(tmp_path / "a", ("control", "anger"))
    oracle_sweep(tmp_path / "b", ("neutral", "frustration", "anxiety", "confusion"))
    first, second = judge_prompts(tmp_path / "a"), judge_prompts(tmp_path / "b")
    common = set(first) & set(second)
    assert len(common) >= 3
    for key in common:  # byte-identical: the task's instruction and the conversation's schema, nothing else
        assert len(first[key]) == 1 and first[key] == second[key]
    rules = {
        p.split("matching this JSON schema:")[0] for m in (first, second) for ps in m.values() for p in ps
    }
    assert len(rules) == 1
    settings = [
        JudgeSettings(
            sweep_dir=tmp_path / s, backend={"_target_": "x"}, model={"name": "qwen2.5-72b-instruct"}
        )
        for s in "ab"
    ]
    assert settings[0].judge_hash() == settings[1].judge_hash()
    (prompt,) = rules
    for label in EMOTIONS:
        assert f"   - {label}: " in prompt
    assert {"none", "other"} <= set(EMOTIONS) and "neutral" not in prompt


def test_the_family_is_the_models_first_word_unless_named() -> None:
    assert [family_of(m) for m in ("qwen2.5-72b-instruct", "gpt-4o", "llama-3.1-8b", None)] == [
        "qwen", "gpt", "llama", "unknown",
    ]  # fmt: skip
    named = JudgeSettings(sweep_dir=Path("."), backend={}, model={"name": "oracle"}, family="scripted-b")
    assert named.model_family() == "scripted-b"


@pytest.fixture
def dosed(tmp_path: Path) -> Path:
    """neutral and anger at low, medium, high; the judge says none for neutral, frustration at intensity 1 for
    anger-low (the wrong emotion), anger at 2 and 3 above; success falls with the dose; one anger-high
    conversation gets no valid verdict."""
    for variant, intensity in (("neutral", None), ("anger", "low"), ("anger", "medium"), ("anger", "high")):
        dose = DOSES[intensity]
        job = write_job(tmp_path, "toy", variant, TASKS, 1, lambda t, k, d=dose: d <= 1, intensity=intensity)
        label = {0: "none", 1: "frustration"}.get(dose, "anger")
        verdicts = [judgment(t, [(0, label, dose), (1, label, dose)]) for t in range(TASKS)]
        if intensity == "high":
            verdicts[0] = {**verdicts[0], "turns": None, "error": "bad", "error_kind": "invalid_output"}
        write_judgments(job, "a", verdicts)
    return tmp_path


def test_confusion_matrix_recall_precision_and_judge_errors(dosed: Path) -> None:
    tables = build_report(dosed, settings=Settings(resamples=200, permutations=200, model=False)).tables
    confusion = tables["judge_confusion"].set_index("condition")
    assert confusion.loc["anger@low", "frustration"] == 2 * TASKS and confusion.loc["anger@low", "anger"] == 0
    assert confusion.loc["anger@high", "anger"] == 2 * (TASKS - 1)
    assert confusion.loc["neutral", "prompted"] == "none" and confusion.loc["neutral", "none"] == 2 * TASKS
    scores = tables["judge_recall_precision"].set_index("prompted")
    anger_turns = 2 * TASKS + 2 * TASKS + 2 * (TASKS - 1)
    assert scores.loc["anger", "turns"] == anger_turns
    assert scores.loc["anger", "recall"] == pytest.approx((4 * TASKS - 2) / anger_turns)
    assert scores.loc["anger", "precision"] == 1.0 and scores.loc["none", "recall"] == 1.0
    assert (
        scores.loc["anger", "recall_ci_low"]
        < scores.loc["anger", "recall"]
        < scores.loc["anger", "recall_ci_high"]
    )
    errors = tables["judge_errors"].set_index("condition")
    assert errors.loc["anger@high", "judge_errors"] == 1 and errors.loc["anger@high", "invalid_output"] == 1
    assert errors.loc["anger@low", "judge_errors"] == 0 and errors.loc["anger@low", "ci_high"] > 0  # Wilson


def test_judged_intensity_rises_with_the_prompted_dose_and_the_measured_dose(dosed: Path) -> None:
    tables = build_report(dosed, settings=Settings(resamples=200, permutations=200, model=False)).tables
    (trend,) = tables["judge_intensity_trend"].itertuples()
    assert trend.emotion == "anger" and trend.spearman_rho == pytest.approx(1.0) and trend.p_value < 0.01
    points = tables["judge_intensity_by_dose"].set_index("dose")["mean_judged_intensity"]
    assert points.to_dict() == {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}
    # the judged intensity is the prompted dose here, but task 0's anger-high conversation has no valid
    # verdict: within-task slopes Σxy/Σxx are 7 tasks × (−2/5) and task 0's (−1/2) on doses 0..2
    (measured,) = tables["dose_trend_judged"].itertuples()
    (prompted,) = tables["dose_trend"].itertuples()
    assert prompted.slope == pytest.approx(-0.4) and measured.conversations == 4 * TASKS - 1
    assert measured.slope == pytest.approx((7 * -2 - 1) / (7 * 5 + 2))
    text = (dosed / "report" / "report.md").read_text()
    for heading in ("Prompted against judged emotion", "Judged intensity by prompted intensity",
                    "Success against the measured dose", "Judge errors per arm"):  # fmt: skip
        assert heading in text


def test_vader_scores_only_active_turns(dosed: Path) -> None:
    job = dosed / "toy-model" / "toy-test" / "anger-high" / "seed0"
    lines = (job / "conversations.jsonl").read_text().splitlines()
    records = [{**json.loads(line), "onset_after_turns": 5} for line in lines]  # past every turn
    (job / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    vader = build_report(dosed, settings=Settings(resamples=200, permutations=200, model=False)).tables[
        "manipulation_check"
    ]
    scored = {c.split(",")[0] for c in vader["condition"]}  # conditions name the onset where it differs
    assert scored == {"neutral", "anger@low", "anger@medium"}
    assert {"compound_ci_low", "compound_ci_high"} <= set(vader.columns)


def test_alpha_kappa_and_the_conversation_bootstrap_against_their_definitions() -> None:
    first, second = np.array([0, 0, 1, 1, 2, 2.0]), np.array([0, 1, 1, 1, 2, 0.0])
    # nominal α = 1 − D_o/D_e: 2 disagreeing units (4 ordered pairs) of 12 values; values 0×4, 1×5, 2×3
    expected = 1 - (4 / 12) / ((144 - 16 - 25 - 9) / (12 * 11))
    assert alpha(np.vstack([first, second]), "nominal", 3) == pytest.approx(expected)
    assert np.isnan(alpha(np.zeros((2, 5)), "nominal", 3))  # one value only: undefined, not 1
    # quadratic weights: disagreement weight (i−j)²/(k−1)²; observed 1/6·(1/4 + 1), chance from the margins
    rows, cols = (
        np.bincount(first.astype(int), minlength=3) / 6,
        np.bincount(second.astype(int), minlength=3) / 6,
    )
    weights = np.array([[(i - j) ** 2 / 4 for j in range(3)] for i in range(3)])
    chance = float(rows @ weights @ cols)
    assert weighted_kappa(first, second, 3) == pytest.approx(1 - ((1 / 4 + 1) / 6) / chance)
    rng = np.random.default_rng(0)
    assert all(np.isnan(cluster_bootstrap(np.zeros(4), lambda i: float(i.size), rng, 10)))  # one conversation
    low, high = cluster_bootstrap(np.repeat(np.arange(10), 2), lambda i: float(first[i % 6].mean()), rng, 200)
    assert low <= high


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_from_coincidences_matches_the_krippendorff_package(level: str) -> None:
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(1)
    for _ in range(5):
        ratings = rng.integers(0, 4, (3, 40)).astype(float)
        ratings[rng.random(ratings.shape) < 0.3] = np.nan  # missing ratings; some units rated once
        expected = krippendorff.alpha(
            reliability_data=ratings, level_of_measurement=level, value_domain=[0, 1, 2, 3]
        )
        assert alpha(ratings, level, 4) == pytest.approx(expected, abs=1e-12)  # type: ignore[arg-type]
    clusters = np.repeat(np.arange(20), 2)
    result = alpha_with_ci(ratings, clusters, level, 4, rng, 300)  # type: ignore[arg-type]
    assert result["alpha"] == pytest.approx(alpha(ratings, level, 4))  # type: ignore[arg-type]
    assert result["alpha_ci_low"] <= result["alpha"] <= result["alpha_ci_high"]


def test_the_sample_allocates_strata_as_equally_as_their_sizes_allow() -> None:
    assert allocate({"a": 10, "b": 1, "c": 5}, 9) == {"a": 4, "b": 1, "c": 4}
    assert allocate({"a": 2, "b": 3}, 50) == {"a": 2, "b": 3}
    assert sum(allocate({s: 100 for s in "abcdefg"}, 200).values()) == 200


def test_sample_and_agree_refuse_bad_input_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.judge import agree, sample

    (tmp_path / "empty").mkdir()
    assert sample.main([str(tmp_path / "empty")]) == 2
    assert sample.main([str(tmp_path / "nowhere")]) == 2
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"sample": "s1", "items": {"abc": {}}}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "tau-emotion-ratings", "sample": "s2", "ratings": []}))
    assert agree.main([str(other), "--key", str(key)]) == 2
    assert agree.main([str(tmp_path / "missing.json"), "--key", str(key)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: {tmp_path / 'empty'} holds no finished conversations with a customer message to rate",
        f"error: sweep_dir={tmp_path / 'nowhere'} is not a directory",
        f"error: ratings file {other} rates sample 's2', the key is of sample 's1'",
        f"error: ratings file {tmp_path / 'missing.json'} does not exist",
    ]
