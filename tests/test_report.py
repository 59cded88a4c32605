"""`python -m harness.report` on a real oracle sweep and on constructed sweeps with known answers."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_module
from tests.report_synthetic import write_job

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["control", "frustration", "anxiety", "anger", "confusion"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ["success_by_variant.png", "pass_k.png", "turns_by_variant.png", "manipulation_check.png"]


def report_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_module("harness.report", *map(str, args), timeout=timeout)


def _html_rows(page: str) -> str:
    return re.sub(r">\s+<", "><", page)


def _row(*cells: object) -> str:
    return "".join(f"<td>{cell}</td>" for cell in cells)


def _check_figures(out: Path, page: str) -> None:
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000, name
        assert base64.b64encode(data).decode() in page, f"{name} is not embedded in the HTML"


def _oracle_domain_overrides() -> list[str]:
    if (ROOT / "tests" / "toy_domain.py").exists():
        return ["env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy"]
    from harness.domains.taubench.loader import INSTALL_HINT, taubench_available

    if not taubench_available():
        pytest.skip(INSTALL_HINT)
    return ["env=retail"]


def test_report_from_a_real_oracle_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    overrides = _oracle_domain_overrides()
    run = subprocess.run(
        [
            sys.executable, "-m", "harness", "-m", *overrides, "variant=control,anger,confusion",
            "env.tasks=[0,1]", "env.trials=2", "progress=false", f"hydra.sweep.dir={sweep}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]

    result = report_cli(sweep)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PLUMBING CHECK" in result.stdout
    out = sweep / "report"
    page = (out / "report.html").read_text()
    assert "PLUMBING CHECK — NOT A MODEL RESULT" in page and "test backend (oracle)" in page
    assert "PLUMBING CHECK — NOT A MODEL RESULT" in (out / "report.md").read_text()
    _check_figures(out, page)

    table = pd.read_csv(out / "summary.csv")
    rows = _html_rows(page)
    summaries = sorted(sweep.rglob("summary.json"))
    assert len(summaries) == 3
    for path in summaries:
        summary = json.loads(path.read_text())
        cell = table[(table["env"] == summary["env"]) & (table["condition"] == summary["variant"])].iloc[0]
        assert cell["conversations"] == summary["conversations"] == 4
        assert cell["scored"] == summary["scored"]
        assert cell["success_rate"] == pytest.approx(summary["average_reward"])
        for k, value in summary["pass_hat_k"].items():
            assert cell[f"pass^{k}"] == pytest.approx(value)
        assert cell["tool_calls"] * cell["conversations"] == pytest.approx(summary["tool_calls"])
        expected = _row(
            summary["model"], summary["env"], summary["split"], summary["variant"], 2, 2,
            summary["conversations"], summary["scored"], summary["unscored_errors"], "0.000", "0.000",
            f"{summary['average_reward']:.3f}",
        )  # fmt: skip
        assert expected in rows, f"no row for {summary['variant']} in the HTML overview"

    manipulation = pd.read_csv(out / "manipulation_check.csv").set_index("condition")
    assert manipulation.loc["anger", "vader_compound"] < manipulation.loc["control", "vader_compound"]


def test_report_pairs_a_failing_variant_with_control_in_a_real_sweep(tmp_path: Path) -> None:
    """Control from the oracle, anger from a scripted agent that never acts: every pair is a loss."""
    sweep = tmp_path / "sweep"
    common = [
        "-m", "env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy", "env.trials=2",
        "progress=false", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    for extra in (
        ["variant=control"],
        ["variant=anger", "backend=scripted"],
    ):  # backends differ: allowed below
        run = run_module("harness", *common, *extra, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]

    refused = report_cli(sweep, "--out", tmp_path / "refused")
    assert refused.returncode == 0, refused.stderr[-2000:]
    assert "anger − control: refused: the jobs differ in backend._target_" in refused.stdout
    result = report_cli(
        sweep, "--allow-differing", "backend,user_simulator"
    )  # the scripted backend plays the user too
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PLUMBING CHECK (backend oracle, scripted)" in result.stdout
    assert "settings allowed to differ between compared jobs: backend, user_simulator" in result.stdout
    assert "no neutral arm, so the emotions' own effect (emotion − neutral) is missing" in result.stdout
    deltas = pd.read_csv(sweep / "report" / "deltas.csv").iloc[0]
    assert (deltas["condition"], deltas["tasks"], deltas["pairs"], deltas["delta"]) == ("anger", 5, 10, -1.0)
    # five tasks cannot reach p < 0.05 (the smallest exact p is 2/2^5): no p-value, and why
    assert np.isnan(deltas["p_value"]) and "5 tasks: too few for a test" in deltas["note"]
    assert deltas["verdict"].startswith("n/a: ") and "5 tasks: too few for a test" in deltas["verdict"]
    examples = pd.read_csv(sweep / "report" / "failure_examples.csv")
    assert len(examples) == 10
    for example in examples.itertuples():
        failed = [
            json.loads(line)
            for line in (sweep / example.job / "conversations.jsonl").read_text().splitlines()
        ]
        won = [
            json.loads(line)
            for line in (sweep / example.job_baseline / "conversations.jsonl").read_text().splitlines()
        ]
        key = (example.task_id, example.trial)
        assert [r["reward"] for r in failed if (r["task_id"], r["trial"]) == key] == [0.0]
        assert [r["reward"] for r in won if (r["task_id"], r["trial"]) == key] == [1.0]


@pytest.fixture(scope="module")
def synthetic_report(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """40 tasks × 3 trials per variant; anger loses tasks 0-15 (which control always wins), the rest tie."""
    sweep = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(7)
    noise = rng.uniform(size=(40, 3))

    def base(task: int, trial: int) -> bool:
        return task < 32 or bool(noise[task, trial] < 0.3)

    def angry(task: int, trial: int) -> bool:
        return task >= 16 and base(task, trial)

    for variant in VARIANTS:
        outcome = angry if variant == "anger" else base
        write_job(sweep, "retail", variant, 40, 3, outcome, affect_tasks=range(0, 40, 2))
    write_job(sweep, "airline", "control", 5, 3, base, finished=False)
    failed = write_job(sweep, "airline", "anger", 5, 3, base, finished=False)
    (failed / "error.txt").write_text("backend unavailable: no GPU\n")
    recovered = write_job(sweep, "airline", "frustration", 5, 3, base)
    (recovered / "error.txt").write_text("an earlier attempt failed\n")
    os.utime(recovered / "error.txt", (1, 1))  # the summary of the rerun is newer
    return sweep, report_cli(sweep, "--resamples", "1000")


def retail_by_condition(sweep: Path, table: str) -> pd.DataFrame:
    """The retail rows of one of the report's tables, indexed by condition."""
    rows = pd.read_csv(sweep / "report" / table)
    return rows[rows["env"] == "retail"].set_index("condition")


