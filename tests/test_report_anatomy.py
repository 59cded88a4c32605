"""Mediation and heterogeneity on constructed conversation tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis.anatomy import CATEGORIES
from harness.report.contrasts import Comparisons, Options
from harness.report.design import PRIMARY, Contrast
from harness.report.heterogeneity import heterogeneity_tables
from harness.report.mediation import mediation_table

CONTRAST = Contrast(PRIMARY, "m", "retail", "test", "anger", "neutral")


def conversations(
    arm_fails: dict[int, list[int]], tasks: int = 20, trials: int = 3, mechanism: str = "concession"
) -> pd.DataFrame:
    """Neutral always succeeds; anger fails the listed trials of a task, each failure with `mechanism`."""
    rows = []
    for task in range(tasks):
        for trial in range(trials):
            for condition in ("neutral", "anger"):
                failed = condition == "anger" and trial in arm_fails.get(task, [])
                rows.append(
                    {
                        "model": "m", "env": "retail", "split": "test", "condition": condition, "run_seed": 0,
                        "task_id": task, "trial": trial, "scored": True, "success": 0.0 if failed else 1.0,
                        "job": f"m/retail-test/{condition}/seed0",
                        **{f"fault_{c}": float(failed and c == mechanism) for c in CATEGORIES},
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_mediation_gives_the_whole_drop_to_the_mechanism_that_causes_it() -> None:
    frame = conversations({t: [0, 1] for t in range(0, 20, 2)})
    frame.loc[(frame["condition"] == "anger") & (frame["trial"] == 2), "fault_unconfirmed_write"] = (
        1.0  # harmless
    )
    compared = Comparisons(frame, [CONTRAST], np.random.default_rng(0), Options(resamples=300))
    table = mediation_table(compared).set_index("mechanism")
    assert table.loc["concession", "total"] == pytest.approx(-1 / 3)
    assert table.loc["concession", "share"] == pytest.approx(1.0)
    assert table.loc["concession", "ci_high"] < 0 and table.loc["concession", "share_ci_low"] > 0.9
    assert table.loc["unconfirmed_write", "share"] == pytest.approx(0.0)
    assert table.loc["direct (none of the above)", "indirect"] == pytest.approx(0.0)
    assert table.loc["concession", "bias_to_zero"] == pytest.approx(1.0)
    assert table.loc["concession", "share_if_bias_0.1"] == pytest.approx(0.9)


def test_a_drop_no_mechanism_explains_is_direct() -> None:
    frame = conversations({t: [0] for t in range(10)}, mechanism="none")
    table = mediation_table(Comparisons(frame, [CONTRAST], np.random.default_rng(0), Options(resamples=200)))
    assert list(table["mechanism"]) == ["direct (none of the above)"]
    assert table.iloc[0]["share"] == pytest.approx(1.0)


def test_heterogeneity_is_found_where_some_tasks_are_hurt_and_not_where_all_are_alike() -> None:
    rng = np.random.default_rng(1)
    uneven, worst = heterogeneity_tables(
        Comparisons(conversations({t: [0, 1, 2] for t in range(5)}), [CONTRAST], rng)
    )
    row = uneven.iloc[0]
    assert row["tasks_hurt"] == 5 and row["heterogeneity_p"] < 0.01
    assert row["loo_same_sign"] and row["loo_min"] == pytest.approx(-5 / 19)
    assert list(worst["task_id"]) == [0, 1, 2] and worst["side_by_side"].str.contains("#/s/").all()
    even, _ = heterogeneity_tables(
        Comparisons(conversations({t: [t % 3] for t in range(20)}), [CONTRAST], rng)
    )
    assert even.iloc[0]["heterogeneity_p"] > 0.5
    one_trial, _ = heterogeneity_tables(Comparisons(conversations({0: [0]}, trials=1), [CONTRAST], rng))
    assert np.isnan(one_trial.iloc[0]["heterogeneity_p"]) and "one pair per task" in one_trial.iloc[0]["note"]
