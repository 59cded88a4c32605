"""The `study:` block: the estimand a sweep declares before it runs, recorded in every job's job.json.

The report answers the declared question first (the primary contrast on the primary outcome, at the
declared scope, Holm-corrected over the declared family at `alpha`) and labels every other table
exploratory. A sweep without the block gets `Study.default()` and the report says it was not declared.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONTRASTS = {
    "emotion − neutral": "primary",
    "emotion − control": "vs_control",
    "neutral − control": "framing",
}
"""The report's contrast names, and the design kind each is (`harness.report.design.KINDS`)."""


class Study(BaseModel):
    """A declared estimand: which contrast, of which outcome, where, over which arms, at which α."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declared: bool = True
    """False only for the default a sweep without a `study:` block gets; never set in a config."""
    primary_contrast: str = "emotion − neutral"
    """One of `CONTRASTS`' keys (an ASCII `-` is accepted for `−`)."""
    outcome: Literal["success"] = "success"
    """The primary outcome: the conversation's reward was 1 (scored conversations)."""
    scope: Literal["per_env", "pooled"] = "per_env"
    """per_env: one primary test per (model, env, split); pooled: one per model, over its envs."""
    family: tuple[str, ...] | None = None
    """The arms (variant names) whose primary contrasts form the Holm family; null: every emotion of the sweep."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    note: str | None = None
    """Free text: the hypothesis, where it was registered."""

    @field_validator("primary_contrast", mode="before")
    @classmethod
    def _known_contrast(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name = " ".join(value.replace(" - ", " − ").split())
        if name not in CONTRASTS:
            raise ValueError(f"study.primary_contrast is {value!r}; choose one of {list(CONTRASTS)}")
        return name

    @field_validator("family")
    @classmethod
    def _family_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError(
                "study.family is empty; list the arms (variant names) or use null for every emotion"
            )
        return value

    @property
    def kind(self) -> str:
        """The design kind of the primary contrast: primary, vs_control or framing."""
        return CONTRASTS[self.primary_contrast]

    @classmethod
    def default(cls) -> Study:
        """What a sweep without a declaration is analysed under: today's default (emotion − neutral, per env)."""
        return cls.model_validate({"declared": False})

    def in_family(self, variant: str) -> bool:
        """Whether a contrast whose arm under study is `variant` belongs to the primary Holm family."""
        return self.family is None or variant in self.family

    def describe(self) -> str:
        arms = "every emotion of the sweep" if self.family is None else ", ".join(self.family)
        scope = "per (model, env, split)" if self.scope == "per_env" else "pooled over envs, per model"
        return f"{self.primary_contrast} on {self.outcome}, {scope}; Holm family: {arms}; α = {self.alpha:g}"


def study_from(config: dict[str, Any] | None) -> Study:
    """The validated `study:` block of a composed config, `Study.default()` when there is none."""
    if not config:
        return Study.default()
    return Study.model_validate({**config, "declared": True})
