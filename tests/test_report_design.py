"""Which contrasts the report plans from the arms present, and what it says about the missing ones."""

from __future__ import annotations

import pandas as pd

from harness.report.contrasts import without_noop
from harness.report.design import condition_order, differing_keys, plan


def _conversations(
    arms: list[tuple[str, str, str | None]], noop: list[bool | None] | None = None
) -> pd.DataFrame:
    rows = [
        {
            "model": "m",
            "env": "retail",
            "split": "test",
            "condition": condition,
            "variant": variant,
            "intensity": intensity,
            "task_id": task,
            "noop_task": None if noop is None else noop[task],
        }
        for condition, variant, intensity in arms
        for task in range(3)
    ]
    return pd.DataFrame(rows)


def test_each_emotion_is_paired_with_the_neutral_arm_of_its_intensity() -> None:
    arms = [
        ("control", "control", None),
        ("neutral@low", "neutral", "low"),
        ("neutral@high", "neutral", "high"),
        ("anger@low", "anger", "low"),
        ("anger@medium", "anger", "medium"),
        ("anger@high", "anger", "high"),
    ]
    contrasts, missing = plan(_conversations(arms))
    assert missing == []
    pairs = [(c.kind, c.condition, c.baseline) for c in contrasts]
    assert pairs == [
        ("primary", "anger@low", "neutral@low"),
        ("primary", "anger@medium", "neutral@low"),  # no neutral at medium: the first one
        ("primary", "anger@high", "neutral@high"),
        ("framing", "neutral@low", "control"),
        ("framing", "neutral@high", "control"),
        ("vs_control", "anger@low", "control"),
        ("vs_control", "anger@medium", "control"),
        ("vs_control", "anger@high", "control"),
    ]


def test_arms_are_ordered_control_neutral_then_emotions_by_intensity() -> None:
    conditions = ["zeal@high", "anger@high", "neutral", "anger@low", "control", "anger@medium", "zeal@low"]
    assert condition_order(conditions) == [
        "control", "neutral", "anger@low", "anger@medium", "anger@high", "zeal@low", "zeal@high"
    ]  # fmt: skip


def test_a_missing_baseline_is_named_in_one_line() -> None:
    _, missing = plan(_conversations([("neutral", "neutral", "medium"), ("anger", "anger", "medium")]))
    assert missing == [
        "m/retail/test: no control arm, so the framing's effect (neutral − control) is missing"
    ]
    contrasts, missing = plan(_conversations([("anger", "anger", "medium")]))
    assert contrasts == []
    assert (
        missing[-1]
        == "m/retail/test: no baseline arm (neutral or control): nothing to compare the emotions with"
    )


def test_only_settings_outside_the_studied_ones_count_as_differences() -> None:
    a = {
        "seed": 0,
        "variant": {"name": "anger", "persona": {"low": "x"}},
        "user": {"sampling": {"temperature": 1.0}},
    }
    b = {"seed": 0, "variant": {"name": "neutral"}, "user": {"sampling": {"temperature": 0.5}}, "extra": None}
    assert differing_keys(a, b, ("variant",)) == ["user.sampling.temperature"]
    assert differing_keys(a, b, ("variant", "user")) == []


def test_no_op_tasks_are_left_out_or_the_reason_is_given() -> None:
    arms = [("neutral", "neutral", "medium"), ("anger", "anger", "medium")]
    kept, note = without_noop(_conversations(arms, [False, True, False]))
    assert kept is not None and sorted(kept["task_id"].unique()) == [0, 2]
    assert note == "no-op tasks left out: m/retail/test: tasks 1"
    kept, note = without_noop(_conversations(arms, [False, False, False]))
    assert kept is None and note.startswith("none of the tasks run is a no-op task")
    kept, note = without_noop(_conversations(arms))
    assert kept is None and note.startswith("unknown: the records carry no `noop_task` flag")
