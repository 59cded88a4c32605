"""The control user prompt is τ-bench's; each variant adds exactly its block and nothing else."""

from __future__ import annotations

import pytest

from harness.user import taubench_user_prompt, user_prompt, variant_block
from harness.variants import Variant
from tests.helpers import compose_config

VARIANTS = ["frustration", "anxiety", "anger", "confusion"]
INSTRUCTION = "You are Ada, zip 12345. You are anxious. Cancel order #W1 because you no longer need it."


def _variant(name: str, *overrides: str) -> tuple[Variant, str]:
    cfg = compose_config([f"variant={name}", *overrides])
    return Variant(**cfg.variant), str(cfg.user.framing)


@pytest.mark.taubench
@pytest.mark.parametrize("strategy", ["llm", "react"])
def test_control_prompt_is_taubench_own_user_prompt(strategy: str) -> None:
    from tau_bench.envs.user import LLMUserSimulationEnv, ReactUserSimulationEnv

    simulator = LLMUserSimulationEnv if strategy == "llm" else ReactUserSimulationEnv
    theirs = simulator.build_system_prompt(None, INSTRUCTION)  # type: ignore[arg-type]
    control, framing = _variant("control")
    assert user_prompt(INSTRUCTION, strategy, control, framing, active=True) == theirs  # type: ignore[arg-type]
    assert taubench_user_prompt(INSTRUCTION, strategy) == theirs  # type: ignore[arg-type]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("intensity", ["low", "medium", "high"])
def test_a_variant_prompt_is_control_plus_its_block(name: str, intensity: str) -> None:
    variant, framing = _variant(name, f"variant.intensity={intensity}")
    control, _ = _variant("control")
    base = user_prompt(INSTRUCTION, "llm", control, framing, active=True)
    prompt = user_prompt(INSTRUCTION, "llm", variant, framing, active=True)
    block = variant_block(variant, framing)
    assert prompt == f"{base}\n\n{block}"
    assert variant.persona[intensity].strip() in block
    # the block keeps the instruction's facts and goal, and governs tone over its demeanour words
    assert "facts" in block and "goal" in block and "demeanour" in block
    assert INSTRUCTION in prompt


def test_blocks_differ_by_variant_and_by_intensity() -> None:
    blocks = {
        (name, level): variant_block(_variant(name, f"variant.intensity={level}")[0], _variant(name)[1])
        for name in VARIANTS
        for level in ("low", "medium", "high")
    }
    assert len(set(blocks.values())) == len(blocks)


def test_onset_after_n_turns_keeps_the_first_turns_neutral() -> None:
    variant, framing = _variant("anger", "variant.onset_after_turns=2")
    assert [variant.active_at(turn) for turn in range(4)] == [False, False, True, True]
    control, _ = _variant("control")
    neutral = user_prompt(INSTRUCTION, "llm", control, framing, active=True)
    assert user_prompt(INSTRUCTION, "llm", variant, framing, active=variant.active_at(1)) == neutral
    assert user_prompt(INSTRUCTION, "llm", variant, framing, active=variant.active_at(2)) != neutral
