"""Manipulation check: does the simulated user sound like its variant?

Every user message is scored with VADER (general sentiment) and with a small marker lexicon
for the four emotions the variants ask for. The marker lexicon is our own: NRCLex needs
TextBlob's NLTK corpora, downloaded at run time, and its expanded lexicon tags everyday
service words ("fix", "want", "service") with every emotion, which would swamp a support chat.
"""

from __future__ import annotations

import re

import pandas as pd

from harness.report.tables import ordered

MARKERS: dict[str, tuple[str, ...]] = {
    "frustration": (
        r"frustrat\w*",
        r"annoy\w*",
        r"again",
        r"already",
        r"still",
        r"ridiculous",
        r"waste\w*",
        r"(?:how|so) many times",
        r"keep(?:s)? (?:asking|telling)",
        r"fed up",
        r"tired of",
        r"seriously",
        r"come on",
        r"enough",
        r"hassle",
        r"ugh+",
        r"sigh",
    ),
    "anxiety": (
        r"anxious\w*",
        r"worr\w*",
        r"nervous\w*",
        r"scared",
        r"afraid",
        r"panic\w*",
        r"stress\w*",
        r"concern\w*",
        r"what if",
        r"please make sure",
        r"sure (?:that|it)",
        r"urgent\w*",
        r"uneasy",
        r"freak\w* out",
        r"overwhelm\w*",
    ),
    "anger": (
        r"angr\w*",
        r"furious\w*",
        r"outrag\w*",
        r"unacceptable",
        r"absurd",
        r"terrible",
        r"awful",
        r"incompeten\w*",
        r"complain\w*",
        r"demand\w*",
        r"immediately",
        r"right now",
        r"fix (?:this|it) now",
        r"(?:take|taking) my business",
        r"never again",
        r"disgrace\w*",
        r"pathetic",
        r"useless",
        r"mad",
    ),
    "confusion": (
        r"confus\w*",
        r"understand",
        r"unclear",
        r"what do you mean",
        r"not sure",
        r"i'?m lost",
        r"lost",
        r"huh",
        r"which one",
        r"wait",
        r"sorry,? what",
        r"explain",
        r"does that mean",
        r"i think",
        r"maybe",
        r"don'?t know",
        r"mixed up",
    ),
}
_PATTERNS = {
    emotion: re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)
    for emotion, words in MARKERS.items()
}
_WORD = re.compile(r"[A-Za-z']+")

SCORES = ["vader_compound", "vader_negative", "vader_positive", *[f"{e}_markers" for e in MARKERS]]
"""Per message: VADER compound (-1..1) and shares; markers per 100 words for each emotion."""


def marker_rates(text: str) -> dict[str, float]:
    words = max(len(_WORD.findall(text)), 1)
    return {f"{emotion}_markers": 100 * len(p.findall(text)) / words for emotion, p in _PATTERNS.items()}


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
                **marker_rates(text),
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
