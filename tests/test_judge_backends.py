"""The judge through an OpenAI-compatible endpoint (JSON schema mode), and into each job's offline W&B run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.errors import ExitCode
from harness.judge.app import run
from harness.store.layout import JUDGMENTS_DIR
from harness.tracking.wandb_files import find_runs
from harness.tracking.wandb_logger import RUN_FILE, WANDB_SUBDIR
from tests.fake_openai_server import MODEL, Step, fake_openai_server
from tests.helpers import CONF, read_jsonl, run_toy_job
from tests.judge_support import SCRIPTED_JUDGE
from tests.wandb_support import isolate_wandb, table_of

VALID_ONE_TURN = (
    '{"turns": [{"turn": 0, "reason": "Sharp.", "emotion": "anger", "intensity": 2}], "fidelity": [], '
    '"agent": [{"message": 0, "apology": false, "empathy": false, "refusal": false}]}'
)  # one customer turn and one agent message: every toy conversation but task 3


def judge_config(sweep: Path, overrides: list[str]):  # type: ignore[no-untyped-def]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="judge", overrides=[f"sweep_dir={sweep}", *overrides])


def test_an_openai_compatible_judge_asks_for_the_json_schema_and_counts_tokens(tmp_path: Path) -> None:
    pytest.importorskip("openai")
    job = tmp_path / "anger"
    run_toy_job(job, ["variant=anger"])
    with fake_openai_server([Step(content="I think: anger."), Step(content=VALID_ONE_TURN)]) as server:
        cfg = judge_config(
            tmp_path,
            [
                "backend=openai", "model=gpt-4o-mini", "model.name=fake", f"model.api_model={MODEL}",
                f"model.base_url={server.url}", "model.api_key_env=null", "concurrency=1", "wandb.mode=disabled",
                "backend.backoff_s=0.01",
            ],
        )  # fmt: skip
        assert run(cfg) == ExitCode.OK
        requests = server.agent_requests
    judgments = read_jsonl(next((job / JUDGMENTS_DIR).glob("*.jsonl")))
    assert len(judgments) == 5
    valid = [j for j in judgments if j["error"] is None]
    assert len(valid) == 4 and all(j["turns"][0]["emotion"] == "anger" for j in valid)
    assert (
        sum(j["attempts"] for j in judgments) == len(requests) == 1 + 4 + 3
    )  # a retry, four fits, task 3 thrice
    assert sum(j["usage"]["prompt_tokens"] for j in judgments) == 100 * len(requests)
    for request in requests:
        response_format = request["response_format"]
        assert response_format["type"] == "json_schema"
        turns = response_format["json_schema"]["schema"]["properties"]["turns"]
        assert turns["minItems"] == len(turns["prefixItems"]) >= 1
        assert request["temperature"] == 0.0 and "tools" not in request


def test_judgments_go_into_the_jobs_own_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_wandb(tmp_path, monkeypatch)
    sweep = tmp_path / "sweep"
    job = sweep / "anger"
    run_toy_job(job, ["variant=anger", "wandb.mode=offline", "name=judged"])
    run_id = json.loads((job / WANDB_SUBDIR / RUN_FILE).read_text())["id"]
    cfg = judge_config(
        sweep, [*(o for o in SCRIPTED_JUDGE if not o.startswith("wandb")), "wandb.mode=offline"]
    )
    assert run(cfg) == ExitCode.OK
    segments = find_runs(job / WANDB_SUBDIR)
    assert {segment.run_id for segment in segments} == {run_id} and len(segments) == 2
    (judge,) = (p.stem for p in (job / JUDGMENTS_DIR).glob("*.jsonl"))
    last = segments[-1]
    table = table_of(last, f"judgments/{judge}")
    assert [(row[0], row[1]) for row in table["data"]] == [(t, 0) for t in range(5)]
    assert last.summary[f"judge/{judge}/emotion_share/anger"] == 1.0
    assert last.summary[f"judge/{judge}/errors"] == 0  # the scripted judge answers every conversation
    assert last.summary[f"judge/{judge}/fidelity_rate/any"] == 0
