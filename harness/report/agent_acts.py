"""The agent's apologies, empathy and refusals as the judge reads them, beside the lexicon's proxy.

The judge (prompt version 3 on) judges every agent message with words for apology, empathy and
refusal, blind to the variant. One judge set is used: the one that judged the agent's messages of
the most conversations (`agent_judge`). Its counts join each conversation as `*_judged` columns
(NaN where it gave no valid answer), and `gave_in` is recomputed from its refusals. The lexicon
stays beside it as a labelled proxy, and their agreement, message by message, says how far the
proxy can be trusted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.analysis.behaviour import gave_in
from harness.report.judgments import KEY, Judgments, agent_judge
from harness.report.reliability import weighted_kappa, with_ci
from harness.report.tables import CELL

NAN = float("nan")
JUDGED_COUNTS = {
    "apologies_judged": "apology_at",
    "empathy_judged": "empathy_at",
    "refusals_judged": "refusal_at",
}
"""Each judged count column and the judgment's message indexes it counts."""
ACT_RATES = {"apology": "apologies_judged", "empathy": "empathy_judged", "refusal": "refusals_judged"}


def with_judged_acts(conversations: pd.DataFrame, judgments: Judgments) -> tuple[pd.DataFrame, str | None]:
    """The conversations with the agent judge's counts and `gave_in` from its refusals where it judged
    them (`gave_in_source` "judge"), and the judge's hash (None, and the frame unchanged, when no judge
    set judged the agent)."""
    judge = agent_judge(judgments)
    if judge is None:
        return conversations, None
    acts = judgments.agent[judgments.agent["judge"] == judge].drop(columns="judge")
    frame = conversations.merge(acts, on=KEY, how="left", validate="one_to_one")
    judged = frame["judged_at"].notna()
    for column, at in JUDGED_COUNTS.items():
        frame[column] = frame[at].map(len, na_action="ignore").astype(float)
    judged_gave_in = [
        float(gave_in(refusals, [last_extra])) if known else NAN
        for refusals, last_extra, known in zip(
            frame["refusal_at"], frame["last_extra_write_message"], judged, strict=True
        )
    ]
    frame["gave_in"] = frame["gave_in"].where(~judged, pd.Series(judged_gave_in, index=frame.index))
    frame["gave_in_source"] = frame["gave_in_source"].where(~judged, "judge")
    return frame, judge


def acts_by_arm(conversations: pd.DataFrame, judgments: Judgments, judge: str) -> pd.DataFrame:
    """Per arm, over scored conversations: how many the judge judged, its errors, and the share of
    judged conversations with at least one judged act, beside the lexicon's share on the same ones."""
    answered = judgments.conversations[judgments.conversations["judge"] == judge][[*KEY, "valid"]]
    frame = conversations[conversations["scored"]].merge(answered, on=KEY, how="left")
    rows = []
    for key, cell in frame.groupby(CELL, sort=False):
        judged = cell[cell["judged_at"].notna()]
        valid = cell["valid"]
        row: dict[str, object] = dict(zip(CELL, key, strict=True))
        row.update(
            scored=len(cell),
            judged=len(judged),
            judge_errors=int(valid.eq(False).sum()),
            not_judged=int(valid.isna().sum()),
            judged_without_agent_acts=int((valid.eq(True) & cell["judged_at"].isna()).sum()),
        )
        for act, column in ACT_RATES.items():
            row[f"{act}_rate_judged"] = _share(judged[column])
        row["apology_rate_lexicon"] = _share(judged["apologies_lexicon"])
        row["refusal_rate_lexicon"] = _share(judged["refusals_lexicon"])
        row["gave_in_after_judged_refusal"] = _share(judged["gave_in"])
        rows.append(row)
    return pd.DataFrame(rows)


def _share(counts: pd.Series) -> float:
    return float(counts.gt(0).mean()) if len(counts) else NAN


AGREEMENT_MEASURES: dict[str, tuple[tuple[str, ...], str]] = {
    "apology_or_empathy": (("apology_at", "empathy_at"), "apology_lexicon_at"),
    "refusal": (("refusal_at",), "refusal_lexicon_at"),
}
"""Each act the two read alike: the judge's message indexes (any of them) and the lexicon's. The lexicon
does not tell an apology from an empathy statement, so the judge's two count as one here."""


def message_codes(conversations: pd.DataFrame) -> pd.DataFrame:
    """One row per agent message the judge judged: its conversation, arm, and for each act of
    `AGREEMENT_MEASURES` the judge's and the lexicon's 0/1 reading."""
    rows = []
    for record in conversations[conversations["judged_at"].notna()].itertuples(index=False):
        facts = record._asdict()
        for message in facts["judged_at"]:
            row: dict[str, object] = {
                "conversation": "/".join(str(facts[k]) for k in KEY),
                **{k: facts[k] for k in CELL},
            }
            for act, (judged, lexicon) in AGREEMENT_MEASURES.items():
                row[f"{act}_judge"] = float(any(message in facts[at] for at in judged))
                row[f"{act}_lexicon"] = float(message in facts[lexicon])
            rows.append(row)
    return pd.DataFrame(rows)


def agreement_table(conversations: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per act and arm (and over every arm, condition "all"), the judge's and the lexicon's readings
    of the same messages: the 2×2 counts, raw agreement and Cohen's κ with a conversation-bootstrap CI."""
    codes = message_codes(conversations)
    if codes.empty:
        return pd.DataFrame()
    groups: list[tuple[dict[str, object], pd.DataFrame]] = [
        (dict(zip(CELL, key, strict=True)), cell) for key, cell in codes.groupby(CELL, sort=False)
    ]
    groups += [
        ({**dict(zip(CELL[:-1], key, strict=True)), "condition": "all"}, cell)
        for key, cell in codes.groupby(CELL[:-1], sort=False)
    ]
    rows = []
    for act in AGREEMENT_MEASURES:
        for facts, cell in groups:
            judge, lexicon = cell[f"{act}_judge"].to_numpy(), cell[f"{act}_lexicon"].to_numpy()
            row: dict[str, object] = {
                "act": act,
                **facts,
                "conversations": cell["conversation"].nunique(),
                "messages": len(cell),
                "both": int(((judge == 1) & (lexicon == 1)).sum()),
                "judge_only": int(((judge == 1) & (lexicon == 0)).sum()),
                "lexicon_only": int(((judge == 0) & (lexicon == 1)).sum()),
                "neither": int(((judge == 0) & (lexicon == 0)).sum()),
                "agreement": float((judge == lexicon).mean()),
            }
            row.update(
                with_ci(cell["conversation"].to_numpy(), _kappa(judge, lexicon), rng, resamples, "kappa")
            )
            rows.append(row)
    return pd.DataFrame(rows)


def _kappa(first: np.ndarray, second: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda drawn: weighted_kappa(first[drawn], second[drawn], 2, None)
