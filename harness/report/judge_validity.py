"""Whether the manipulation check can fail, and did: prompted against judged emotion, judged intensity
against prompted intensity, judge errors per arm, and agreement between judges of different families.

Each arm's prompted label is its variant when the judge's taxonomy has it (anger, frustration,
anxiety, confusion), `none` for an arm that prompts no emotion (neutral, a style placebo) and unknown
for `control` (τ-bench's own user, whose instructions carry their own moods): control is a row of the
confusion matrix but counts in no recall or precision. Only active turns (from the onset on) count.
Intervals resample conversations (`harness.report.reliability`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import permutation_test, spearmanr

from harness.episode.variants import INTENSITIES
from harness.judge.schema import EMOTIONS, NO_EMOTION
from harness.report.design import CONTROL, FAMILY, NEUTRAL, arms
from harness.report.dose import doses
from harness.report.judgments import KEY, Judgments
from harness.report.reliability import (
    alpha_with_ci,
    f1_scores,
    ratio_of_sums,
    weighted_kappa,
    with_ci,
)
from harness.report.stats import MIN_TASKS_TEST, NAN

CONVERSATION = ["job", "task_id", "trial"]
INTENSITY_LEVELS = 4
"""The judge's intensity scale, 0..3."""


def prompted_label(variant: str) -> str | None:
    """The emotion an arm prompts: its variant if the taxonomy has it, `none` for a calm arm, None for control."""
    if variant == CONTROL:
        return None
    return variant if variant in EMOTIONS else NO_EMOTION


def active(turns: pd.DataFrame) -> pd.DataFrame:
    """The judged turns from their conversation's onset on, with the arm's prompted label."""
    kept = turns[turns["turn"] >= turns["onset_after_turns"]].copy()
    kept["prompted"] = kept["variant"].map(prompted_label)
    return kept


def confusion_table(turns: pd.DataFrame) -> pd.DataFrame:
    """Per (model, env, split) and condition: its prompted label and the count of active turns per judged label."""
    if turns.empty:
        return pd.DataFrame()
    counts = pd.crosstab([turns[c] for c in [*FAMILY, "condition"]], turns["emotion"])
    counts = counts.reindex(columns=list(EMOTIONS), fill_value=0)
    counts.columns.name = None
    prompted = turns.groupby([*FAMILY, "condition"])["prompted"].first().fillna("unknown (control)")
    counts.insert(0, "active_turns", counts.sum(axis=1))
    counts.insert(0, "prompted", prompted)
    return counts.reset_index()


def recall_precision_table(turns: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per prompted label: recall (its turns judged as it) and precision (turns judged as it that it prompted).

    Over the arms with a known prompted label; CIs resample conversations.
    """
    known = turns[turns["prompted"].notna()]
    rows = []
    for key, family in known.groupby(FAMILY):
        conversation = family[CONVERSATION].astype(str).agg("/".join, axis=1).to_numpy()
        prompted, judged = family["prompted"].to_numpy(), family["emotion"].to_numpy()
        for label in sorted(set(prompted), key=list(EMOTIONS).index):
            hit = ((prompted == label) & (judged == label)).astype(float)
            _, _, f1 = f1_scores(prompted, judged, label)
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "prompted": label,
                    "turns": int((prompted == label).sum()),
                    "judged_as_it": int((judged == label).sum()),
                    **with_ci(conversation, ratio_of_sums(hit, (prompted == label).astype(float)), rng,
                              resamples, "recall"),
                    **with_ci(conversation, ratio_of_sums(hit, (judged == label).astype(float)), rng,
                              resamples, "precision"),
                    "f1": f1,
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def intensity_trend_table(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int, permutations: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean judged intensity per prompted dose, one Spearman trend row per emotion), from one row per
    judged conversation with its `judged_intensity` (the mean over its active turns).

    The unit is the conversation (its mean judged intensity over active turns); ρ's CI resamples
    conversations, its p permutes the doses among conversations (scipy's `permutation_test`).
    """
    points, trends = [], []
    for key, family in conversations.groupby(FAMILY):
        for emotion in sorted({v for v, _ in arms(family).values()} - {CONTROL, NEUTRAL}):
            mapping = doses(family, emotion)
            data = family[family["condition"].isin(list(mapping))]
            dose = data["condition"].map(mapping).to_numpy(float)
            judged = data["judged_intensity"].to_numpy(float)
            for level in sorted(set(dose)):
                at = judged[dose == level]
                low, high = _mean_ci(at, rng, resamples)
                points.append(
                    {**dict(zip(FAMILY, key, strict=True)), "emotion": emotion, "dose": int(level),
                     "arm": NEUTRAL if level == 0 else INTENSITIES[int(level) - 1], "conversations": len(at),
                     "mean_judged_intensity": float(at.mean()), "ci_low": low, "ci_high": high}
                )  # fmt: skip
            trends.append(
                {**dict(zip(FAMILY, key, strict=True)), "emotion": emotion,
                 **_spearman(dose, judged, rng, resamples, permutations)}
            )  # fmt: skip
    return pd.DataFrame(points), pd.DataFrame(trends)


def _mean_ci(values: np.ndarray, rng: np.random.Generator, resamples: int) -> tuple[float, float]:
    if values.size < 2:
        return NAN, NAN
    means = rng.choice(values, (resamples, values.size)).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _rho(dose: np.ndarray, judged: np.ndarray) -> float:
    if len(set(dose)) < 2 or len(set(judged)) < 2:
        return NAN
    return float(spearmanr(dose, judged).statistic)


def _spearman(
    dose: np.ndarray, judged: np.ndarray, rng: np.random.Generator, resamples: int, permutations: int
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "doses": ",".join(str(int(d)) for d in sorted(set(dose))),
        "conversations": int(dose.size),
        "spearman_rho": NAN, "ci_low": NAN, "ci_high": NAN, "p_value": NAN, "note": "",
    }  # fmt: skip
    if len(set(dose)) < 3:
        row["note"] = "fewer than three doses: sweep variant.intensity=low,medium,high with neutral"
        return row
    if len(set(judged)) < 2:
        row["note"] = "every conversation has the same judged intensity: no trend can be seen"
        return row
    row["spearman_rho"] = _rho(dose, judged)
    draws = [rng.integers(0, dose.size, dose.size) for _ in range(resamples)]
    rhos = np.array([_rho(dose[d], judged[d]) for d in draws])
    rhos = rhos[np.isfinite(rhos)]
    if rhos.size >= resamples / 2:
        row["ci_low"], row["ci_high"] = float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))
    if dose.size < MIN_TASKS_TEST:
        row["note"] = f"{dose.size} conversations: too few for a trend test"
        return row
    test = permutation_test(
        (dose, judged), lambda x, y: spearmanr(x, y).statistic, permutation_type="pairings",
        n_resamples=permutations, alternative="two-sided", random_state=rng,
    )  # fmt: skip
    row["p_value"] = float(test.pvalue)
    return row


