"""Emotional variants of the simulated user, and affect already present in τ-bench instructions.

A variant is one file of `conf/variant/`: persona text per intensity (a dose), or one text for
every intensity (`neutral`), or none (`control`, τ-bench's own user). Nothing else differs
between variants: the framing around the persona is the user config's (`conf/user/llm.yaml`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.conf_dir import CONF_DIR
from harness.episode.dynamics import LADDER, Dynamics, Level
from harness.errors import validated

Intensity = Level
PersonaSet = Literal["v1", "v2"]
PERSONA_SETS: dict[str, str] = {
    "v1": "the first personas: some changed behaviour (answer directly, over-explain, demand, threaten); "
    "before the onset, the control prompt",
    "v2": "tone-only personas on one ladder per emotion, the rules in the framing; before the onset, the "
    "neutral persona inside the framing",
}
"""Versions of the persona texts and framing; a job records its set and only jobs of one set are compared."""
DEFAULT_PERSONA_SET: PersonaSet = "v2"
VariantKind = Literal["control", "baseline", "emotion", "cognitive", "placebo"]
PersonaText = dict[Intensity, str] | str
INTENSITIES: tuple[Intensity, ...] = LADDER
DOSE: dict[str | None, int] = {None: 0, "low": 1, "medium": 2, "high": 3}
"""A record's `intensity` as a dose for dose–response fits: neutral's (null) is dose 0 of each emotion."""
VARIANT_DIR = CONF_DIR / "variant"


class Variant(BaseModel):
    """A variant is data: persona text, an onset, an opening line for the oracle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: VariantKind = "emotion"
    """`control` (no block), `baseline` (neutral), `emotion`, `cognitive` (changes behaviour by design,
    its own contrast family) or `placebo` (a style without emotion)."""
    order: int = 100
    """Where the variant comes in reports and figures (ties by name)."""
    intensity: Intensity = "medium"
    onset_after_turns: int = Field(0, ge=0)
    """0: the persona shapes the first message on; N: it starts after N user turns."""
    persona: PersonaText = {}
    """Persona of the default set per intensity (a dose); one text for every intensity; or empty for control."""
    persona_set: PersonaSet = DEFAULT_PERSONA_SET
    """Which version of the persona texts (and of the framing) the job uses."""
    older_personas: dict[PersonaSet, PersonaText] = {}
    """The persona texts of the other sets, kept so older sweeps can be rerun as they were."""
    scripted_opening: dict[Intensity, str] | str = "Hi, I need some help with a request."
    """What the oracle's scripted user says first, in the persona's voice (a plumbing check, not a model result)."""
    markers: list[str] = Field(default_factory=list)
    """Regexes of this emotion's words for the report's lexicon check; none may occur in a persona text."""
    dynamics: Dynamics = Dynamics()
    """`static` (the default) or `reactive`: whether the intensity moves with what the agent does
    (`conf/variant/dynamics/`, `harness.episode.dynamics`). Only a variant with a dose can react."""

    @model_validator(mode="after")
    def _every_intensity(self) -> Variant:
        if (
            self.persona_set != DEFAULT_PERSONA_SET
            and self.persona
            and self.persona_set not in self.older_personas
        ):
            sets = sorted({DEFAULT_PERSONA_SET, *self.older_personas})
            raise ValueError(
                f"variant {self.name!r} has no persona for persona_set {self.persona_set!r}; it has {sets}"
            )
        for text, where in ((self.selected_persona, ""), (self.scripted_opening, " scripted_opening")):
            if isinstance(text, dict) and text:
                missing = [level for level in INTENSITIES if not text.get(level, "").strip()]
                if missing:
                    raise ValueError(
                        f"variant {self.name!r} has no{where or ' persona'} for intensity {missing}"
                    )
        return self

    @classmethod
    def from_config(cls, data: Any) -> Variant:
        """The `variant` config section, or a ConfigError naming the bad key."""
        return validated(cls, data, prefix="variant.")

    @property
    def selected_persona(self) -> PersonaText:
        """The persona of the job's `persona_set` (every intensity)."""
        if self.persona_set == DEFAULT_PERSONA_SET or not self.persona:
            return self.persona
        return self.older_personas[self.persona_set]

    @property
    def is_control(self) -> bool:
        """No persona: the user prompt is exactly τ-bench's."""
        return not self.persona

    @property
    def dosed(self) -> bool:
        """Whether the persona changes with `intensity`."""
        return isinstance(self.persona, dict) and bool(self.persona)

    @property
    def neutral_before_onset(self) -> bool:
        """Whether turns before the onset speak with the neutral persona in the framing (else the control prompt)."""
        return self.persona_set != "v1"

    def opening(self) -> str:
        """The oracle's scripted first line at this intensity."""
        if isinstance(self.scripted_opening, str):
            return self.scripted_opening
        return self.scripted_opening[self.intensity]

    @property
    def recorded_intensity(self) -> Intensity | None:
        """The intensity as records state it: null where the persona does not depend on it."""
        return self.intensity if self.dosed else None

    @property
    def reactive(self) -> bool:
        """Whether the intensity reacts to the agent: a reactive dynamics on a variant with a dose."""
        return self.dosed and self.dynamics.reactive

    @property
    def dynamics_name(self) -> str | None:
        """The dynamics as job directories and records name it; null where it is static or cannot react."""
        return self.dynamics.name if self.reactive else None

    @property
    def label(self) -> str:
        return variant_label(
            self.name,
            self.intensity,
            self.dosed,
            self.persona_set if self.persona else DEFAULT_PERSONA_SET,
            self.dynamics_name,
        )

    def persona_text(self, intensity: Intensity | None = None) -> str:
        """The persona at `intensity` (a reactive user's current one), else at the variant's."""
        persona = self.selected_persona
        if isinstance(persona, str):
            return persona
        return persona.get(intensity or self.intensity, "")

    def active_at(self, user_turn: int) -> bool:
        """Whether the persona shapes the user's `user_turn`-th message (0-based)."""
        return not self.is_control and user_turn >= self.onset_after_turns


