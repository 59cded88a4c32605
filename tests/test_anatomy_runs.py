"""Failure anatomy on real conversations: τ-bench and τ² domains, the scripted and oracle backends, a report."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.anatomy import CATEGORIES, anatomy
from harness.backends.scripted import ScriptedBackend
from harness.domains.base import Domain
from harness.episode.types import Action
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import compose_config, read_jsonl, run_module

# retail task 0: its user (authenticated by email) asks for an exchange; #W6679257 is a delivered order of theirs
EMAIL, ORDER, ITEM, PAYMENT = "yusuf.rossi7301@example.com", "#W6679257", "5996159312", "credit_card_9513926"
CONCEDING = [
    "env=airline", "variant=neutral,anger", "env.task_range=[0,24]", "progress=false",
    "backend._target_=tests.sweep_backends.ConcedingOracleBackend", "+backend.concede_variant=anger",
]  # fmt: skip


def _sweep(sweep_dir: Path, *overrides: str) -> None:
    run = run_module("harness", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}", timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]


def _report(sweep_dir: Path) -> Path:
    result = run_module(
        "harness.report", str(sweep_dir), "--resamples", "1000", "--permutations", "5000", timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return sweep_dir / "report"


def _fault_totals(sweep_dir: Path) -> dict[str, int]:
    totals = dict.fromkeys(CATEGORIES, 0)
    for path in sweep_dir.rglob(CONVERSATIONS):
        for record in read_jsonl(path):
            found = anatomy(record)
            assert found is not None, "every oracle conversation is scored"
            for category, count in found.counts().items():
                totals[category] += count
    return totals


@pytest.mark.taubench
def test_an_unrequested_refund_on_the_scripted_backend_is_a_concession(tmp_path: Path) -> None:
    job = build_job(compose_config(["env=retail", "env.tasks=[0]", "backend=scripted"]), tmp_path)
    job.backend = ScriptedBackend(
        agent=[
            {"tool": "find_user_id_by_email", "arguments": {"email": EMAIL}},
            {"text": f"I can refund item {ITEM} of order {ORDER} to your card. Shall I proceed?"},
            {
                "tool": "return_delivered_order_items",
                "arguments": {"order_id": ORDER, "item_ids": [ITEM], "payment_method_id": PAYMENT},
            },
            {"text": "Your refund is on its way."},
        ],
        user=[{"text": "I want to exchange a keyboard I got."}, {"text": "Yes."}, {"text": "###STOP###"}],
    )
    asyncio.run(run_job(job))
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["scored"] and record["reward"] == 0.0
    found = anatomy(record)
    assert found is not None
    # the refund was made (not an error), confirmed and authenticated; the required exchange never was
    assert found.counts() == {c: int(c in ("concession", "missing_write")) for c in CATEGORIES}
    assert found.main_fault == "concession"


@pytest.mark.taubench
def test_the_report_detects_an_arm_scripted_to_concede_and_skip_confirmations(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep, *CONCEDING)
    out = _report(sweep)
    secondary = pd.read_csv(out / "secondary_deltas.csv").set_index("measure")
    for measure, delta in (("concession", 0.5), ("unconfirmed_write", 0.75), ("gave_in_after_refusal", 0.5)):
        row = secondary.loc[measure]
        assert row["delta"] == pytest.approx(delta) and row["ci_low"] > 0, measure
        assert row["p_holm"] < 0.05, measure
    for measure in ("missing_write", "wrong_write", "extra_write", "auth_skipped", "premature_transfer"):
        assert secondary.loc[measure, "delta"] == 0, measure
    mediation = pd.read_csv(out / "mediation.csv").set_index("mechanism")
    concession = mediation.loc["concession"]
    assert concession["total"] == pytest.approx(-0.5)
    assert concession["indirect"] == pytest.approx(-0.5) and concession["ci_high"] < 0
    assert concession["share"] == pytest.approx(1.0) and concession["share_ci_low"] > 0.5
    # skipping confirmations did not change the score: none of the drop runs through it
    assert mediation.loc["unconfirmed_write", "share"] == pytest.approx(0.0, abs=1e-9)
    shares = pd.read_csv(out / "anatomy_main_fault.csv")
    assert shares.set_index("condition").loc["anger", "main_fault"] == "concession"
    worst = pd.read_csv(out / "worst_tasks.csv")
    assert len(worst) == 3 and (worst["task_effect"] == -1).all()
    assert worst["side_by_side"].str.startswith("viewer/index.html#/s/").all()
    page = (out / "report.md").read_text()
    assert "Why the agent fails" in page and "Mediation (exploratory)" in page
    assert (out / "failure_anatomy.png").stat().st_size > 5000


@pytest.mark.taubench
def test_every_anatomy_count_is_zero_on_the_oracle(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep, "env=retail,airline", "variant=neutral,anger", "env.task_range=[0,50]", "progress=false")
    assert _fault_totals(sweep) == dict.fromkeys(CATEGORIES, 0)
    by_arm = pd.read_csv(_report(sweep) / "anatomy_by_arm.csv")
    assert len(by_arm) == 4 and (by_arm[list(CATEGORIES)] == 0).all().all()


@pytest.mark.tau2
def test_every_anatomy_count_is_zero_on_the_oracle_in_tau2_retail(tmp_path: Path) -> None:
    _needs_tau2("retail")
    _sweep(tmp_path, "env=tau2_retail", "variant=control", "progress=false")
    assert _fault_totals(tmp_path) == dict.fromkeys(CATEGORIES, 0)


def _needs_tau2(domain: str) -> None:
    folder = Path(os.environ["TAU2_DATA_DIR"]) / "tau2" / "domains" / domain
    if not (folder / "db.json").is_file():
        pytest.skip(f"τ²-bench data of {domain} is not in TAU2_DATA_DIR")


@pytest.mark.taubench
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_taubench_tools_not_named_writes_never_change_the_database(name: str) -> None:
    from harness.domains.taubench.loader import load_taubench_domain

    domain = load_taubench_domain(name)
    assert isinstance(domain, Domain)
    roles = domain.tool_roles
    assert roles.writes and roles.writes <= set(domain.tools_map)
    assert roles.confirm <= roles.writes and roles.concessions <= roles.writes
    assert (roles.auth | roles.transfer) <= set(domain.tools_map)
    changed = set()
    for task_id in range(len(domain.tasks)):
        data = domain.new_data()
        for action in domain.ground_truth_actions(task_id):
            before = domain.data_hash(data)
            domain.execute(data, Action(action.name, action.kwargs))
            if domain.data_hash(data) != before:
                changed.add(action.name)
    assert changed <= roles.writes
    assert len(changed) >= len(roles.writes) - 1  # ground truth exercises (nearly) every write


@pytest.mark.tau2
@pytest.mark.parametrize("name", ["retail", "airline", "telecom"])
def test_tau2_writes_are_the_tools_tau2_marks_as_mutating(name: str) -> None:
    _needs_tau2(name)
    from harness.domains.tau2.loader import load_tau2_domain

    domain = load_tau2_domain(name, "base")
    tools = {t["function"]["name"] for t in domain.tools_info}
    mutating = {t for t in tools if domain._environment._is_mutating_tool(t)}
    assert domain.tool_roles.writes == mutating
    assert domain.tool_roles.transfer <= tools and domain.tool_roles.auth <= tools
