"""Sentiment of the simulated user: VADER's general sentiment of its messages on active turns.

Active turns are those from the conversation's `onset_after_turns` on (before the onset the user
speaks without its persona); the compound score's mean has a 95 % bootstrap CI over tasks.

VADER only knows negative and positive, so it cannot tell the emotions apart; the per-emotion
checks are the lexicon check (each variant's own `markers:`, `harness.report.lexicon`) and, where
it has run, the judge (`harness.judge`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.stats import MIN_TASKS_CI, NAN, percentile_ci, task_bootstrap
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


def manipulation_check(
    scored_turns: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000
) -> pd.DataFrame:
    """Mean score per (model, env, split, condition) over the turns given (the active ones), with the
    number of user messages scored and a task-bootstrap CI of the compound score."""
    if scored_turns.empty:
        return pd.DataFrame()
    keys = ["model", "env", "split", "condition"]
    means = scored_turns.groupby(keys)[SCORES].mean()
    means.insert(0, "user_messages", scored_turns.groupby(keys).size())
    bounds = {}
    for key, cell in scored_turns.groupby(keys):
        tasks = cell["task_id"].to_numpy()
        bounds[key] = (
            percentile_ci(task_bootstrap(tasks, cell["vader_compound"].to_numpy(float), rng, resamples))
            if len(set(tasks)) >= MIN_TASKS_CI
            else (NAN, NAN)
        )
    means.insert(2, "compound_ci_low", [bounds[k][0] for k in means.index])
    means.insert(3, "compound_ci_high", [bounds[k][1] for k in means.index])
    return ordered(means.reset_index())
