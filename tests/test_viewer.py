"""The viewer's reading and data, without a browser (tests/test_viewer_browser.py opens it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.store import CONVERSATIONS, JobDir
from harness.view import build_viewer, conversation_link, load, viewer_size
from harness.view.__main__ import main
from harness.view.data import build_data
from tests.helpers import read_jsonl
from tests.viewer_support import job_dir, judge_sweep, make_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return judge_sweep(make_sweep(tmp_path_factory.mktemp("viewer") / "sweep"))


def test_reads_every_conversation_of_a_sweep(sweep: Path) -> None:
    loaded = load(sweep)
    assert sorted(job.name for job in loaded.jobs) == [
        "oracle/toy-test/anger/seed0",
        "oracle/toy-test/control/seed0",
        "oracle/toy-test/frustration/seed0",
    ]
    assert loaded.conversations == sum(
        len(read_jsonl(job_dir(sweep, v) / CONVERSATIONS)) for v in ("anger", "control", "frustration")
    )
    assert loaded.skipped == []


def test_a_job_directory_alone_is_read_too(sweep: Path) -> None:
    loaded = load(job_dir(sweep, "anger"))
    assert [job.name for job in loaded.jobs] == ["."]
    assert loaded.conversations == len(read_jsonl(job_dir(sweep, "anger") / CONVERSATIONS))


def test_bodies_carry_the_scoring_and_the_dialogue(sweep: Path) -> None:
    data = build_data(load(sweep), "sweep")
    index, values = data.index, data.index["values"]
    control = values["variant"].index("control")
    rows = [i for i in range(index["count"]) if index["cols"]["variant"][i] == control]
    by_task = {index["cols"]["task"][i]: data.bodies[i] for i in rows}
    # task 1 asks for an output; the scripted control agent cancels #A1 instead
    assert by_task[1]["outputs"] == {"45": False}
    assert [a["name"] for a in by_task[1]["gt_actions"]] == ["find_user_id_by_email", "get_order_details"]
    assert [a["name"] for a in by_task[1]["actions"]] == ["find_user_id_by_email", "cancel_pending_order"]
    assert by_task[0]["r_actions"] is True
    assert by_task[0]["affect"] == [False, False]  # control: no emotion on any turn
    roles = [m["r"] for m in by_task[0]["messages"]]
    assert roles == ["u", "a", "t", "a", "t", "a", "u"]
    assert data.policies[by_task[0]["policy"]].startswith("# Toy shop agent policy")
    anger = values["variant"].index("anger")
    anger_body = next(data.bodies[i] for i in range(index["count"]) if index["cols"]["variant"][i] == anger)
    assert anger_body["affect"] == [True, True]
    assert index["baseline"] == "control"


def test_malformed_and_half_written_lines_are_listed_and_the_rest_is_kept(
    sweep: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    log = job_dir(copy, "anger") / CONVERSATIONS
    lines = log.read_text().splitlines(keepends=True)
    retry = json.loads(lines[0])
    retry["termination"] = "agent_error"
    no_key = {k: v for k, v in json.loads(lines[1]).items() if k != "trial"}
    mangled = [lines[0], "{not json\n", "[1, 2]\n", json.dumps(no_key) + "\n", *lines[1:]]
    log.write_text("".join([*mangled, json.dumps(retry) + "\n", lines[2][:40]]))
    [judge] = JobDir(job_dir(copy, "anger")).judges()
    judgments = JobDir(job_dir(copy, "anger")).judgments(judge)
    written = judgments.read_bytes()  # by the judge itself
    judged = len(written.splitlines())
    turn_without_number = json.loads(written.splitlines()[0])
    turn_without_number["turns"] = [{"emotion": "anger"}]
    damage = [json.dumps(turn_without_number), '{"task_id": 1}', "not json", '{"task_id": 0, "tri']
    judgments.write_bytes(written + "\n".join(damage).encode())
    loaded = load(copy)
    where = "oracle/toy-test/anger/seed0"
    reasons = {(s.path, s.line): s.reason for s in loaded.skipped}
    assert reasons[(f"{where}/{CONVERSATIONS}", 2)].startswith("not JSON")
    assert reasons[(f"{where}/{CONVERSATIONS}", 3)] == "not a JSON object (list)"
    assert reasons[(f"{where}/{CONVERSATIONS}", 4)] == "not a conversation record: no integer trial"
    assert reasons[(f"{where}/{CONVERSATIONS}", len(mangled) + 2)].startswith("half-written last line")
    in_judgments = f"{where}/judgments/{judge}.jsonl"
    assert reasons[(in_judgments, judged + 1)].startswith("not a record (turns.0.turn: Field required")
    assert reasons[(in_judgments, judged + 2)].startswith("not a record (")
    assert reasons[(in_judgments, judged + 3)].startswith("not JSON")
    assert reasons[(in_judgments, judged + 4)].startswith("half-written last line")
    anger = next(job for job in loaded.jobs if job.name == where)
    assert len(list(anger.records())) == len(lines)  # every good line, the retry in place of its first try
    assert anger.replaced == 1
    assert (
        next(r for r in anger.records() if (r["task_id"], r["trial"]) == (0, 0))["termination"]
        == "agent_error"
    )
    scripted = {
        "emotion": "anger",
        "intensity": 2,
        "reason": "The customer blames the company and demands a fix.",
    }
    assert anger.judgments[(0, 0)] == {0: scripted}  # the judge's own line, the damage around it listed


def test_cli_writes_the_viewer_under_the_report(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    assert main([str(copy)]) == 0
    out = copy / "report" / "viewer"
    assert f"viewer: {out / 'index.html'}" in capsys.readouterr().out
    assert (out / "data" / "index.js").read_text().startswith("window.VIEWER_INDEX=")
    jsonl = sum(p.stat().st_size for p in copy.rglob(CONVERSATIONS))
    assert 0 < viewer_size(out / "data") < jsonl
    log = job_dir(copy, "anger") / CONVERSATIONS
    log.write_text(log.read_text() + "not json\n" * 12)
    assert main([str(copy)]) == 0  # a second run replaces the first
    assert len(list((out / "data" / "chunks").iterdir())) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 11 and err[0].startswith(
        "skipped oracle/toy-test/anger/seed0/conversations.jsonl:11: not JSON"
    )
    assert err[-1] == "skipped 2 more lines (the viewer lists them all)"


def test_cli_says_in_one_line_when_there_is_nothing_to_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / CONVERSATIONS).write_text("")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"no conversations in {tmp_path}")
    assert not (tmp_path / "report").exists()
    assert main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'} is not a directory\n"


def test_conversation_links_are_stable_addresses() -> None:
    assert (
        conversation_link("m/toy-test/anger/seed0", 3, 1) == "index.html#/c/m%2Ftoy-test%2Fanger%2Fseed0/3/1"
    )


def test_build_viewer_writes_into_the_given_directory(sweep: Path, tmp_path: Path) -> None:
    page = build_viewer(load(sweep), tmp_path / "out")
    assert page == tmp_path / "out" / "index.html"
    assert {p.name for p in page.parent.iterdir()} == {"index.html", "viewer.js", "viewer.css", "data"}


def test_the_baseline_is_neutral_where_the_sweep_has_it(sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    log = job_dir(copy, "frustration") / CONVERSATIONS
    log.write_text("".join(json.dumps({**r, "variant": "neutral"}) + "\n" for r in read_jsonl(log)))
    index = build_data(load(copy), "sweep").index
    assert index["baseline"] == "neutral"
    assert set(index["values"]["variant"]) == {"anger", "control", "neutral"}
