"""Sentiment of the simulated user: VADER's general sentiment of every user message.

VADER only knows negative and positive, so it cannot tell the emotions apart; the per-emotion
checks are the lexicon check (each variant's own `markers:`, `harness.report.lexicon`) and, where
it has run, the judge (`harness.judge`).
"""

from __future__ import annotations

import pandas as pd

from harness.report.tables import ordered

SCORES = ["vader_compound", "vader_negative", "vader_positive"]
"""Per message: VADER compound (-1..1) and its negative and positive shares."""


def score_user_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """The turn table with one column per score in `SCORES`."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    if turns.empty:
        return turns.assign(**{score: pd.Series(dtype=float) for score in SCORES})
    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for text in turns["text"]:
        vader = analyzer.polarity_scores(text)
        rows.append(
            {
                "vader_compound": vader["compound"],
                "vader_negative": vader["neg"],
                "vader_positive": vader["pos"],
            }
        )
    return pd.concat([turns.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def manipulation_check(scored_turns: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (model, env, split, condition), with the number of user messages scored."""
    if scored_turns.empty:
        return pd.DataFrame()
    keys = ["model", "env", "split", "condition"]
    means = scored_turns.groupby(keys)[SCORES].mean()
    means.insert(0, "user_messages", scored_turns.groupby(keys).size())
    return ordered(means.reset_index())
