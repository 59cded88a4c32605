"""Emotional variants of the simulated user, and affect already present in τ-bench instructions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Intensity = Literal["low", "medium", "high"]
INTENSITIES: tuple[Intensity, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Variant:
    """A variant is data: persona text per intensity, an onset, an opening line for the oracle."""

    name: str
    intensity: Intensity = "medium"
    onset_after_turns: int = 0
    """0: the emotion is there from the first message; N: it starts after N user turns."""
    persona: dict[str, str] = field(default_factory=dict)
    """Persona instructions per intensity; empty for control."""
    scripted_opening: str = "Hi, I need some help with a request."
    """What the oracle's scripted user says first (a plumbing check, not a model result)."""
    markers: list[str] = field(default_factory=list)
    """Regexes of this emotion's words for the report's lexicon check; none may occur in a persona text."""

    def __post_init__(self) -> None:
        if self.intensity not in INTENSITIES:
            raise ValueError(f"variant.intensity={self.intensity!r}: choose one of {list(INTENSITIES)}")
        if self.persona and self.intensity not in self.persona:
            raise ValueError(
                f"variant {self.name!r} has no persona for intensity {self.intensity!r}; "
                f"choose one of {sorted(self.persona)}"
            )
        if self.onset_after_turns < 0:
            raise ValueError("variant.onset_after_turns must be >= 0")

    @property
    def is_control(self) -> bool:
        return not self.persona

    def persona_text(self) -> str:
        return self.persona.get(self.intensity, "")

    def active_at(self, user_turn: int) -> bool:
        """Whether the emotion shapes the user's `user_turn`-th message (0-based)."""
        return not self.is_control and user_turn >= self.onset_after_turns


AFFECT_WORDS = (
    "angry", "anxious", "annoyed", "calm", "confused", "disappointed", "emotional", "frustrated",
    "furious", "happy", "impatient", "irritated", "mad", "nervous", "optimistic", "patient",
    "pessimistic", "rude", "sad", "scared", "stressed", "unhappy", "upset", "worried",
)  # fmt: skip
_AFFECT_PATTERN = re.compile(r"\b(" + "|".join(AFFECT_WORDS) + r")\b", re.IGNORECASE)


def instruction_affect(instruction: str) -> list[str]:
    """The affect words a τ-bench instruction already uses to describe the user's demeanour."""
    return sorted({match.lower() for match in _AFFECT_PATTERN.findall(instruction)})
