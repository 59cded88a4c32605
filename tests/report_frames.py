"""The report's conversation table built straight from simulated outcomes, one arm at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd


def arm_conversations(condition: str, outcomes: np.ndarray, unscored: np.ndarray) -> pd.DataFrame:
    """One arm's conversations on retail for model `m`: `outcomes[task, trial]` is 1.0 for a
    success, and a conversation where `unscored` is true was lost to a user error, unscored."""
    tasks, trials = np.indices(outcomes.shape)
    return pd.DataFrame(
        {
            "model": "m",
            "env": "retail",
            "split": "test",
            "condition": condition,
            "job": condition,
            "run_seed": 0,
            "task_id": tasks.ravel(),
            "trial": trials.ravel(),
            "scored": ~unscored.ravel(),
            "success": np.where(unscored, np.nan, outcomes).ravel(),
            "termination": np.where(unscored, "user_error", "user_stop").ravel(),
            "noop_task": False,
            "instruction_affect": "",
        }
    )
