"""τ³'s banking domain (`env=tau2_banking`, τ² `banking_knowledge`): τ²'s environment, knowledge retrieval,
tasks and evaluator (needs τ² installed with its `rank-bm25` dependency and TAU2_DATA_DIR set)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import CONF, compose_config, harness_cli, read_jsonl, run_module

pytestmark = pytest.mark.tau2

VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("*.yaml"))
BANKING = "env=tau2_banking"


@pytest.fixture(autouse=True)
def _banking_data() -> None:
    folder = Path(os.environ["TAU2_DATA_DIR"]) / "tau2" / "domains" / "banking_knowledge"
    if not (folder / "db.json").is_file() or not (folder / "tasks").is_dir():
        pytest.skip("τ²-bench's banking_knowledge data is not in TAU2_DATA_DIR")
    pytest.importorskip("rank_bm25", reason="τ²'s BM25 retrieval needs `pip install rank-bm25`")


def _run(out: Path, overrides: list[str]) -> dict[str, Any]:
    return asyncio.run(run_job(build_job(compose_config([BANKING, *overrides]), out)))


def _tasks_covering_every_reward_basis() -> list[int]:
    """A few tasks: DB only, ACTION only, DB + NL assertions, and ones whose ground truth has user actions."""
    domain = build_job(compose_config([BANKING]), Path("unused")).domain
    chosen: dict[tuple[str, ...], int] = {}
    with_user_actions: list[int] = []
    for index, task in enumerate(domain.tasks):
        basis = tuple(sorted(str(b.value) for b in task.evaluation_criteria.reward_basis))
        chosen.setdefault(basis, index)
        if any(a.requestor == "user" for a in task.evaluation_criteria.actions or []):
            with_user_actions.append(index)
    assert {("DB",), ("ACTION",), ("DB", "NL_ASSERTION")} <= set(chosen), chosen
    return sorted({*chosen.values(), *with_user_actions[:2]})


@pytest.mark.parametrize("variant", VARIANTS)
def test_oracle_scores_banking_tasks_of_every_reward_basis_in_every_variant(
    tmp_path: Path, variant: str
) -> None:
    tasks = _tasks_covering_every_reward_basis()
    summary = _run(tmp_path, [f"env.tasks={tasks}", f"variant={variant}"])
    assert summary["average_reward"] == 1.0 and summary["scored"] == len(tasks)
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert {r["env"] for r in records} == {"tau2_banking"} and {r["split"] for r in records} == {"base"}
    bases = {tuple(sorted(r["reward_info"]["reward_basis"])) for r in records}
    assert {("DB",), ("ACTION",), ("DB", "NL_ASSERTION")} <= bases
    # the oracle user runs the actions the ground truth gives the customer (applying for a card ...)
    assert any(r["counts"]["user_tool_calls"] for r in records)


@pytest.mark.slow
def test_oracle_scores_every_banking_task(tmp_path: Path) -> None:
    summary = _run(tmp_path, ["concurrency=8"])
    assert summary["average_reward"] == 1.0 and summary["scored"] == 97


SEARCH = "{tool: KB_search, arguments: {query: lost or stolen debit card}}"


def test_knowledge_search_is_recorded_like_any_tool_call(tmp_path: Path) -> None:
    agent = f"++backend.agent=[{SEARCH}, {{text: 'Done. ###STOP###'}}]"
    _run(tmp_path, ["backend=scripted", agent, "env.tasks=[0]"])
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert [a["name"] for a in record["actions"]] == ["KB_search", "respond"]
    assert record["actions"][0]["kwargs"] == {"query": "lost or stolen debit card"}
    [observation] = [m["content"] for m in record["messages"] if m["role"] == "tool"]
    assert "Lost/Stolen Card" in observation and "ID: doc_" in observation  # BM25's ranked documents
    assert record["counts"]["tool_calls"] == 1 and record["scored"]


def test_job_records_tau2s_version_and_the_retrieval_configuration(tmp_path: Path) -> None:
    from importlib.metadata import version

    _run(tmp_path, ["backend=oracle", "env.tasks=[0]", "env.domain.retrieval=grep_only"])
    job = json.loads((tmp_path / "job.json").read_text())
    expected = {"tau2_version": version("tau2"), "retrieval": "grep_only"}
    assert job["fingerprint"]["env"]["provenance"] == expected
    assert job["info"]["env_provenance"] == expected


def test_results_in_tau2s_format_are_read_by_tau2s_metrics(tmp_path: Path) -> None:
    from tau2.data_model.simulation import Results
    from tau2.metrics.agent_metrics import compute_metrics

    _run(tmp_path, ["backend=oracle", "env.tasks=[0,1,2]", "env.trials=2"])
    results = Results.load(tmp_path / "tau2_results.json")
    assert results.info.environment_info.domain_name == "banking_knowledge"
    assert len(results.simulations) == 6 and len(results.tasks) == 3
    metrics = compute_metrics(results)
    assert metrics.avg_reward == 1.0 and metrics.pass_hat_ks == {1: 1.0, 2: 1.0}
    assert metrics.db_match_count == 6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["env.domain.retrieval=bogus"], "env.domain.retrieval='bogus' is not one of τ²'s configurations"),
        (["env.domain.retrieval=golden_retrieval"], "puts each task's own documents in the agent's policy"),
        (
            ["env.domain.retrieval=openai_embeddings"],
            "env.domain.retrieval='openai_embeddings' needs the openai embedding service "
            "(text-embedding-3-large): set OPENAI_API_KEY; these run without a service: ['bm25', ",
        ),
        (["env.domain.retrieval=bm25_reranker"], "needs the hosted Qwen reranker: set QWEN_RERANKER_API_KEY"),
        (["env=tau2_retail", "+env.domain.retrieval=bm25"], "env.domain.retrieval is only for tau2_banking"),
    ],
)
def test_a_retrieval_configuration_that_cannot_run_stops_with_one_line(
    tmp_path: Path, overrides: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "QWEN_RERANKER_API_KEY", "BASETEN_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    result = harness_cli([BANKING, *overrides, f"hydra.run.dir={tmp_path}", "progress=false"])
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]


def test_report_refuses_to_compare_banking_jobs_across_tau2_versions(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for variant in ("neutral", "anger"):
        _run(sweep / variant, ["backend=oracle", "env.tasks=[0,1]", f"variant={variant}"])
    same = run_module("harness.report", str(sweep), "--out", str(tmp_path / "same"))
    assert same.returncode == 0, same.stderr[-2000:]
    assert "refused" not in same.stdout
    job_file = sweep / "anger" / "job.json"
    job = json.loads(job_file.read_text())
    job["fingerprint"]["env"]["provenance"]["tau2_version"] = "1.0.0"
    job_file.write_text(json.dumps(job))
    across = run_module("harness.report", str(sweep), "--out", str(tmp_path / "across"))
    assert across.returncode == 0, across.stderr[-2000:]
    assert "anger − neutral: refused: the jobs differ in env.provenance.tau2_version" in across.stdout


def test_retrieval_tells_a_missed_document_from_one_acted_against(tmp_path: Path) -> None:
    from harness.domains.tau2.retrieval import retrieval_failure, retrieved_documents

    domain = build_job(compose_config([BANKING]), Path("unused")).domain
    [index] = [i for i, t in enumerate(domain.tasks) if t.required_documents][:1]
    task = domain.tasks[index]
    governing = task.required_documents[0]
    folder = Path(os.environ["TAU2_DATA_DIR"]) / "tau2" / "domains" / "banking_knowledge" / "documents"
    title = json.loads((folder / f"{governing}.json").read_text())["title"].replace(":", "")
    agent = (
        f"++backend.agent=[{{tool: KB_search, arguments: {{query: '{title}'}}}}, {{text: 'Bye. ###STOP###'}}]"
    )
    _run(tmp_path / "searched", ["backend=scripted", agent, f"env.tasks=[{index}]"])
    [searched] = read_jsonl(tmp_path / "searched" / CONVERSATIONS)
    _run(
        tmp_path / "silent",
        ["backend=scripted", "++backend.agent=[{text: 'Bye. ###STOP###'}]", f"env.tasks=[{index}]"],
    )
    [silent] = read_jsonl(tmp_path / "silent" / CONVERSATIONS)

    found = retrieved_documents(task, searched["messages"])
    assert found["retrieved"] and set(found["retrieved"]) | set(found["missing"]) == set(
        task.required_documents
    )
    assert retrieved_documents(task, silent["messages"])["retrieved"] == []
    assert silent["reward"] == 0.0 and retrieval_failure(task, silent["messages"], 0.0) == "never_retrieved"
    expected = "retrieved_but_failed" if not found["missing"] else "partly_retrieved"
    assert retrieval_failure(task, searched["messages"], searched["reward"]) == expected
    assert retrieval_failure(task, searched["messages"], 1.0) is None


def test_the_report_tells_failures_by_what_the_agent_retrieved(tmp_path: Path) -> None:
    import pandas as pd

    from harness.report.anatomy_section import RETRIEVAL_CLASSES

    domain = build_job(compose_config([BANKING]), Path("unused")).domain
    index = next(i for i, t in enumerate(domain.tasks) if t.required_documents)
    search = "{tool: KB_search, arguments: {query: lost or stolen debit card}}"
    sweep = tmp_path / "sweep"
    searching = f"++backend.agent=[{search}, {{text: 'Bye. ###STOP###'}}]"
    for variant, agent in (("anger", searching), ("neutral", "++backend.agent=[{text: 'Bye. ###STOP###'}]")):
        _run(sweep / variant, ["backend=scripted", agent, f"env.tasks=[{index}]", f"variant={variant}"])
    [silent] = read_jsonl(sweep / "neutral" / CONVERSATIONS)
    assert silent["reward_info"]["retrieval"]["retrieved"] == []
    report = run_module("harness.report", str(sweep), "--out", str(tmp_path / "report"), timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Retrieval behind the failures (banking)" in (tmp_path / "report" / "report.md").read_text()
    table = pd.read_csv(tmp_path / "report" / "retrieval_by_arm.csv").set_index("condition")
    assert table.loc["neutral", "never_retrieved"] == 1 and table.loc["neutral", "failures"] == 1
    assert table.loc["anger", RETRIEVAL_CLASSES].sum() == table.loc["anger", "failures"] == 1
