"""The study's design facts: no-op tasks, instruction moods, how results count, one job per directory."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import pytest

from harness.domains.taubench.domain import TauBenchDomain
from harness.episode.variants import instruction_affect
from harness.errors import MissingDependencyError
from harness.extras import install_hint, require
from harness.job.app import build_job
from harness.job.runner import Job, run_job
from harness.store import CONVERSATIONS, RESULTS, SUMMARY
from tests.helpers import TOY, compose_config, read_jsonl, run_toy_job
from tests.toy_domain import TASKS, TOOLS, WIKI, ToyAction, ToyTask, _data

LOOK_ONLY = ToyTask("ada_1", "Ask about #A1.", [ToyAction("get_order_details", {"order_id": "#A1"})])
REFUSED_WRITE = ToyTask("ada_1", "Cancel #A2.", [ToyAction("cancel_pending_order", {"order_id": "#A2"})])
NO_ACTION = ToyTask("bob_2", "Just say hello.", [])


def noop_domain(name: str = "toy", split: str = "test") -> TauBenchDomain:
    """The toy shop plus tasks that pass by doing nothing (ids 5, 6, 7)."""
    tasks = [*TASKS, LOOK_ONLY, REFUSED_WRITE, NO_ACTION]
    return TauBenchDomain(name=name, split=split, tools=TOOLS, tasks=tasks, wiki=WIKI, data_load_func=_data)


def test_a_task_is_noop_when_doing_nothing_passes_it() -> None:
    domain = noop_domain()
    noop = {task_id: domain.noop_task(task_id) for task_id in range(len(domain.tasks))}
    # 0, 2: a write; 1, 3, 4: a required output; 5: look-ups only; 6: its only write is refused; 7: nothing
    assert noop == {0: False, 1: False, 2: False, 3: False, 4: False, 5: True, 6: True, 7: True}
    for task_id, expected in noop.items():
        assert (domain.score(task_id, domain.new_data(), []).reward == 1.0) == expected


def test_every_record_says_whether_its_task_is_noop(tmp_path: Path) -> None:
    summary = run_toy_job(tmp_path, ["env.domain._target_=tests.test_study_design.noop_domain"])
    records = {r["task_id"]: r for r in read_jsonl(tmp_path / CONVERSATIONS)}
    assert {task: r["noop_task"] for task, r in records.items()} == {
        0: False, 1: False, 2: False, 3: False, 4: False, 5: True, 6: True, 7: True
    }  # fmt: skip
    assert summary["noop_tasks"] == [5, 6, 7]


@pytest.mark.taubench
@pytest.mark.parametrize("env_name", ["retail", "airline"])
def test_taubench_noop_tasks_are_exactly_those_an_idle_agent_passes(env_name: str) -> None:
    from harness.domains.taubench.loader import load_taubench_domain

    domain = load_taubench_domain(env_name, "test")
    noop = [i for i in range(len(domain.tasks)) if domain.noop_task(i)]
    idle = [i for i in range(len(domain.tasks)) if domain.score(i, domain.new_data(), []).reward == 1.0]
    assert noop == idle
    without_actions = [i for i, task in enumerate(domain.tasks) if not task.actions and not task.outputs]
    assert without_actions and set(without_actions) < set(noop)


@pytest.mark.taubench
def test_the_affect_words_cover_every_demeanour_taubench_instructions_list() -> None:
    from harness.domains.taubench.loader import load_taubench_domain

    instructions = [
        task.instruction for env in ("retail", "airline") for task in load_taubench_domain(env, "test").tasks
    ]
    assert len(instructions) == 165
    # "You are polite, outgoing." / "You are sad and cautious." / "You are insecure, rigid, sad, logical."
    listed = re.compile(r"You are ((?:[a-z]+, )*[a-z]+,? (?:and )?[a-z]+|[a-z]+)\.")
    checked = 0
    for instruction in instructions:
        found = set(instruction_affect(instruction))
        for match in listed.finditer(instruction):
            words = set(re.split(r",? and |, ", match.group(1)))
            assert words <= found, (words - found, instruction)
            checked += 1
    assert checked >= 45
    for phrase, word in [
        ("You are reactive to the agent", "reactive"),
        ("Be persistent.", "persistent"),
        ("be insistent", "insistent"),
        ("You are a bit anxious", "anxious"),
        ("and are in a bad mood", "bad mood"),
    ]:
        assert word in instruction_affect(phrase)
        assert any(phrase.lower() in text.lower() for text in instructions), phrase
    moody = sum(1 for text in instructions if instruction_affect(text))
    assert moody > 62  # more than the first count (50 retail + 12 airline): demeanours count


def test_accepting_an_offer_or_a_kind_of_flight_is_no_mood() -> None:
    assert instruction_affect("You are happy with original payment for refund.") == []
    assert instruction_affect("change your outgoing flight to a direct flight") == []
    assert instruction_affect("You are not happy with the service.") == ["unhappy"]
    assert instruction_affect("You are direct, outgoing and happy.") == ["direct", "happy", "outgoing"]


EMPTY_USER = ["backend=scripted", "backend.agent=[{text: hi}]", "backend.user=[{text: ''}]"]


def test_summary_and_results_state_how_they_count_unscored_conversations(tmp_path: Path) -> None:
    run_toy_job(tmp_path / "ok", ["env.tasks=[0,2]"])
    summary = run_toy_job(tmp_path / "mixed", [*EMPTY_USER, "env.tasks=[0]"])
    assert summary["scored"] == 0 and summary["average_reward"] is None
    assert summary["average_reward_unscored_as_failure"] == 0.0
    [result] = json.loads((tmp_path / "mixed" / RESULTS).read_text())
    assert result["info"]["scored"] is False and "summary.json" in result["info"]["counting"]
    assert "results.json" in summary["counting"]
    ok = json.loads((tmp_path / "ok" / SUMMARY).read_text())
    rewards = [r["reward"] for r in json.loads((tmp_path / "ok" / RESULTS).read_text())]
    assert ok["average_reward"] == ok["average_reward_unscored_as_failure"] == sum(rewards) / len(rewards)


def test_readme_of_outputs_states_the_counting() -> None:
    text = (Path(__file__).resolve().parents[1] / "outputs" / "README.md").read_text()
    assert "average_reward_unscored_as_failure" in text


def test_jobs_sharing_a_directory_run_one_at_a_time_and_the_later_finds_the_work_done(tmp_path: Path) -> None:
    # control at two intensities is one job: a sweep over intensities sends both to one directory
    overrides = [["variant=control", "variant.intensity=low"], ["variant=control", "variant.intensity=high"]]
    slow = ["backend.delay_s=0.05", "concurrency=1"]
    errors: list[BaseException] = []

    jobs = [build_job(compose_config([*TOY, *extra, *slow]), tmp_path) for extra in overrides]

    def run(job: Job) -> None:
        try:
            asyncio.run(run_job(job))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert sorted(r["task_id"] for r in records) == [0, 1, 2, 3, 4]
    assert {r["intensity"] for r in records} == {None}


def test_a_missing_extra_is_reported_one_way() -> None:
    with pytest.raises(MissingDependencyError) as error:
        require("openai", "no_such_module_here", "backend=openai")
    assert str(error.value) == install_hint("openai", "backend=openai")
    assert str(error.value).startswith("the openai client is not installed (backend=openai needs it); ")
    assert "pip install -e '.[openai]'" in str(error.value)
    assert require("tau", "json") is json
