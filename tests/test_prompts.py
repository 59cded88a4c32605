"""The control user prompt is τ-bench's; each variant adds exactly its block and nothing else;
an emotion's prompt differs from neutral's only inside the persona text."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.domains.taubench.prompt import taubench_user_prompt
from harness.episode.user import user_prompt, variant_block
from harness.episode.variants import DOSE, INTENSITIES, Variant, variant_order
from harness.errors import ConfigError
from harness.job.app import build_job
from tests.helpers import CONF, TOY, compose_config

EMOTIONS = sorted(p.stem for p in (CONF / "variant").glob("*.yaml") if p.stem not in ("control", "neutral"))
VARIANTS = [*EMOTIONS, "neutral"]
INSTRUCTION = "You are Ada, zip 12345. You are anxious. Cancel order #W1 because you no longer need it."


def _variant(name: str, *overrides: str) -> tuple[Variant, str]:
    cfg = compose_config([f"variant={name}", *overrides])
    return Variant.from_config(OmegaConf.to_container(cfg.variant, resolve=True)), str(cfg.user.framing)


@pytest.mark.taubench
@pytest.mark.parametrize("strategy", ["llm", "react"])
def test_control_prompt_is_taubench_own_user_prompt(strategy: str) -> None:
    from tau_bench.envs.user import LLMUserSimulationEnv, ReactUserSimulationEnv

    simulator = LLMUserSimulationEnv if strategy == "llm" else ReactUserSimulationEnv
    theirs = simulator.build_system_prompt(None, INSTRUCTION)  # type: ignore[arg-type]
    control, framing = _variant("control")
    assert user_prompt(taubench_user_prompt(INSTRUCTION, strategy), control, framing, active=True) == theirs  # type: ignore[arg-type]
    assert taubench_user_prompt(INSTRUCTION, strategy) == theirs  # type: ignore[arg-type]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("intensity", ["low", "medium", "high"])
def test_a_variant_prompt_is_control_plus_its_block(name: str, intensity: str) -> None:
    variant, framing = _variant(name, f"variant.intensity={intensity}")
    control, _ = _variant("control")
    base = user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), control, framing, active=True)
    prompt = user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), variant, framing, active=True)
    block = variant_block(variant, framing)
    assert prompt == f"{base}\n\n{block}"
    assert variant.persona_text().strip() in block
    # the block keeps the instruction's facts and goal, and governs tone over its demeanour words
    assert "facts" in block and "goal" in block and "demeanour" in block
    assert INSTRUCTION in prompt


def test_blocks_differ_by_emotion_and_by_intensity() -> None:
    blocks = {
        (name, level): variant_block(_variant(name, f"variant.intensity={level}")[0], _variant(name)[1])
        for name in EMOTIONS
        for level in INTENSITIES
    }
    assert len(set(blocks.values())) == len(blocks)


@pytest.mark.parametrize("strategy", ["llm", "react"])
@pytest.mark.parametrize("intensity", INTENSITIES)
@pytest.mark.parametrize("name", EMOTIONS)
def test_an_emotion_prompt_differs_from_neutral_only_inside_the_persona(
    name: str, intensity: str, strategy: str
) -> None:
    user = f"user={strategy}"
    emotion, framing = _variant(name, f"variant.intensity={intensity}", user)
    neutral, neutral_framing = _variant("neutral", f"variant.intensity={intensity}", user)
    assert framing == neutral_framing
    ours = user_prompt(taubench_user_prompt(INSTRUCTION, strategy), emotion, framing, active=True)  # type: ignore[arg-type]
    theirs = user_prompt(taubench_user_prompt(INSTRUCTION, strategy), neutral, framing, active=True)  # type: ignore[arg-type]
    persona, neutral_persona = emotion.persona_text().strip(), neutral.persona_text().strip()
    assert ours.count(persona) == 1 and theirs.count(neutral_persona) == 1
    head, tail = ours.split(persona)
    assert theirs == f"{head}{neutral_persona}{tail}"
    assert persona != neutral_persona


def test_neutral_is_one_persona_at_every_intensity_with_intensity_left_out_of_records() -> None:
    prompts = set()
    for level in INTENSITIES:
        neutral, framing = _variant("neutral", f"variant.intensity={level}")
        assert not neutral.is_control and not neutral.dosed and neutral.recorded_intensity is None
        assert neutral.label == "neutral"
        prompts.add(user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), neutral, framing, active=True))
    assert len(prompts) == 1
    anger, _ = _variant("anger", "variant.intensity=high")
    assert (anger.recorded_intensity, anger.label) == ("high", "anger-high")
    assert [DOSE[neutral.recorded_intensity], *(DOSE[level] for level in INTENSITIES)] == [0, 1, 2, 3]


def test_a_framing_with_fields_other_than_persona_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`user.framing`.*\{persona\}"):
        build_job(compose_config([*TOY, "user.framing='As {variant}: {persona}'"]), tmp_path)


def test_the_variant_order_comes_from_the_variant_files() -> None:
    order = variant_order()
    assert set(order) == {p.stem for p in (CONF / "variant").glob("*.yaml")}
    assert order[:2] == ("control", "neutral")
    ranks = [_variant(name)[0].order for name in order]
    assert ranks == sorted(ranks)


def test_onset_after_n_turns_keeps_the_first_turns_neutral() -> None:
    variant, framing = _variant("anger", "variant.onset_after_turns=2")
    assert [variant.active_at(turn) for turn in range(4)] == [False, False, True, True]
    control, _ = _variant("control")
    neutral = user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), control, framing, active=True)
    assert (
        user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), variant, framing, active=variant.active_at(1))
        == neutral
    )
    assert (
        user_prompt(taubench_user_prompt(INSTRUCTION, "llm"), variant, framing, active=variant.active_at(2))
        != neutral
    )
