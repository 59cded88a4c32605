"""The free lexicon check: each variant's own markers (its `markers:` in conf/variant/<name>.yaml).

Markers are chosen so that none occurs in any persona text: they count the simulated user's own
words, not its prompt echoed. Only turns where the emotion is active (from `onset_after_turns` on)
are scored, and each rate has a 95 % bootstrap interval over tasks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.conf_dir import CONF_DIR
from harness.report.stats import percentile_ci
from harness.store import JobDir, JobFile, read_model_or_none

CONF_VARIANTS = CONF_DIR / "variant"
_WORD = re.compile(r"[A-Za-z']+")


def marker_pattern(markers: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(markers) + r")\b", re.IGNORECASE)


def sweep_markers(sweep_dir: Path, jobs: list[str]) -> dict[str, list[str]]:
    """Markers per variant: as the jobs ran (their job.json), else the variant's YAML in conf/."""
    import yaml

    found: dict[str, list[str]] = {}
    for job in jobs:
        recorded = read_model_or_none(JobDir(sweep_dir / job).job_file, JobFile)
        if recorded is None:
            continue
        variant = recorded.fingerprint.get("variant") or {}
        name = variant.get("name") or recorded.info.get("variant")
        markers = variant.get("markers")
        if not markers and name and (CONF_VARIANTS / f"{name}.yaml").is_file():
            conf: dict[str, Any] = yaml.safe_load((CONF_VARIANTS / f"{name}.yaml").read_text())
            markers = conf.get("markers")
        if name and markers:
            found.setdefault(name, list(markers))
    return found


def active_turns(turns: pd.DataFrame, conversations: pd.DataFrame) -> pd.DataFrame:
    """User turns from the conversation's `onset_after_turns` on (every turn where there is no onset)."""
    onsets = conversations[["job", "task_id", "trial", "onset_after_turns", "run_seed"]]
    merged = turns.merge(onsets, on=["job", "task_id", "trial"], how="left")
    onset = merged["onset_after_turns"].fillna(0).astype(int)
    return merged[merged["turn"] >= onset].reset_index(drop=True)


def lexicon_rates(
    turns: pd.DataFrame,
    markers: dict[str, list[str]],
    rng: np.random.Generator,
    resamples: int = 2000,
) -> pd.DataFrame:
    """Per (model, env, split, condition) and lexicon: markers per 100 words over active turns, with a CI."""
    if turns.empty or not markers:
        return pd.DataFrame()
    words = turns["text"].map(lambda text: len(_WORD.findall(text))).to_numpy(dtype=float)
    rows = []
    for emotion, words_of in markers.items():
        pattern = marker_pattern(words_of)
        hits = turns["text"].map(lambda text, p=pattern: len(p.findall(text))).to_numpy(dtype=float)
        for key, index in turns.groupby(["model", "env", "split", "condition"]).groups.items():
            where = turns.index.get_indexer(index)
            tasks = turns["task_id"].to_numpy()[where]
            total_words = words[where].sum()
            rate = 100 * hits[where].sum() / total_words if total_words else float("nan")
            low, high = _ratio_ci(tasks, hits[where], words[where], rng, resamples)
            rows.append(
                {
                    **dict(zip(["model", "env", "split", "condition"], key, strict=True)),
                    "lexicon": emotion,
                    "active_turns": len(where),
                    "markers_per_100_words": rate,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def _ratio_ci(
    tasks: np.ndarray, hits: np.ndarray, words: np.ndarray, rng: np.random.Generator, resamples: int
) -> tuple[float, float]:
    _, index = np.unique(tasks, return_inverse=True)
    # markers per 100 words as a ratio of sums over resampled tasks (all trials of a task move together)
    hit_sums = np.bincount(index, weights=hits)
    word_sums = np.bincount(index, weights=words)
    picks = rng.integers(0, len(hit_sums), size=(resamples, len(hit_sums)))
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = 100 * hit_sums[picks].sum(axis=1) / word_sums[picks].sum(axis=1)
    draws = draws[np.isfinite(draws)]
    return percentile_ci(draws) if draws.size else (float("nan"), float("nan"))