def judge_error_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per arm: conversations sent to the judge, judge errors by kind and their rate with a Wilson interval."""
    from statsmodels.stats.proportion import proportion_confint

    rows = []
    kinds = sorted({k for k in judged["error_kind"].dropna()})
    for key, cell in judged.groupby([*FAMILY, "condition"]):
        errors = int((~cell["valid"]).sum())
        low, high = proportion_confint(errors, len(cell), method="wilson")
        rows.append(
            {**dict(zip([*FAMILY, "condition"], key, strict=True)), "conversations": len(cell),
             "judge_errors": errors, "error_rate": errors / len(cell), "ci_low": float(low),
             "ci_high": float(high), **{k: int((cell["error_kind"] == k).sum()) for k in kinds}}
        )  # fmt: skip
    return pd.DataFrame(rows)


def agreement_table(judgments: Judgments, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Every pair of judge sets: α and κ on the turns and conversations both judged, CIs by conversation.

    `kind` says whether the two judges are of different model families (agreement) or of one family
    (test–retest: two seeds or two sizes of one model share its biases, which agreement must not).
    """
    sets = judgments.sets.sort_values(["conversations", "judge"], ascending=[False, True])
    rows = []
    judges = list(sets["judge"])
    family = dict(zip(sets["judge"], sets["judge_family"], strict=True))
    for i, first in enumerate(judges):
        for second in judges[i + 1 :]:
            rows.append(
                {
                    "judge": first,
                    "other_judge": second,
                    "families": f"{family[first]} / {family[second]}",
                    "kind": "agreement" if family[first] != family[second] else "test-retest (same family)",
                    **_pair_agreement(judgments, first, second, rng, resamples),
                }
            )
    return pd.DataFrame(rows)


def _pair_agreement(
    judgments: Judgments, first: str, second: str, rng: np.random.Generator, resamples: int
) -> dict[str, Any]:
    turns = judgments.turns
    both = turns[turns["judge"] == first].merge(
        turns[turns["judge"] == second], on=[*KEY, "turn"], suffixes=("_a", "_b")
    )
    conversations = judgments.conversations
    valid = conversations[conversations["valid"]]
    both_conversations = valid[valid["judge"] == first].merge(
        valid[valid["judge"] == second], on=KEY, suffixes=("_a", "_b")
    )
    row: dict[str, Any] = {"turns_in_both": len(both), "conversations_in_both": len(both_conversations)}
    if len(both):
        cluster = both[KEY].astype(str).agg("/".join, axis=1).to_numpy()
        emotion = _pair_codes(both, "emotion", list(EMOTIONS))
        intensity = _pair_codes(both, "intensity", list(range(INTENSITY_LEVELS)))
        row["emotion_agreement"] = float((both["emotion_a"] == both["emotion_b"]).mean())
        row.update(alpha_with_ci(emotion, cluster, "nominal", len(EMOTIONS), rng, resamples, "emotion_alpha"))
        row.update(with_ci(cluster, lambda i: weighted_kappa(emotion[0, i], emotion[1, i], len(EMOTIONS), None),
                           rng, resamples, "emotion_kappa"))  # fmt: skip
        row.update(
            alpha_with_ci(intensity, cluster, "ordinal", INTENSITY_LEVELS, rng, resamples, "intensity_alpha")
        )
        row.update(with_ci(cluster, lambda i: weighted_kappa(intensity[0, i], intensity[1, i], INTENSITY_LEVELS),
                           rng, resamples, "intensity_weighted_kappa"))  # fmt: skip
    if len(both_conversations):
        cluster = both_conversations[KEY].astype(str).agg("/".join, axis=1).to_numpy()
        flags = both_conversations[["flag_any_a", "flag_any_b"]].to_numpy(float).T
        row.update(alpha_with_ci(flags, cluster, "nominal", 2, rng, resamples, "any_flag_alpha"))
    return row


def _pair_codes(both: pd.DataFrame, column: str, categories: list[Any]) -> np.ndarray:
    index = {c: float(i) for i, c in enumerate(categories)}
    return np.vstack(
        [both[f"{column}_{side}"].map(lambda v: index.get(v, np.nan)).to_numpy(float) for side in "ab"]
    )