def test_synthetic_report_finds_the_known_delta(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, result = synthetic_report
    assert result.returncode == 0, result.stderr[-2000:]
    retail = retail_by_condition(sweep, "deltas.csv")
    anger = retail.loc["anger"]
    assert anger["delta"] == pytest.approx(-16 * 3 / 120)
    assert anger["ci_high"] < 0 and anger["p_holm"] < 0.01
    assert (anger["baseline_only"], anger["variant_only"]) == (48, 0)
    assert anger["verdict"] == "40.0 points lower (significant after Holm)"
    for variant in ["frustration", "anxiety", "confusion"]:
        assert retail.loc[variant, "delta"] == 0 and np.isnan(retail.loc[variant, "p_holm"])
        assert (
            retail.loc[variant, "verdict"]
            == "n/a: every task has the same result in both arms: nothing to test"
        )
    assert "toy-model/retail/anger − control: delta -0.400" in result.stdout
    assert "toy-model/retail/test: no neutral arm" in result.stdout


def test_synthetic_report_lists_the_failures_against_control(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = synthetic_report
    examples = pd.read_csv(sweep / "report" / "failure_examples.csv")
    retail = examples[examples["env"] == "retail"]
    assert set(retail["contrast"]) == {"anger − control"}
    assert sorted(zip(retail["task_id"], retail["trial"], strict=True)) == [
        (t, k) for t in range(16) for k in range(3)
    ]
    assert set(retail["job"]) == {"toy-model/retail-test/anger/seed0"}
    assert (sweep / retail["job_baseline"].iloc[0] / "conversations.jsonl").exists()


def test_synthetic_report_splits_by_instruction_affect(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = synthetic_report
    split = pd.read_csv(sweep / "report" / "instruction_mood.csv")
    anger = split[(split["env"] == "retail") & (split["condition"] == "anger")].iloc[0]
    # tasks 0, 2, ..., 14 (8 of the 20 even tasks) carry affect words and lose; 8 of the 20 odd ones lose
    assert anger["delta_with_mood"] == pytest.approx(-8 * 3 / 60)
    assert anger["delta_without"] == pytest.approx(-8 * 3 / 60)
    assert anger["interaction"] == pytest.approx(0)
    assert (anger["tasks_with_mood"], anger["tasks_without"]) == (20, 20)
    assert anger["ci_low"] < 0 < anger["ci_high"] and anger["p_value"] > 0.5


def test_synthetic_report_says_which_jobs_are_missing(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, result = synthetic_report
    jobs = pd.read_csv(sweep / "report" / "jobs.csv").set_index("job")
    assert jobs.loc["toy-model/airline-test/anger/seed0", "state"] == "failed"
    assert (
        jobs.loc["toy-model/airline-test/control/seed0", "state"] == "incomplete"
    )  # no summary, and no run holds the job: interrupted
    assert jobs.loc["toy-model/airline-test/frustration/seed0", "state"] == "complete"
    assert (jobs["state"] == "complete").sum() == 6
    assert (
        "not complete: toy-model/airline-test/anger/seed0 (failed: backend unavailable: no GPU)"
        in result.stdout
    )
    page = (sweep / "report" / "report.html").read_text()
    assert "PLUMBING CHECK" not in page
    assert "8 job directories: 6 complete, 1 failed, 1 incomplete" in page


def test_synthetic_report_fits_the_conditional_logit(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = synthetic_report
    retail = retail_by_condition(sweep, "conditional_logit.csv")
    assert retail.loc["anger", "ci_high"] < 0
    # identical arms: only the 5 noisy tasks with both outcomes inform it, too few to fit
    assert np.isnan(retail.loc["frustration", "log_odds"])
    assert retail.loc["frustration", "note"] == "5 tasks with both outcomes: too few to fit (needs 6)"


def test_synthetic_report_sentiment_tells_anger_from_control(
    synthetic_report: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = synthetic_report
    retail = retail_by_condition(sweep, "manipulation_check.csv")
    assert set(retail.columns) >= {"vader_compound", "vader_negative", "vader_positive", "user_messages"}
    assert retail.loc["anger", "vader_compound"] < retail.loc["control", "vader_compound"]


def test_bad_input_gives_one_clear_line(tmp_path: Path) -> None:
    missing = report_cli(tmp_path / "nowhere")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'nowhere'} is not a directory"
    empty = report_cli(tmp_path)
    assert empty.returncode == 2
    assert len(empty.stderr.strip().splitlines()) == 1 and "no job directories" in empty.stderr


def test_a_broken_record_makes_its_job_incomplete(tmp_path: Path) -> None:
    job = write_job(tmp_path, "retail", "control", 2, 1, lambda task, trial: True)
    log = job / "conversations.jsonl"
    log.write_text('{"task_id": 0, "trial": 0}\n' + log.read_text().splitlines(keepends=True)[1])
    result = report_cli(tmp_path)
    assert result.returncode == 0, result.stderr
    state = pd.read_csv(tmp_path / "report" / "jobs.csv").iloc[0]
    assert (state["state"], state["conversations"], state["damaged_lines"]) == ("damaged", 1, 1)
    assert "1 damaged line in conversations.jsonl" in state["detail"]


def test_a_sweep_without_control_still_reports(tmp_path: Path) -> None:
    write_job(tmp_path, "retail", "anger", 4, 2, lambda task, trial: task < 2)
    write_job(
        tmp_path,
        "retail",
        "confusion",
        4,
        2,
        lambda task, trial: True,
        scored=False,
        termination="user_error",
    )
    result = report_cli(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no comparison: no (model, env, split) has a baseline arm" in result.stdout
    assert "toy-model/retail/test: no baseline arm (neutral or control)" in result.stdout
    summary = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("condition")
    assert summary.loc["anger", "success_rate"] == 0.5 and summary.loc["anger", "pass^2"] == 0.5
    assert summary.loc["confusion", "scored"] == 0 and summary.loc["confusion", "unscored_errors"] == 8
    assert pd.isna(summary.loc["confusion", "success_rate"])


def test_the_report_is_mirrored_to_an_offline_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    sweep = tmp_path / "sweep"
    write_job(sweep, "retail", "control", 6, 1, lambda task, trial: True)
    write_job(sweep, "retail", "anger", 6, 1, lambda task, trial: task >= 3)
    for variable in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = report_cli(sweep, "--wandb-project", "tau-emotion-test")
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("W&B run: "))
    assert run_dir.parent == sweep / "report" / "wandb" and run_dir.name.startswith("offline-run-")
    tables = (run_dir / "files" / "media" / "table").glob("*.table.json")
    [deltas_file] = [path for path in tables if re.fullmatch(r"deltas_\d+_\w+\.table\.json", path.name)]
    deltas = json.loads(deltas_file.read_text())
    row = dict(zip(deltas["columns"], deltas["data"][0], strict=True))
    assert (row["condition"], row["delta"], row["mcnemar_p"]) == ("anger", -0.5, pytest.approx(0.25))
    images = sorted(p.name.split("_")[0] for p in (run_dir / "files" / "media" / "images").glob("*.png"))
    assert images == ["contrasts", "failure", "manipulation", "pass", "success", "turns"]