def variant_label(
    name: str,
    intensity: str,
    dosed: bool,
    persona_set: str = DEFAULT_PERSONA_SET,
    dynamics: str | None = None,
) -> str:
    """A job's variant as directory names show it: `anger-high`, `anger-medium-reactive`, but `control` and
    `neutral` (no dose: nothing to react with); `-v1` after it for a persona set other than the default
    (control has none)."""
    label = f"{name}-{intensity}" if dosed else name
    if dosed and dynamics:
        label = f"{label}-{dynamics}"
    return label if persona_set == DEFAULT_PERSONA_SET or name == "control" else f"{label}-{persona_set}"


def config_variant_label(
    name: str, intensity: str, persona: Any, persona_set: str = DEFAULT_PERSONA_SET, dynamics: Any = None
) -> str:
    """`${variant_label:...}` in conf/config.yaml: `variant_label` from the raw config values."""
    dosed = isinstance(persona, dict | Mapping) and bool(persona)
    reacts = isinstance(dynamics, dict | Mapping) and dynamics.get("mode") == "reactive"
    named = (
        str(dynamics.get("name") or "reactive") if reacts and isinstance(dynamics, dict | Mapping) else None
    )
    return variant_label(name, intensity, dosed, persona_set if persona else DEFAULT_PERSONA_SET, named)


def register_config_resolvers() -> None:
    """Make `${variant_label:name,intensity,persona,dynamics}` resolvable (job directory names)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("variant_label"):
        OmegaConf.register_new_resolver("variant_label", config_variant_label)


@cache
def variant_kinds(directory: Path = VARIANT_DIR) -> dict[str, str]:
    """Every variant of `conf/variant/` with its kind (records written before kinds existed lack it)."""
    kinds = {}
    for path in directory.glob("*.yaml"):
        data = yaml.safe_load(path.read_text()) or {}
        kinds[data.get("name", path.stem)] = data.get("kind", Variant.model_fields["kind"].default)
    return kinds


@cache
def variant_order(directory: Path = VARIANT_DIR) -> tuple[str, ...]:
    """Every variant of `conf/variant/`, in the order reports show them (`order:`, then name)."""
    entries = []
    for path in directory.glob("*.yaml"):
        data = yaml.safe_load(path.read_text()) or {}
        entries.append(
            (int(data.get("order", Variant.model_fields["order"].default)), data.get("name", path.stem))
        )
    return tuple(name for _, name in sorted(entries))


MOOD_PATTERNS: dict[str, str] = {
    "angry": r"angry", "annoyed": r"annoyed", "anxious": r"anxious", "bad mood": r"bad mood",
    "calm": r"calm", "chill": r"chill", "confused": r"confused", "disappointed": r"disappointed",
    "emotional": r"emotional", "frustrated": r"frustrated", "furious": r"furious",
    "happy": r"(?<!not )happy(?! (?:with|to)\b)", "irritated": r"irritated", "lonely": r"lonely",
    "mad": r"mad", "nervous": r"nervous", "sad": r"sad", "scared": r"scared",
    "stressed": r"stress(?:ed)?(?: out)?", "unhappy": r"unhappy|not happy", "upset": r"upset",
    "worried": r"worried",
}  # fmt: skip
"""How the user feels: moods τ-bench's instructions name, each with the pattern that finds it."""
DEMEANOUR_PATTERNS: dict[str, str] = {
    "absent-minded": r"absent[- ]minded", "assertive": r"assertive", "brief": r"brief(?:ly)?",
    "busy": r"busy", "cautious": r"cautious", "concise": r"concise", "confident": r"confident",
    "creative": r"creative", "curious": r"curious", "dependent": r"dependent",
    "detail-oriented": r"detail[- ]oriented", "direct": r"direct(?! flights?\b)", "firm": r"firm",
    "flexible": r"flexible", "friendly": r"friendly", "funny": r"funny", "impatient": r"impatient",
    "in a rush": r"in a rush", "independent": r"independent", "insecure": r"insecure",
    "insistent": r"insistent|insistently", "logical": r"logical", "messy": r"messy",
    "mysterious": r"mysterious", "optimistic": r"optimistic", "organized": r"organi[sz]ed",
    "outgoing": r"outgoing(?! flights?\b)",
    "patient": r"patient", "persistent": r"persistent(?:ly)?", "pessimistic": r"pessimistic",
    "polite": r"polite", "private": r"private person", "reactive": r"reactive",
    "relaxing": r"relax(?:ed|ing)", "reluctant": r"reluctant", "rigid": r"rigid", "rude": r"rude",
    "shy": r"shy", "terse": r"terse", "urgent": r"urgent",
}  # fmt: skip
"""How the user behaves: personality and manner words τ-bench's instructions use."""
AFFECT_PATTERNS = {**MOOD_PATTERNS, **DEMEANOUR_PATTERNS}
"""Every mood and demeanour of τ-bench's 165 test instructions (all read); `happy with` / `happy to`
(accepting an offer) and a `direct` or `outgoing` flight are no mood."""
_AFFECT = [
    (word, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)) for word, pattern in AFFECT_PATTERNS.items()
]


def instruction_affect(instruction: str) -> list[str]:
    """The mood and demeanour words a τ-bench instruction already gives the user, sorted."""
    return sorted(word for word, pattern in _AFFECT if pattern.search(instruction))
