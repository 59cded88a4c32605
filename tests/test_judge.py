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
from harness.judge.schema import AGENT_ACTS, EMOTIONS, InvalidVerdict, Verdict, parse_verdict, verdict_schema
from harness.store import CONVERSATIONS, read_conversations
from harness.store.layout import JUDGMENTS_DIR
from tests.helpers import ROOT, read_jsonl
from tests.judge_support import SCRIPTED_JUDGE, judge_cli, oracle_sweep

VALID_ONE_TURN = (
    '{"turns": [{"turn": 0, "reason": "Calm.", "emotion": "none", "intensity": 0}], "fidelity": []}'
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
            transcript = render_transcript(conversations[key])
            assert judgment["judged_turns"] == transcript.judged
            assert judgment["conversation_started_at"] == conversations[key]["started_at"]
            # the scripted verdict fits every conversation: valid on the retry after a malformed answer
            assert judgment["attempts"] == 2 and judgment["error"] is None
            Verdict.model_validate(
                {"turns": judgment["turns"], "fidelity": judgment["fidelity"], "agent": judgment["agent"]}
            )
            assert {t["emotion"] for t in judgment["turns"]} == {"anger"}
            assert judgment["agent_messages"] == transcript.agent_messages
            assert [a["message"] for a in judgment["agent"]] == list(range(len(transcript.agent_messages)))
            # the oracle asks for a yes and says it is done: no apology, no empathy, no refusal
            assert not any(a[act] for a in judgment["agent"] for act in AGENT_ACTS)
        info = json.loads(path.with_suffix(".json").read_text())
        assert (
            info["plumbing_check"] is True and info["backend"] == "scripted" and info["prompt_version"] == 3
        )
    # a verdict written for one customer turn: toy task 3 has two, no answer fits, a judge error, the others go on
    one_turn = "{verdict: {turns: [{turn: 0, reason: calm, emotion: none, intensity: 0}], fidelity: []}}"
    fixed = judge_cli([str(tmp_path), *SCRIPTED_JUDGE, f"backend.agent=[{{text: bad}},{one_turn}]"])
    assert fixed.returncode == 0, fixed.stderr
    for job in jobs:
        (second,) = [f for f in _judgment_files(job) if f.name != path.name]
        by_task = {j["task_id"]: j for j in read_jsonl(second)}
        assert set(by_task) == set(range(5))
        for task, judgment in by_task.items():
            if task == 3:
                assert judgment["error_kind"] == "invalid_output" and judgment["attempts"] == 3
                assert (
                    judgment["turns"] is None and judgment["agent"] is None and "[0, 1]" in judgment["error"]
                )
            else:
                assert judgment["error"] is None and judgment["turns"][0]["emotion"] == "none"


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


def _prompt_bytes(record: dict[str, object]) -> bytes:
    transcript = render_transcript(record)
    schema = verdict_schema(transcript.judged, transcript.turns, agent=len(transcript.agent_messages))
    return json.dumps(judge_messages(record, transcript, schema), ensure_ascii=False).encode()


def test_the_prompt_is_blind_to_the_variant(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("anger",))
    record = read_conversations(job / CONVERSATIONS)[0]
    persona = "You feel clearly angry with the company"  # conf/variant/anger.yaml, medium
    relabelled = {
        **record, "variant": "control", "intensity": None, "variant_kind": "control", "persona_set": "v9",
        "job_name": "x", "calls": [], "user_messages": [{"role": "system", "content": "no persona"}],
    }  # fmt: skip
    assert _prompt_bytes(record) == _prompt_bytes(relabelled)
    text = _prompt_bytes(record).decode()
    assert persona not in text
    assert record["instruction"] in text and "[customer turn 0]" in text
    assert "[customer turn 1 ends the conversation]" in text
    assert "[agent message 0]" in text and "and the agent messages [0]." in text


CONCEDING_TALK = [
    {"role": "system", "content": "policy"},
    {"role": "user", "content": "This is a disgrace. I want compensation for the delay!"},
    {"role": "assistant", "content": "I'm so sorry, I understand how frustrating this delay is."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c0", "type": "function", "function": {"name": "get_user_details", "arguments": "{}"}}]},
    {"role": "tool", "content": "{}", "tool_call_id": "c0"},
    {"role": "assistant", "content": "Unfortunately I can't offer compensation for this flight\nunder our policy."},
    {"role": "user", "content": "Then I will never fly with you again."},
    {"role": "assistant", "content": "Here is a $100 certificate. Anything else?"},
    {"role": "user", "content": "###STOP###"},
]  # fmt: skip


def _talk(variant: str) -> dict[str, object]:
    return {
        "env": "airline", "task_id": 4, "trial": 0, "seed": 4000, "variant": variant, "started_at": 1.0,
        "instruction": "You want compensation for a delayed flight.", "messages": CONCEDING_TALK,
        "user_messages": [{"role": "system", "content": f"persona of {variant}"}],
    }  # fmt: skip


def test_two_records_differing_only_in_variant_get_byte_identical_prompts_and_verdicts() -> None:
    from harness.backends.scripted import ScriptedBackend
    from harness.judge.run import Judge, JudgeSettings

    angry, calm = _talk("anger"), _talk("control")
    assert _prompt_bytes(angry) == _prompt_bytes(calm)
    transcript = render_transcript(angry)
    assert transcript.agent_messages == [2, 5, 7] and transcript.judged == [0, 1]
    backend = ScriptedBackend(agent=[{"verdict": {"emotion": "anger", "intensity": 3}}])
    judge = Judge(JudgeSettings(sweep_dir=Path("."), backend={"x": 1}, model={"name": "oracle"}), backend)

    async def both() -> list[dict[str, object]]:
        async with backend:
            return [await judge.judge_conversation(r) for r in (angry, calm)]

    import asyncio

    first, second = asyncio.run(both())
    for judgment in (first, second):
        assert judgment["error"] is None and judgment["agent_messages"] == [2, 5, 7]
        assert [t["intensity"] for t in judgment["turns"]] == [3, 3]  # type: ignore[union-attr]
    assert (
        first["agent"]
        == second["agent"]
        == [
            {"message": 0, "apology": True, "empathy": True, "refusal": False},
            {"message": 1, "apology": False, "empathy": False, "refusal": True},
            {"message": 2, "apology": False, "empathy": False, "refusal": False},
        ]
    )


def test_verdicts_are_checked_against_the_conversation() -> None:
    ok = parse_verdict("```json\n" + VALID_ONE_TURN + "\n```", [0], [0, 1])
    assert ok.turns[0].emotion == "none"
    bad = [
        ("not json", "not valid JSON"),
        ('{"turns": [], "fidelity": []}', "once each"),
        (VALID_ONE_TURN.replace("none", "rage"), "schema violation at turns.0.emotion"),
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
    agent = verdict_schema([0], [0], agent=2)["properties"]["agent"]
    assert agent["minItems"] == agent["maxItems"] == 2 and "agent" in verdict_schema([0], [0])["required"]
    assert [item["properties"]["message"]["enum"] for item in agent["prefixItems"]] == [[0], [1]]
    two = (
        VALID_ONE_TURN[:-1]
        + ', "agent": [{"message": 0, "apology": true, "empathy": false, "refusal": false}]}'
    )
    assert parse_verdict(two, [0], [0], agent=1).agent[0].apology
    with pytest.raises(InvalidVerdict, match=r"judge the agent messages \[0, 1\] once each"):
        parse_verdict(two, [0], [0], agent=2)
    with pytest.raises(InvalidVerdict, match=r"schema violation at agent\.0\.refusal"):
        parse_verdict(two.replace('"refusal": false', '"refusal": "maybe"'), [0], [0], agent=1)


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
