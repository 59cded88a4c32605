"""`python -m harness.judge` end to end on oracle sweeps of the toy domain with scripted verdicts."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.judge.prompt import judge_messages, render_transcript
from harness.judge.schema import EMOTIONS, InvalidVerdict, Verdict, parse_verdict, verdict_schema
from harness.store import CONVERSATIONS, read_conversations
from harness.store.layout import JUDGMENTS_DIR
from tests.helpers import ROOT, read_jsonl
from tests.judge_support import SCRIPTED_JUDGE, judge_cli, oracle_sweep

VALID_ONE_TURN = (
    '{"turns": [{"turn": 0, "reason": "Calm.", "emotion": "neutral", "intensity": 0}], "fidelity": []}'
)


def _judgment_files(job: Path) -> list[Path]:
    return sorted((job / JUDGMENTS_DIR).glob("*.jsonl"))


def test_scripted_judge_retries_malformed_answers_and_records_what_it_cannot_get(tmp_path: Path) -> None:
    jobs = oracle_sweep(tmp_path)
    result = judge_cli([str(tmp_path), *SCRIPTED_JUDGE])
    assert result.returncode == 0, result.stderr
    for job in jobs:
        (path,) = _judgment_files(job)
        judgments = {(j["task_id"], j["trial"]): j for j in read_jsonl(path)}
        conversations = {(r["task_id"], r["trial"]): r for r in read_conversations(job / CONVERSATIONS)}
        assert judgments.keys() == conversations.keys()
        for key, judgment in judgments.items():
            judged = render_transcript(conversations[key]).judged
            assert judgment["judged_turns"] == judged
            assert judgment["conversation_started_at"] == conversations[key]["started_at"]
            if judged == [0]:  # the scripted verdict fits: valid on the retry after a malformed answer
                assert judgment["attempts"] == 2 and judgment["error"] is None
                Verdict.model_validate({"turns": judgment["turns"], "fidelity": judgment["fidelity"]})
                assert judgment["turns"][0]["emotion"] == "anger"
            else:  # toy task 3 has two customer turns: no answer fits, a judge error, the others go on
                assert judgment["error_kind"] == "invalid_output" and judgment["attempts"] == 3
                assert judgment["turns"] is None and "[0, 1]" in judgment["error"]
        info = json.loads(path.with_suffix(".json").read_text())
        assert info["plumbing_check"] is True and info["backend"] == "scripted"


def test_a_rerun_judges_nothing_and_a_changed_judge_writes_a_separate_set(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("anger",))
    assert judge_cli([str(tmp_path), *SCRIPTED_JUDGE]).returncode == 0
    (first,) = _judgment_files(job)
    content = first.read_bytes()
    rerun = judge_cli([str(tmp_path), *SCRIPTED_JUDGE])
    assert rerun.returncode == 0 and "0 judged now, 5 already judged" in rerun.stdout
    assert first.read_bytes() == content
    assert judge_cli([str(tmp_path), *SCRIPTED_JUDGE, "sampling.seed=1"]).returncode == 0
    files = _judgment_files(job)
    assert len(files) == 2 and first in files and first.read_bytes() == content
    assert len(read_jsonl(next(f for f in files if f != first))) == 5


def test_an_unavailable_judge_is_redone_on_the_rerun(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("control",))
    down = judge_cli([str(tmp_path), *SCRIPTED_JUDGE, "backend.agent=[{fail: unavailable}]"])
    assert down.returncode == ExitCode.INCOMPLETE, down.stderr
    (path,) = _judgment_files(job)
    assert {j["error_kind"] for j in read_jsonl(path)} == {"unavailable"}
    # backend.delay_s only changes how fast it answers: the same judge, which judges them again
    up = judge_cli(
        [str(tmp_path), *SCRIPTED_JUDGE, "backend.agent=[{fail: unavailable}]", "backend.delay_s=0.001"]
    )
    assert up.returncode == ExitCode.INCOMPLETE
    assert collections.Counter((j["task_id"], j["trial"]) for j in read_jsonl(path)) == {
        (t, 0): 2 for t in range(5)
    }, "unavailable judgments are judged again by the same judge"


def test_a_killed_judge_loses_and_repeats_nothing(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("anger",), trials=4)
    args = [
        "-m", "harness.judge", str(tmp_path), *SCRIPTED_JUDGE,
        "concurrency=2", "backend.delay_s=0.1", "backend.agent=[{text: '" + VALID_ONE_TURN + "'}]",
    ]  # fmt: skip
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT)
    deadline = time.monotonic() + 60
    log = None
    while time.monotonic() < deadline:
        files = _judgment_files(job) if (job / JUDGMENTS_DIR).exists() else []
        if files and len(files[0].read_bytes().splitlines()) >= 5:
            log = files[0]
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert log is not None, "the judge wrote nothing before it was killed"
    before = read_jsonl(log)
    assert 5 <= len(before) < 20, "the judge must be killed half-way"
    rerun = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    after = read_jsonl(log)
    assert after[: len(before)] == before
    counts = collections.Counter((j["task_id"], j["trial"]) for j in after)
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_a_sweep_without_conversations_stops_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = judge_cli([str(tmp_path / "empty"), *SCRIPTED_JUDGE])
    assert result.returncode == ExitCode.CONFIG
    assert result.stderr.strip().count("\n") == 0 and "no finished conversations to judge" in result.stderr


def test_no_sweep_directory_stops_with_one_line() -> None:
    result = judge_cli(SCRIPTED_JUDGE)
    assert result.returncode == ExitCode.CONFIG
    assert result.stderr.strip().splitlines() == [
        "error: give the sweep to judge: python -m harness.judge SWEEP_DIR [overrides]"
    ]


def test_a_judge_backend_that_cannot_start_stops_with_one_line(tmp_path: Path) -> None:
    oracle_sweep(tmp_path, ("control",))
    result = judge_cli([str(tmp_path), "backend=vllm", "model=qwen2.5-7b", f"model.path={tmp_path}/no-model"])
    assert result.returncode == ExitCode.CONFIG
    assert result.stderr.strip().splitlines() == [
        f"error: model.path='{tmp_path}/no-model' does not exist or is not a directory"
    ]


def test_the_prompt_is_blind_to_the_variant(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("anger",))
    record = read_conversations(job / CONVERSATIONS)[0]
    persona = "You are angry at the company"  # conf/variant/anger.yaml, medium

    def prompt(of: dict[str, object]) -> str:
        transcript = render_transcript(of)
        return json.dumps(judge_messages(of, transcript, verdict_schema(transcript.judged, transcript.turns)))

    relabelled = {**record, "variant": "control", "intensity": None, "job_name": "x", "calls": []}
    assert prompt(record) == prompt(relabelled)
    text = prompt(record)
    assert persona not in text and record["instruction"] in text and "[customer turn 0]" in text
    assert "[customer turn 1 ends the conversation]" in text


def test_verdicts_are_checked_against_the_conversation() -> None:
    ok = parse_verdict("```json\n" + VALID_ONE_TURN + "\n```", [0], [0, 1])
    assert ok.turns[0].emotion == "neutral"
    bad = [
        ("not json", "not valid JSON"),
        ('{"turns": [], "fidelity": []}', "once each"),
        (VALID_ONE_TURN.replace("neutral", "rage"), "schema violation at turns.0.emotion"),
        (VALID_ONE_TURN.replace('"intensity": 0', '"intensity": 4'), "schema violation at turns.0.intensity"),
        (
            VALID_ONE_TURN.replace("[]}", '[{"kind": "facts", "turn": 7, "quote": "x"}]}'),
            "not a customer turn",
        ),
    ]
    for text, problem in bad:
        with pytest.raises(InvalidVerdict, match=problem):
            parse_verdict(text, [0], [0, 1])
    schema = verdict_schema([0, 2], [0, 1, 2])
    assert schema["properties"]["turns"]["minItems"] == schema["properties"]["turns"]["maxItems"] == 2
    judgments = schema["properties"]["turns"]["prefixItems"]
    assert [item["properties"]["turn"]["enum"] for item in judgments] == [[0], [2]]
    assert judgments[0]["properties"]["emotion"]["enum"] == list(EMOTIONS)
    assert schema["$defs"]["FidelityFlag"]["properties"]["turn"]["enum"] == [0, 1, 2]


def test_the_sweep_directory_may_hold_spaces_commas_and_equals_signs(tmp_path: Path) -> None:
    sweep = tmp_path / "my sweep,v=2"
    (job,) = oracle_sweep(sweep, ("control",))
    result = judge_cli([str(sweep), *SCRIPTED_JUDGE])
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(_judgment_files(job)[0])) == 5


def test_damaged_and_half_written_judgment_lines_are_skipped(tmp_path: Path) -> None:
    from harness.store.judgments import read_judgments

    path = tmp_path / "j.jsonl"
    good = {
        "task_id": 1,
        "trial": 0,
        "conversation_started_at": 1.0,
        "judge": "j",
        "turns": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    no_usage = {**good, "task_id": 3, "usage": None}
    lines = [
        b"not json",
        json.dumps(good).encode(),
        b"[1]",
        json.dumps(no_usage).encode(),
        b'{"task_id": 2, "tri',
    ]
    path.write_bytes(b"\n".join(lines))
    assert read_judgments(path) == {(1, 0): good}
