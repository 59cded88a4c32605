"""Which arms a sweep compares, and whether the jobs behind two arms may be compared at all.

Arms are read from the data: `control` is τ-bench's own user prompt, `neutral` the framing block
with a calm persona, every other variant an emotion. Each emotion is compared with neutral (its
own effect, the primary contrast) and with control; neutral with control (the framing's effect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.episode.variants import INTENSITIES

CONTROL = "control"
NEUTRAL = "neutral"
FAMILY = ["model", "env", "split"]
PAIR = ["run_seed", "task_id", "trial"]
KNOWN_ORDER = [CONTROL, NEUTRAL, "frustration", "anxiety", "anger", "confusion"]

PRIMARY, FRAMING, VS_CONTROL = "primary", "framing", "vs_control"
KINDS = {
    PRIMARY: "emotion − neutral: the emotion's own effect",
    FRAMING: "neutral − control: the framing block's effect",
    VS_CONTROL: "emotion − control: emotion and framing together",
}


@dataclass(frozen=True)
class Contrast:
    kind: str
    model: str
    env: str
    split: str
    condition: str
    """The arm under study."""
    baseline: str
    """The arm it is compared with."""

    @property
    def family(self) -> tuple[str, str, str]:
        return (self.model, self.env, self.split)

    @property
    def label(self) -> str:
        return f"{self.condition} − {self.baseline}"

    def key(self) -> dict[str, str]:
        return {
            "model": self.model,
            "env": self.env,
            "split": self.split,
            "contrast": self.label,
            "kind": self.kind,
            "condition": self.condition,
            "baseline": self.baseline,
        }


def condition_order(conditions: list[str]) -> list[str]:
    """control, neutral, then the emotions (known ones first), each from low to high intensity."""

    def key(condition: str) -> tuple[int, str, int, str]:
        base, _, setting = condition.partition("@")
        rank = KNOWN_ORDER.index(base) if base in KNOWN_ORDER else len(KNOWN_ORDER)
        level = setting.split(",")[0]
        step = INTENSITIES.index(level) if level in INTENSITIES else -1
        return (rank, base, step, condition)

    return sorted(set(conditions), key=key)


def arms(family: pd.DataFrame) -> dict[str, tuple[str, Any]]:
    """Each condition of a (model, env, split): its variant and intensity."""
    first = family.drop_duplicates("condition").set_index("condition")
    return {
        c: (str(first.loc[c, "variant"]), first.loc[c, "intensity"])
        for c in condition_order(list(first.index))
    }


def _matching(
    condition: str, intensity: Any, baselines: list[str], settings: dict[str, tuple[str, Any]]
) -> str:
    """The baseline arm run at the same intensity, else the only one, else medium, else the first."""
    same = [b for b in baselines if settings[b][1] == intensity]
    if same:
        return same[0]
    medium = [b for b in baselines if settings[b][1] == "medium"]
    return (medium or baselines)[0]


def plan(conversations: pd.DataFrame) -> tuple[list[Contrast], list[str]]:
    """Every contrast the sweep supports, and one line per contrast it cannot make (missing arm)."""
    contrasts: list[Contrast] = []
    missing: list[str] = []
    for key, family in conversations.groupby(FAMILY):
        model, env, split = map(str, key)
        label = "/".join((model, env, split))
        settings = arms(family)
        controls = [c for c, (v, _) in settings.items() if v == CONTROL]
        neutrals = [c for c, (v, _) in settings.items() if v == NEUTRAL]
        emotions = [c for c, (v, _) in settings.items() if v not in (CONTROL, NEUTRAL)]
        for condition in emotions:
            intensity = settings[condition][1]
            if neutrals:
                baseline = _matching(condition, intensity, neutrals, settings)
                contrasts.append(Contrast(PRIMARY, model, env, split, condition, baseline))
            if controls:
                contrasts.append(Contrast(VS_CONTROL, model, env, split, condition, controls[0]))
        if controls:
            contrasts.extend(Contrast(FRAMING, model, env, split, n, controls[0]) for n in neutrals)
        if emotions and not neutrals:
            missing.append(
                f"{label}: no neutral arm, so the emotions' own effect (emotion − neutral) is missing"
                + ("; emotion − control mixes emotion and framing" if controls else "")
            )
        if neutrals and not controls:
            missing.append(f"{label}: no control arm, so the framing's effect (neutral − control) is missing")
        if emotions and not neutrals and not controls:
            missing.append(
                f"{label}: no baseline arm (neutral or control): nothing to compare the emotions with"
            )
    rank = list(KINDS)
    return sorted(contrasts, key=lambda c: rank.index(c.kind)), missing


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def differing_keys(a: dict[str, Any], b: dict[str, Any], studied: tuple[str, ...]) -> list[str]:
    """Dotted settings that differ between two jobs, outside the studied ones (and what they contain)."""
    flat_a, flat_b = flatten(a), flatten(b)

    def studied_key(key: str) -> bool:
        return any(key == s or key.startswith(f"{s}.") for s in studied)

    return sorted(
        key
        for key in flat_a.keys() | flat_b.keys()
        if not studied_key(key) and flat_a.get(key) != flat_b.get(key)
    )


def refusal(
    contrast: Contrast,
    family: pd.DataFrame,
    settings: dict[str, dict[str, Any]],
    allowed: tuple[str, ...] = (),
) -> str:
    """Why the two arms' jobs may not be compared ("" when they may): every setting but the variant must match."""
    differing: set[str] = set()
    for _seed, rows in family[family["condition"].isin([contrast.condition, contrast.baseline])].groupby(
        "run_seed"
    ):
        jobs = rows.groupby("condition")["job"].unique()
        if len(jobs) < 2:
            continue
        for job in jobs[contrast.condition]:
            for base in jobs[contrast.baseline]:
                differing.update(
                    differing_keys(settings.get(job, {}), settings.get(base, {}), ("variant", *allowed))
                )
    if not differing:
        return ""
    shown = sorted(differing)
    more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
    return f"refused: the jobs differ in {', '.join(shown[:8])}{more} (only the variant may differ)"


def model_refusals(
    conversations: pd.DataFrame, settings: dict[str, dict[str, Any]], allowed: tuple[str, ...] = ()
) -> list[str]:
    """One line per pair of agent models whose jobs differ in more than the agent (e.g. the simulated user)."""
    lines: list[str] = []
    models = sorted(conversations["model"].unique())
    if len(models) < 2:
        return lines
    first_job = conversations.groupby(["model", "env", "split", "condition", "run_seed"])["job"].first()
    studied = ("model", "backend", "agent", *allowed)
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            differing: set[str] = set()
            for (model, env, split, condition, seed), job in first_job.items():
                if model != a or (b, env, split, condition, seed) not in first_job.index:
                    continue
                other = first_job[(b, env, split, condition, seed)]
                differing.update(differing_keys(settings.get(job, {}), settings.get(other, {}), studied))
            if differing:
                lines.append(
                    f"models {a} and {b} are not comparable: their jobs differ in {', '.join(sorted(differing)[:8])}"
                    " (only the agent may differ); their results are reported side by side, never against each other"
                )
    return lines
