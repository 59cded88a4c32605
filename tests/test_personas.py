"""The manipulation is only the emotion: tone-only personas on one ladder, a style placebo matched in
length, the neutral persona before the onset, and persona sets that keep older sweeps as they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.domains.taubench.prompt import taubench_user_prompt
from harness.episode.user import user_prompt
from harness.episode.variants import INTENSITIES, Variant, variant_kinds
from harness.job.app import build_job
from harness.report.design import COGNITIVE, PRIMARY, STYLE, VS_PLACEBO, plan, refusal
from harness.report.load import load_sweep
from harness.report.style_match import TOLERANCE, style_match
from harness.store import CONVERSATIONS, JOB_FILE
from tests.helpers import TOY, compose_config, read_jsonl, run_toy_job

KINDS = variant_kinds()
TONE_ONLY = sorted(name for name, kind in KINDS.items() if kind in ("baseline", "emotion", "placebo"))
EMOTIONS = sorted(name for name, kind in KINDS.items() if kind == "emotion")
PLACEBOS = sorted(name for name, kind in KINDS.items() if kind == "placebo")
INSTRUCTION = "You are Ada, zip 12345. You are anxious. Cancel order #W1 because you no longer need it."
BASE = taubench_user_prompt(INSTRUCTION, "llm")

FORBIDDEN = [
    r"\banswer", r"\bdirectly\b", r"over-?explain", r"misunderstand", r"threat", r"demand", r"give away",
    r"mix(?:es|ed)? up", r"\brepeat", r"\bask", r"confirm", r"double-check", r"\bexplain", r"\binsist",
    r"\brefus", r"give up", r"giving up", r"\bpush", r"elsewhere", r"complain", r"immediate", r"reassur",
    r"clarif", r"\bstep", r"question", r"capital", r"escalat", r"cancel", r"leav(?:e|ing)", r"###STOP###",
    r"\bprovide", r"\bshare", r"\bdetail", r"information", r"\bfix\b", r"\bnow\b(?! and then)", r"\bneed\b",
]  # fmt: skip
"""What the user *does* (answering, disclosure, demands, cooperation): none of it may be in a tone-only persona."""


def _variant(name: str, *overrides: str) -> Variant:
    cfg = compose_config([f"variant={name}", *overrides])
    return Variant.from_config(OmegaConf.to_container(cfg.variant, resolve=True))


def _rules_in(text: str) -> list[str]:
    return [pattern for pattern in FORBIDDEN if re.search(pattern, text, re.IGNORECASE)]


@pytest.mark.parametrize("level", INTENSITIES)
@pytest.mark.parametrize("name", TONE_ONLY)
def test_no_tone_only_persona_carries_a_disclosure_or_cooperation_rule(name: str, level: str) -> None:
    text = _variant(name, f"variant.intensity={level}").persona_text()
    assert text and _rules_in(text) == [], f"{name}/{level}: {_rules_in(text)} in {text!r}"


def test_the_rule_list_finds_what_the_v1_personas_did_and_confusion_is_labelled_cognitive() -> None:
    found = {
        (name, level): _rules_in(
            _variant(name, f"variant.intensity={level}", "variant.persona_set=v1").persona_text()
        )
        for name in ("neutral", "anger", "anxiety", "confusion")
        for level in INTENSITIES
    }
    assert {r"\banswer", r"\bdirectly\b"} <= set(found[("neutral", "low")])
    assert {"threat", "demand", "immediate"} <= set(found[("anger", "high")])
    assert r"over-?explain" in found[("anxiety", "high")]
    assert {"misunderstand", r"mix(?:es|ed)? up"} <= set(found[("confusion", "high")])
    assert KINDS["confusion"] == "cognitive" and _rules_in(_variant("confusion").persona_text())


@pytest.mark.parametrize("persona_set", ["v1", "v2"])
@pytest.mark.parametrize("level", INTENSITIES)
@pytest.mark.parametrize("name", [*EMOTIONS, *PLACEBOS, "confusion"])
def test_in_each_persona_set_a_prompt_differs_from_neutral_only_in_the_persona(
    name: str, level: str, persona_set: str, tmp_path: Path
) -> None:
    if name in PLACEBOS and persona_set == "v1":
        pytest.skip("the placebo exists in v2 only")
    overrides = [*TOY, f"variant.intensity={level}", f"variant.persona_set={persona_set}"]
    arm = build_job(compose_config([*overrides, f"variant={name}"]), tmp_path / "arm")
    base = build_job(compose_config([*overrides, "variant=neutral"]), tmp_path / "base")
    assert arm.user.framing == base.user.framing
    ours = user_prompt(BASE, arm.variant, arm.user.framing, active=True)
    theirs = user_prompt(BASE, base.variant, base.user.framing, active=True)
    persona, neutral = arm.variant.persona_text().strip(), base.variant.persona_text().strip()
    head, tail = ours.split(persona)
    assert theirs == f"{head}{neutral}{tail}" and persona != neutral


def test_the_intensities_are_one_ladder_of_the_same_emotion() -> None:
    """Low, medium, high say the same thing at three strengths: felt a little / clearly / intensely, shown
    now and then / in most messages / in every message."""
    ladder = [
        ("a little", "now and then"),
        ("clearly", "in most of your messages"),
        ("intensely", "in every message"),
    ]
    for name in EMOTIONS:
        for level, (degree, frequency) in zip(INTENSITIES, ladder, strict=True):
            text = _variant(name, f"variant.intensity={level}").persona_text()
            assert text.startswith(f"You feel {degree} ") and frequency in text, (name, level, text)


def test_v1_reproduces_the_first_prompts_and_every_job_records_its_persona_set(tmp_path: Path) -> None:
    v1 = build_job(compose_config([*TOY, "variant=anger", "variant.persona_set=v1"]), tmp_path / "v1")
    v2 = build_job(compose_config([*TOY, "variant=anger"]), tmp_path / "v2")
    assert "you may threaten to take your business elsewhere" in v1.variant.persona_text()
    assert "Answer the agent's questions directly" not in v1.user.framing
    assert "Answer the agent's questions directly" in v2.user.framing
    assert (v1.info["persona_set"], v2.info["persona_set"]) == ("v1", "v2")
    assert v1.fingerprint["variant"]["persona_set"] == "v1" and v1.fingerprint != v2.fingerprint
    assert v1.info["user_simulator"]["framing_sha"] != v2.info["user_simulator"]["framing_sha"]
    assert "older_personas" not in v1.fingerprint["variant"]
    assert (v1.variant.label, v2.variant.label) == ("anger-medium-v1", "anger-medium")


def test_a_persona_set_a_variant_lacks_is_refused_with_one_line(tmp_path: Path) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"variant 'verbose_formal' has no persona for persona_set 'v1'"):
        build_job(compose_config([*TOY, "variant=verbose_formal", "variant.persona_set=v1"]), tmp_path)


def test_each_user_turn_records_its_persona_and_the_turns_before_onset_are_neutral(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["variant=anger", "variant.onset_after_turns=1"])
    records = read_jsonl(tmp_path / CONVERSATIONS)
    job = json.loads((tmp_path / JOB_FILE).read_text())
    assert job["info"]["persona_set"] == "v2" and job["info"]["variant_kind"] == "emotion"
    for record in records:
        users = [c for c in record["calls"] if c["role"] == "user"]
        assert [c["persona"] for c in users][:2] == ["neutral", "anger"]
        assert [c["affect_active"] for c in users][:2] == [False, True]
        # the oracle's opening is the neutral persona's line: the opening came before the onset
        assert record["messages"][1]["content"] == _variant("neutral").opening()


def _scripted_sweep(sweep: Path) -> None:
    """Every variant at every intensity through the real loop: the oracle's user speaks its persona's lines."""
    for name, kind in KINDS.items():
        levels = INTENSITIES if kind in ("emotion", "cognitive") else ("medium",)
        for level in levels:
            label = f"{name}-{level}" if kind in ("emotion", "cognitive") else name
            run_toy_job(sweep / "toy" / label / "seed0", [f"variant={name}", f"variant.intensity={level}"])


def test_the_placebo_matches_the_emotions_words_per_turn_on_a_scripted_sweep(tmp_path: Path) -> None:
    _scripted_sweep(tmp_path)
    loaded = load_sweep(tmp_path)
    table = style_match(loaded.conversations)
    assert list(table["placebo"]) == PLACEBOS
    for row in table.to_dict("records"):
        assert row["emotions"] == 3 * len(EMOTIONS)
        assert abs(row["ratio"] - 1) <= TOLERANCE, row
    neutral = loaded.conversations[loaded.conversations["variant"] == "neutral"]["user_words_per_turn"].mean()
    assert (
        neutral < (1 - TOLERANCE) * table["emotions_words_per_turn"].iloc[0]
    )  # neutral is not the length control
    contrasts, missing = plan(loaded.conversations)
    kinds = {(c.kind, c.condition, c.baseline) for c in contrasts}
    assert {(VS_PLACEBO, f"anger@{level}", "verbose_formal") for level in INTENSITIES} <= kinds
    assert {(COGNITIVE, "confusion@high", "neutral"), (STYLE, "verbose_formal", "neutral")} <= kinds
    assert not any(c.kind == PRIMARY and c.condition.startswith("confusion") for c in contrasts)
    assert not any("placebo" in line for line in missing)


def test_arms_of_different_persona_sets_are_refused(tmp_path: Path) -> None:
    run_toy_job(tmp_path / "toy" / "neutral" / "seed0", ["variant=neutral"])
    run_toy_job(tmp_path / "toy" / "anger-medium-v1" / "seed0", ["variant=anger", "variant.persona_set=v1"])
    loaded = load_sweep(tmp_path)
    contrasts, _ = plan(loaded.conversations)
    primary = next(c for c in contrasts if c.kind == PRIMARY)
    reason = refusal(primary, loaded.conversations, loaded.settings)
    assert reason.startswith("refused: the arms come from different persona sets") and "v1" in reason
