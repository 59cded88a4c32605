"""The agent's apologies, empathy and refusals as the judge reads them: joined to each conversation,
compared between arms, and read against the lexicon on the same messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report.agent_acts import agreement_table, with_judged_acts
from harness.report.judgments import read_sweep_judgments
from harness.report.load import load_sweep
from tests.helpers import run_module, run_toy_job
from tests.judge_support import SCRIPTED_JUDGE, judge_cli
from tests.test_anatomy_runs import CONCEDING

# Each agent message, as the lexicon and the scripted judge (keywords of its own) read it:
AGENT = [
    "We regret the delay.",  # apology: the judge's only ("regret" is not in the lexicon)
    "We understand your frustration.",  # the lexicon's only (the judge wants "I understand")
    "I'm sorry, I am not able to do that.",  # apology and refusal, both read it
    "That is not permitted.",  # refusal: the judge's only
]
USER = ["Hi.", "And?", "Hm.", "Ok.", "###STOP###"]


def _scripted_job(job: Path, trials: int) -> None:
    agent = ",".join(f"{{text: '{text}'}}" for text in AGENT).replace("I'm", "I\\'m")
    user = ",".join(f"{{text: '{text}'}}" for text in USER)
    run_toy_job(
        job,
        [
            "backend=scripted",
            f"backend.agent=[{agent}]",
            f"backend.user=[{user}]",
            "env.tasks=[0]",
            f"env.trials={trials}",
        ],
    )


def test_the_judge_and_the_lexicon_are_compared_message_by_message(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _scripted_job(sweep / "scripted" / "toy-test" / "control" / "seed0", trials=3)
    judged = judge_cli([str(sweep), *SCRIPTED_JUDGE])
    assert judged.returncode == 0, judged.stderr[-2000:]
    conversations = load_sweep(sweep).conversations
    judgments = read_sweep_judgments(sweep, sorted(set(conversations["job"])))
    frame, judge = with_judged_acts(conversations, judgments)
    assert judge is not None and len(frame) == 3
    assert frame["apologies_judged"].tolist() == [2.0] * 3  # the 1st and 3rd messages
    assert frame["empathy_judged"].tolist() == [0.0] * 3
    assert frame["refusals_judged"].tolist() == [2.0] * 3  # the 3rd and 4th
    assert frame["apologies_lexicon"].tolist() == [2.0] * 3  # the 2nd and 3rd
    assert (frame["gave_in_source"] == "judge").all()

    table = agreement_table(frame, np.random.default_rng(0), 200)
    rows = table[table["condition"] == "all"].set_index("act")
    apology = rows.loc["apology_or_empathy"]
    assert (apology["messages"], apology["conversations"]) == (12, 3)
    assert (apology["both"], apology["judge_only"], apology["lexicon_only"], apology["neither"]) == (
        3,
        3,
        3,
        3,
    )
    assert apology["agreement"] == pytest.approx(0.5) and apology["kappa"] == pytest.approx(0.0)
    refusal = rows.loc["refusal"]
    assert (refusal["both"], refusal["judge_only"], refusal["lexicon_only"], refusal["neither"]) == (
        3,
        3,
        0,
        6,
    )
    # observed 0.75, by chance 0.5 (the judge says yes to half, the lexicon to a quarter)
    assert refusal["agreement"] == pytest.approx(0.75) and refusal["kappa"] == pytest.approx(0.5)


def test_without_a_judgment_of_the_agent_the_lexicon_stays_and_nothing_is_joined(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _scripted_job(sweep / "scripted" / "toy-test" / "control" / "seed0", trials=1)
    conversations = load_sweep(sweep).conversations
    frame, judge = with_judged_acts(conversations, read_sweep_judgments(sweep, list(conversations["job"])))
    assert judge is None and frame is conversations
    assert (frame["gave_in_source"] == "lexicon").all()


@pytest.mark.taubench
@pytest.mark.slow
def test_the_report_compares_the_judged_acts_of_an_arm_scripted_to_refuse_then_concede(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    run = run_module("harness", "-m", *CONCEDING, f"hydra.sweep.dir={sweep}", timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    judged = judge_cli([str(sweep), *SCRIPTED_JUDGE], timeout=600)
    assert judged.returncode == 0, judged.stderr[-2000:]
    report = run_module(
        "harness.report", str(sweep), "--resamples", "1000", "--permutations", "5000", timeout=600
    )
    assert report.returncode == 0, report.stderr[-2000:]
    out = sweep / "report"

    deltas = pd.read_csv(out / "agent_acts_deltas.csv").set_index("measure")
    # on even tasks the anger arm's agent says "I'm sorry, but I can't offer compensation", then sends it
    for measure in ("apologies_judged", "refusals_judged"):
        row = deltas.loc[measure]
        assert row["delta"] == pytest.approx(0.5) and row["ci_low"] > 0 and row["p_holm"] < 0.05, measure
        assert row["source"] == "judge" and row["holm_family"].startswith("secondary, judged by "), measure
    assert deltas.loc["empathy_judged", "delta"] == 0
    secondary = pd.read_csv(out / "secondary_deltas.csv").set_index("measure")
    assert not secondary.index.isin(deltas.index).any()  # a family of its own
    gave_in = secondary.loc["gave_in_after_refusal"]
    assert gave_in["source"] == "judge + anatomy" and gave_in["delta"] == pytest.approx(0.5)

    arms = pd.read_csv(out / "agent_acts_by_arm.csv").set_index("condition")
    assert arms["judged"].tolist() == [24, 24] and arms["judge_errors"].sum() == 0
    assert arms.loc["anger", "refusal_rate_judged"] == 0.5 and arms.loc["neutral", "refusal_rate_judged"] == 0
    agreement = pd.read_csv(out / "agent_acts_agreement.csv")
    assert set(agreement["act"]) == {"apology_or_empathy", "refusal"}
    assert "Secondary, judged: the agent's apologies, empathy and refusals" in (out / "report.md").read_text()
