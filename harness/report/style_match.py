"""Whether the style placebo matches the emotions' length: user words per turn, placebo against the emotions' mean.

The placebo is meant to be as long as the emotional users' turns, so that emotion − placebo is not
"a longer user". Only active turns count where the variant has an onset; the tolerance is ±15 %.
"""

from __future__ import annotations

import pandas as pd

from harness.report.design import FAMILY, arm_kinds

TOLERANCE = 0.15
"""The placebo's words per turn may differ from the emotions' mean by this share at most."""


def style_match(conversations: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, env, split) with a placebo and an emotion: words per user turn and their ratio."""
    rows = []
    for key, family in conversations.groupby(FAMILY):
        kinds = arm_kinds(family)
        words = family.groupby("condition")["user_words_per_turn"].mean()
        emotions = [c for c, kind in kinds.items() if kind == "emotion"]
        for placebo in (c for c, kind in kinds.items() if kind == "placebo"):
            if not emotions:
                continue
            emotion_mean = float(words[emotions].mean())
            ratio = float(words[placebo]) / emotion_mean if emotion_mean else float("nan")
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "placebo": placebo,
                    "placebo_words_per_turn": round(float(words[placebo]), 2),
                    "emotions_words_per_turn": round(emotion_mean, 2),
                    "emotions": len(emotions),
                    "ratio": round(ratio, 3),
                    "matched": bool(abs(ratio - 1) <= TOLERANCE),
                }
            )
    return pd.DataFrame(rows)
