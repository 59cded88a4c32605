"""The lexicon check counts the simulated user's own words: no marker occurs in any persona text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.judge.schema import EMOTIONS
from harness.report.build import Settings, build_report
from harness.report.lexicon import active_turns, lexicon_rates, marker_pattern
from tests.helpers import CONF
from tests.report_synthetic import write_job

VARIANTS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((CONF / "variant").glob("*.yaml"))}
FRAMINGS = {
    path.stem: config["framing"]
    for path in (CONF / "user").glob("*.yaml")
    if "framing" in (config := yaml.safe_load(path.read_text()))  # react takes llm's by its defaults
}


def _by_level(persona: object, where: str) -> dict[str, str]:
    """Persona texts by intensity (one text for all where it does not depend on it)."""
    if not persona:
        return {}
    if isinstance(persona, str):
        return {f"{where}/all": persona}
    return {f"{where}/{level}": text for level, text in dict(persona).items()}  # type: ignore[call-overload]


def _personas(name: str, variant: dict[str, object]) -> dict[str, str]:
    """A variant's persona texts in every persona set."""
    older = dict(variant.get("older_personas") or {})  # type: ignore[call-overload]
    texts = _by_level(variant.get("persona"), f"{name}/{variant.get('persona_set', 'v2')}")
    for persona_set, persona in older.items():
        texts.update(_by_level(persona, f"{name}/{persona_set}"))
    return texts


def _framings(name: str, framing: object) -> dict[str, str]:
    if isinstance(framing, str):
        return {f"user/{name}": framing}
    return {f"user/{name}/{persona_set}": text for persona_set, text in dict(framing).items()}  # type: ignore[call-overload]


PERSONA_TEXTS = {
    **{where: text for name, v in VARIANTS.items() for where, text in _personas(name, v).items()},
    **{where: text for name, framing in FRAMINGS.items() for where, text in _framings(name, framing).items()},
}
EMOTIONAL = sorted(
    name for name, v in VARIANTS.items() if v.get("persona") and name in EMOTIONS and name != "neutral"
)


def test_every_emotional_variant_brings_its_own_markers() -> None:
    assert EMOTIONAL and all(VARIANTS[name].get("markers") for name in EMOTIONAL)


@pytest.mark.parametrize("variant", EMOTIONAL)
def test_no_marker_occurs_in_any_persona_text(variant: str) -> None:
    for marker in VARIANTS[variant]["markers"]:
        pattern = marker_pattern([marker])
        echoed = {
            where: pattern.search(text).group(0)
            for where, text in PERSONA_TEXTS.items()
            if pattern.search(text)
        }
        assert not echoed, f"{variant} marker {marker!r} occurs in {echoed}"


def test_the_markers_of_different_variants_do_not_overlap() -> None:
    for variant in EMOTIONAL:
        for other in EMOTIONAL:
            if other != variant:
                pattern = marker_pattern(VARIANTS[other]["markers"])
                hits = [m for m in VARIANTS[variant]["markers"] if pattern.fullmatch(m.replace("\\w*", ""))]
                assert not hits, f"{variant} markers {hits} are also {other} markers"


def test_only_active_turns_are_scored_with_a_ci() -> None:
    """Anger with onset after 1 turn: its first turns are neutral and must not dilute (or inflate) the rate."""
    turns, conversations = [], []
    for task in range(6):
        job = "anger-job"
        conversations.append({"job": job, "task_id": task, "trial": 0, "onset_after_turns": 1, "run_seed": 0})
        turns.append(
            {"job": job, "task_id": task, "trial": 0, "turn": 0, "text": "this is unacceptable, terrible"}
        )
        words = "this is unacceptable" if task % 2 else "please check my order"
        turns.append({"job": job, "task_id": task, "trial": 0, "turn": 1, "text": words})
    frame = pd.DataFrame(turns).assign(model="m", env="toy", split="test", condition="anger")
    active = active_turns(frame, pd.DataFrame(conversations))
    assert list(active["turn"].unique()) == [1]
    rates = lexicon_rates(active, {"anger": VARIANTS["anger"]["markers"]}, np.random.default_rng(0), 500)
    (row,) = rates.itertuples()
    assert row.active_turns == 6
    assert row.markers_per_100_words == pytest.approx(100 * 3 / 21)  # 3 hits in 3 + 3 + 3 + 4 + 4 + 4 words
    assert 0 <= row.ci_low < row.markers_per_100_words < row.ci_high


def test_the_report_lexicon_tells_the_variants_apart_on_known_text(tmp_path: Path) -> None:
    """Constructed conversations whose user says one fixed line per variant (tests/report_synthetic.py)."""
    for variant in ["control", *EMOTIONAL]:
        write_job(tmp_path, "toy", variant, 6, 1, lambda t, k: True)
    table = build_report(tmp_path, settings=Settings(resamples=300, model=False)).tables["lexicon_check"]
    rates = table.set_index(["condition", "lexicon"])
    for variant in EMOTIONAL:
        own = rates.loc[(variant, variant)]
        assert own["markers_per_100_words"] > 0, variant
        for condition in ["control", *EMOTIONAL]:
            if condition != variant:
                assert rates.loc[(condition, variant), "markers_per_100_words"] < own["markers_per_100_words"]
