"""Which arms a sweep compares, and whether the jobs behind two arms may be compared at all.

Arms are read from the data, each with its variant's kind (`variant_kind`): `control` is τ-bench's
own user prompt, the `baseline` (neutral) the framing block with a calm persona, then the
`emotion`s, the `cognitive` variants (confusion: they change what the user does by design) and the
style `placebo` (verbose_formal). Each emotion is compared with neutral (its own effect, the
primary contrast), with the placebo (secondary) and with control; a cognitive variant and the
placebo with neutral, each in a family of its own; neutral with control (the framing's effect).
Only arms of one persona set (`persona_set`) are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.episode.variants import INTENSITIES, variant_kinds

CONTROL = "control"
NEUTRAL = "neutral"
FAMILY = ["model", "env", "split"]
PAIR = ["run_seed", "task_id", "trial"]
KNOWN_ORDER = [CONTROL, NEUTRAL, "frustration", "anxiety", "anger", "confusion", "verbose_formal"]

PRIMARY, VS_PLACEBO, COGNITIVE, STYLE, FRAMING, VS_CONTROL = (
    "primary", "vs_placebo", "cognitive", "style", "framing", "vs_control"
)  # fmt: skip
KINDS = {
    PRIMARY: "emotion − neutral: the emotion's own effect",
    VS_PLACEBO: "emotion − placebo: the emotion beyond a matched non-emotional style (secondary, exploratory)",
    COGNITIVE: "cognitive − neutral: a cognitive variant's effect (it changes behaviour by design)",
    STYLE: "placebo − neutral: the style placebo's own effect",
    FRAMING: "neutral − control: the framing block's effect",
    VS_CONTROL: "emotion − control: emotion and framing together",
}
ARM_KINDS = ("control", "baseline", "emotion", "cognitive", "placebo")
"""`variant_kind` of an arm (conf/variant/*.yaml `kind`)."""


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


def arm_facts(family: pd.DataFrame, column: str, default: str) -> dict[str, str]:
    """Each condition's value of a per-job column (`variant_kind`, `persona_set`)."""
    if column not in family.columns:
        return dict.fromkeys(family["condition"].unique(), default)
    first = family.drop_duplicates("condition").set_index("condition")[column]
    return {str(c): str(v) if pd.notna(v) else default for c, v in first.items()}


def _matching(
    condition: str,
    intensity: Any,
    baselines: list[str],
    settings: dict[str, tuple[str, Any]],
    sets: dict[str, str] | None = None,
) -> str:
    """The baseline arm of the same persona set run at the same intensity, else the only one, else medium, else the first."""
    if sets is not None:
        baselines = [b for b in baselines if sets[b] == sets[condition]] or baselines
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
        kinds, sets = arm_kinds(family), arm_facts(family, "persona_set", "v1")
        controls = [c for c in settings if kinds[c] == "control"]
        neutrals = [c for c in settings if kinds[c] == "baseline"]
        emotions = [c for c in settings if kinds[c] == "emotion"]
        placebos = [c for c in settings if kinds[c] == "placebo"]
        cognitive = [c for c in settings if kinds[c] == "cognitive"]
        for condition in emotions + cognitive:
            intensity = settings[condition][1]
            kind = PRIMARY if condition in emotions else COGNITIVE
            if neutrals:
                baseline = _matching(condition, intensity, neutrals, settings, sets)
                contrasts.append(Contrast(kind, model, env, split, condition, baseline))
            if placebos and condition in emotions:
                placebo = _matching(condition, intensity, placebos, settings, sets)
                contrasts.append(Contrast(VS_PLACEBO, model, env, split, condition, placebo))
            if controls:
                contrasts.append(Contrast(VS_CONTROL, model, env, split, condition, controls[0]))
        for placebo in placebos:
            if neutrals:
                baseline = _matching(placebo, settings[placebo][1], neutrals, settings, sets)
                contrasts.append(Contrast(STYLE, model, env, split, placebo, baseline))
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


def arm_kinds(family: pd.DataFrame) -> dict[str, str]:
    """Each condition's variant kind; records without one take it from the variant's name."""
    kinds = arm_facts(family, "variant_kind", "")
    names = family.drop_duplicates("condition").set_index("condition")["variant"]
    return {c: kind or kind_by_name(str(names[c])) for c, kind in kinds.items()}


def kind_by_name(variant: str) -> str:
    """The kind of a variant recorded before kinds existed: control, neutral, else its file's, else an emotion."""
    if variant == CONTROL:
        return "control"
    if variant == NEUTRAL:
        return "baseline"
    return variant_kinds().get(variant, "emotion")


def persona_set_refusal(contrast: Contrast, family: pd.DataFrame) -> str:
    """Why two arms of different persona sets are not compared ("" when they share one)."""
    sets = arm_facts(family, "persona_set", "v1")
    ours, theirs = sets.get(contrast.condition), sets.get(contrast.baseline)
    if ours == theirs:
        return ""
    return (
        f"refused: the arms come from different persona sets ({contrast.condition}: {ours}, "
        f"{contrast.baseline}: {theirs}); compare arms of one set"
    )


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
    """Why the two arms' jobs may not be compared ("" when they may): every setting but the variant must match,
    and both arms must come from one persona set."""
    mixed = persona_set_refusal(contrast, family)
    if mixed:
        return mixed
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
