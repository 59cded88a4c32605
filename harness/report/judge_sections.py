"""The report's judge sections, read from `<job>/judgments/<judge>.jsonl` when a judge has run.

The baseline of every comparison is `neutral` where the sweep has it, else `control`; pairs are the
same (run seed, task, trial), and intervals resample tasks, as in the rest of the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.judge.run import simulator_model
from harness.judge.schema import EMOTIONS, FLAG_KINDS
from harness.judge.store import judge_info_path, judge_sets, judgments_path, read_judgments
from harness.report.lexicon import active_turns, lexicon_rates, sweep_markers
from harness.report.render import Section
from harness.report.stats import holm, percentile_ci, sign_flip_p, task_bootstrap

CELL = ["model", "env", "split", "condition"]
FAMILY = ["model", "env", "split"]
PAIR = ["run_seed", "task_id", "trial"]
KEY = ["job", "task_id", "trial"]
BASELINES = ("neutral", "control")
FLAGS = ("any", *FLAG_KINDS)


@dataclass
class JudgeResults:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Judgments:
    sets: pd.DataFrame
    """One row per judge: hash, model, backend, conversations judged, errors, tokens."""
    conversations: pd.DataFrame
    """One row per (judge, job, task, trial): error, and one 0/1 column per fidelity flag kind."""
    turns: pd.DataFrame
    """One row per (judge, job, task, trial, turn): emotion, intensity."""


def baseline_of(conditions: list[str]) -> str | None:
    return next((b for b in BASELINES if b in conditions), None)


def read_sweep_judgments(sweep_dir: Path, jobs: list[str]) -> Judgments:
    sets: dict[str, dict[str, Any]] = {}
    conversation_rows: list[dict[str, Any]] = []
    turn_rows: list[dict[str, Any]] = []
    for job in jobs:
        job_dir = sweep_dir / job
        for judge in judge_sets(job_dir):
            info = _read_info(judge_info_path(job_dir, judge))
            entry = sets.setdefault(
                judge,
                {
                    "judge": judge,
                    "judge_model": info.get("model"),
                    "judge_backend": info.get("backend"),
                    "plumbing_check": bool(info.get("plumbing_check")),
                    "conversations": 0,
                    "judge_errors": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                },
            )
            for judgment in read_judgments(judgments_path(job_dir, judge)).values():
                valid = judgment.get("turns") is not None
                entry["conversations"] += 1
                entry["judge_errors"] += not valid
                entry["prompt_tokens"] += judgment["usage"]["prompt_tokens"]
                entry["completion_tokens"] += judgment["usage"]["completion_tokens"]
                kinds = {flag["kind"] for flag in judgment.get("fidelity") or []}
                conversation_rows.append(
                    {
                        "judge": judge,
                        "job": job,
                        "task_id": judgment["task_id"],
                        "trial": judgment["trial"],
                        "valid": valid,
                        "error_kind": judgment.get("error_kind"),
                        **{
                            f"flag_{kind}": float(bool(kinds) if kind == "any" else kind in kinds)
                            if valid
                            else float("nan")
                            for kind in FLAGS
                        },
                    }
                )
                for turn in judgment.get("turns") or []:
                    turn_rows.append(
                        {
                            "judge": judge,
                            "job": job,
                            "task_id": judgment["task_id"],
                            "trial": judgment["trial"],
                            "turn": turn["turn"],
                            "emotion": turn["emotion"],
                            "intensity": turn["intensity"],
                        }
                    )
    return Judgments(
        pd.DataFrame(list(sets.values())), pd.DataFrame(conversation_rows), pd.DataFrame(turn_rows)
    )


def _read_info(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def primary_judge(sets: pd.DataFrame) -> str:
    """The judge that judged the most conversations (the first by hash on a tie)."""
    return str(sets.sort_values(["conversations", "judge"], ascending=[False, True]).iloc[0]["judge"])


def _own_emotion(condition: str) -> str | None:
    base = condition.split("@")[0]
    return base if base in EMOTIONS and base not in ("neutral", "other") else None


def paired(
    tasks: np.ndarray, baseline: np.ndarray, variant: np.ndarray, rng: np.random.Generator, resamples: int
) -> dict[str, float]:
    """Variant minus baseline over pairs of per-conversation values: mean, task-bootstrap CI, sign-flip p."""
    difference = variant.astype(float) - baseline.astype(float)
    if difference.size == 0:
        nan = float("nan")
        return {"tasks": 0, "pairs": 0, "baseline_rate": nan, "variant_rate": nan, "delta": nan,
                "ci_low": nan, "ci_high": nan, "p_value": nan}  # fmt: skip
    low, high = percentile_ci(task_bootstrap(tasks, difference, rng, resamples))
    _, index = np.unique(tasks, return_inverse=True)
    per_task = np.bincount(index, weights=difference)
    return {
        "tasks": len(per_task),
        "pairs": int(difference.size),
        "baseline_rate": float(baseline.mean()),
        "variant_rate": float(variant.mean()),
        "delta": float(difference.mean()),
        "ci_low": low,
        "ci_high": high,
        "p_value": sign_flip_p(per_task, rng),
    }


def _with_holm(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame["p_holm"] = np.nan
    for _, index in frame.groupby(by).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"].tolist())
    return frame


def judged_turns(turns: pd.DataFrame, conversations: pd.DataFrame) -> pd.DataFrame:
    """The judge's turns with their conversation's cell, pair key and onset."""
    facts = conversations[[*KEY, *CELL, "run_seed", "onset_after_turns"]]
    merged = turns.merge(facts, on=KEY, how="inner")
    merged["onset_after_turns"] = merged["onset_after_turns"].fillna(0).astype(int)
    return merged


def emotion_table(turns: pd.DataFrame) -> pd.DataFrame:
    """Per cell: active turns judged, and the share of them judged as each emotion."""
    active = turns[turns["turn"] >= turns["onset_after_turns"]]
    if active.empty:
        return pd.DataFrame()
    shares = pd.crosstab([active[c] for c in CELL], active["emotion"], normalize="index")
    shares = shares.reindex(columns=list(EMOTIONS), fill_value=0.0)
    shares.columns.name = None
    shares.insert(0, "active_turns", active.groupby(CELL).size())
    return shares.reset_index()


def intensity_table(turns: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    active = turns[turns["turn"] >= turns["onset_after_turns"]]
    rows = []
    for key, cell in active.groupby(CELL):
        low, high = percentile_ci(
            task_bootstrap(cell["task_id"].to_numpy(), cell["intensity"].to_numpy(), rng, resamples)
        )
        rows.append(
            {**dict(zip(CELL, key, strict=True)), "active_turns": len(cell),
             "mean_intensity": cell["intensity"].mean(), "ci_low": low, "ci_high": high}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _share_per_conversation(turns: pd.DataFrame, emotion: str, onset: int) -> pd.Series:
    scored = turns[turns["turn"] >= onset]
    return (scored["emotion"] == emotion).groupby([scored[c] for c in PAIR]).mean()


def manipulation_table(turns: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per variant: the share of its active turns judged as its own emotion, minus the baseline's, paired.

    The baseline's turns are taken from the variant's onset on, so both sides score the same positions.
    """
    rows = []
    for key, family in turns.groupby(FAMILY):
        conditions = sorted(set(family["condition"]))
        baseline = baseline_of(conditions)
        if baseline is None:
            continue
        base_turns = family[family["condition"] == baseline]
        for condition in conditions:
            emotion = _own_emotion(condition)
            if emotion is None or condition == baseline:
                continue
            own = family[family["condition"] == condition]
            onset = int(own["onset_after_turns"].max())
            pairs = pd.concat(
                {
                    "baseline": _share_per_conversation(base_turns, emotion, onset),
                    "variant": _share_per_conversation(own, emotion, onset),
                },
                axis=1,
                join="inner",
            ).reset_index()
            result = paired(
                pairs["task_id"].to_numpy(),
                pairs["baseline"].to_numpy(),
                pairs["variant"].to_numpy(),
                rng,
                resamples,
            )
            rows.append(
                {**dict(zip(FAMILY, key, strict=True)), "condition": condition, "emotion": emotion,
                 "baseline": baseline, **result}
            )  # fmt: skip
    frame = _with_holm(pd.DataFrame(rows), FAMILY)
    if not frame.empty:
        frame["took_effect"] = (frame["ci_low"] > 0) & (frame["p_holm"] < 0.05)
    return frame


def fidelity_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per cell: conversations judged, judge errors, and the share of valid ones with each flag."""
    rows = []
    for key, cell in judged.groupby(CELL):
        valid = cell[cell["valid"]]
        rows.append(
            {
                **dict(zip(CELL, key, strict=True)),
                "judged": len(cell),
                "judge_errors": int((~cell["valid"]).sum()),
                **{
                    f"{kind}_rate": valid[f"flag_{kind}"].mean() if len(valid) else float("nan")
                    for kind in FLAGS
                },
            }
        )
    return pd.DataFrame(rows)


def _pairs(family: pd.DataFrame, baseline: str, condition: str, column: str) -> pd.DataFrame:
    base = family[family["condition"] == baseline].set_index(PAIR)[column]
    variant = family[family["condition"] == condition].set_index(PAIR)[column]
    return pd.concat({"baseline": base, "variant": variant}, axis=1, join="inner").dropna().reset_index()


def fidelity_deltas(judged: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    rows = []
    for key, family in judged[judged["valid"]].groupby(FAMILY):
        conditions = sorted(set(family["condition"]))
        baseline = baseline_of(conditions)
        if baseline is None:
            continue
        for condition in (c for c in conditions if c != baseline):
            for kind in FLAGS:
                pairs = _pairs(family, baseline, condition, f"flag_{kind}")
                rows.append(
                    {**dict(zip(FAMILY, key, strict=True)), "condition": condition, "flag": kind,
                     "baseline": baseline,
                     **paired(pairs["task_id"].to_numpy(), pairs["baseline"].to_numpy(),
                              pairs["variant"].to_numpy(), rng, resamples)}
                )  # fmt: skip
    return _with_holm(pd.DataFrame(rows), [*FAMILY, "flag"])


def clean_success_deltas(judged: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Success deltas over all scored pairs, and again over pairs where both sides are fidelity-clean."""
    scored = judged[judged["scored"]]
    rows = []
    for key, family in scored.groupby(FAMILY):
        conditions = sorted(set(family["condition"]))
        baseline = baseline_of(conditions)
        if baseline is None:
            continue
        clean = family[family["valid"] & (family["flag_any"] == 0)]
        for condition in (c for c in conditions if c != baseline):
            every = _pairs(family, baseline, condition, "success")
            kept = _pairs(clean, baseline, condition, "success")
            primary = paired(every["task_id"].to_numpy(), every["baseline"].to_numpy(),
                             every["variant"].to_numpy(), rng, resamples)  # fmt: skip
            sensitivity = paired(kept["task_id"].to_numpy(), kept["baseline"].to_numpy(),
                                 kept["variant"].to_numpy(), rng, resamples)  # fmt: skip
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "condition": condition,
                    "baseline": baseline,
                    "pairs": primary["pairs"],
                    "delta": primary["delta"],
                    "ci_low": primary["ci_low"],
                    "ci_high": primary["ci_high"],
                    "clean_pairs": sensitivity["pairs"],
                    "clean_delta": sensitivity["delta"],
                    "clean_ci_low": sensitivity["ci_low"],
                    "clean_ci_high": sensitivity["ci_high"],
                    "clean_p_value": sensitivity["p_value"],
                }
            )
    return pd.DataFrame(rows)


def cohens_kappa(first: pd.Series, second: pd.Series) -> float:
    """Cohen's κ of two raters' labels on the same items (statsmodels)."""
    from statsmodels.stats.inter_rater import cohens_kappa as kappa

    labels = sorted(set(first) | set(second))
    table = pd.crosstab(
        pd.Categorical(first, categories=labels), pd.Categorical(second, categories=labels), dropna=False
    ).to_numpy()
    if len(labels) < 2:
        return float("nan")  # one label only: chance agreement is 1 and κ is undefined
    return float(kappa(table, return_results=False))


def agreement_table(judgments: Judgments, primary: str) -> pd.DataFrame:
    rows = []
    for other in judgments.sets["judge"]:
        if other == primary:
            continue
        turns = judgments.turns
        both = turns[turns["judge"] == primary].merge(
            turns[turns["judge"] == other], on=[*KEY, "turn"], suffixes=("_a", "_b")
        )
        convs = judgments.conversations
        both_convs = convs[(convs["judge"] == primary) & convs["valid"]].merge(
            convs[(convs["judge"] == other) & convs["valid"]], on=KEY, suffixes=("_a", "_b")
        )
        rows.append(
            {
                "judge": primary,
                "other_judge": other,
                "turns_in_both": len(both),
                "emotion_kappa": cohens_kappa(both["emotion_a"], both["emotion_b"])
                if len(both)
                else float("nan"),
                "emotion_agreement": float((both["emotion_a"] == both["emotion_b"]).mean())
                if len(both)
                else float("nan"),
                "conversations_in_both": len(both_convs),
                "any_flag_kappa": cohens_kappa(both_convs["flag_any_a"], both_convs["flag_any_b"])
                if len(both_convs)
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def same_model_warning(sweep_dir: Path, jobs: list[str], judge_model: str | None) -> str:
    same = sorted(job for job in jobs if judge_model and simulator_model(sweep_dir / job) == judge_model)
    if not same:
        return ""
    return (
        f"**Warning: the judge ({judge_model}) is the same model as the simulated user in {len(same)} "
        "jobs.** A model tends to rate its own text as it meant it; judge with another model to confirm."
    )


def emotion_heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["/".join(map(str, row)) for row in table[CELL].itertuples(index=False)]
    matrix = table[list(EMOTIONS)].to_numpy(dtype=float)
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.8))
    axis.imshow(matrix, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    axis.set_xticks(range(len(EMOTIONS)), list(EMOTIONS), rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    for (r, c), value in np.ndenumerate(matrix):
        axis.text(
            c,
            r,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > 0.6 else "black",
        )
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def judge_results(
    sweep_dir: Path,
    conversations: pd.DataFrame,
    user_turns: pd.DataFrame,
    out: Path,
    rng: np.random.Generator,
    resamples: int = 2000,
) -> JudgeResults:
    """The judge's tables, sections and figures (empty where no judge has run), and the lexicon check."""
    results = JudgeResults()
    jobs = sorted(set(conversations["job"]))
    _lexicon(results, sweep_dir, jobs, conversations, user_turns, rng, resamples)
    judgments = read_sweep_judgments(sweep_dir, jobs)
    if judgments.sets.empty:
        return results
    primary = primary_judge(judgments.sets)
    info = judgments.sets.set_index("judge").loc[primary]
    facts = conversations[[*KEY, *CELL, "run_seed", "onset_after_turns", "scored", "success"]]
    own_turns = (
        judgments.turns[judgments.turns["judge"] == primary] if not judgments.turns.empty else judgments.turns
    )
    turns = judged_turns(own_turns, conversations) if not own_turns.empty else pd.DataFrame()
    judged = judgments.conversations[judgments.conversations["judge"] == primary].merge(
        facts, on=KEY, how="inner"
    )
    emotions = emotion_table(turns) if not turns.empty else pd.DataFrame()
    tables = {
        "judge_sets": judgments.sets,
        "judge_emotions": emotions,
        "judge_intensity": intensity_table(turns, rng, resamples) if not turns.empty else pd.DataFrame(),
        "judge_manipulation": manipulation_table(turns, rng, resamples)
        if not turns.empty
        else pd.DataFrame(),
        "judge_fidelity": fidelity_table(judged),
        "judge_fidelity_deltas": fidelity_deltas(judged, rng, resamples),
        "judge_clean_success_deltas": clean_success_deltas(judged, rng, resamples),
        "judge_agreement": agreement_table(judgments, primary),
    }
    results.tables.update(tables)
    plumbing = " (PLUMBING CHECK: scripted verdicts, not a judgment)" if info["plumbing_check"] else ""
    heatmap = None
    if not emotions.empty:
        heatmap = emotion_heatmap(
            emotions, out / "judge_emotions.png", f"Judged emotion, share of active turns{plumbing}"
        )
        results.figures.append(heatmap)
    warning = "" if info["plumbing_check"] else same_model_warning(sweep_dir, jobs, info["judge_model"])
    baseline = baseline_of(sorted(set(conversations["condition"]))) or "none (no neutral or control)"
    results.sections.append(
        Section(
            "Judge: did the user sound like its variant, and did it play its part?",
            f"Judge {primary} ({info['judge_model']} on {info['judge_backend']}){plumbing}, blind to the variant: "
            f"per customer turn the expressed emotion and its intensity (0–3), per conversation fidelity flags "
            f"against the instruction (docs/judge.md). Baseline: {baseline}. Active turns are those from the "
            f"variant's onset_after_turns on. Judge errors (no valid answer after retries) are left out."
            + (f"\n\n{warning}" if warning else ""),
            judgments.sets,
            subsections=[
                Section(
                    "Judged emotion per condition",
                    "Share of active turns judged as each emotion.",
                    emotions,
                    heatmap,
                ),
                Section(
                    "Mean intensity per condition",
                    "Over active turns; 95 % percentile bootstrap over tasks.",
                    tables["judge_intensity"],
                ),
                Section(
                    "Manipulation took effect?",
                    "Per conversation, the share of active turns judged as the variant's own emotion; the baseline "
                    "scored on the same turn positions; paired by (run seed, task, trial). delta with a task "
                    "bootstrap CI, sign-flip p, Holm across variants. took_effect: CI above 0 and p_holm < 0.05.",
                    tables["judge_manipulation"],
                ),
                Section(
                    "Simulator fidelity per condition",
                    "Share of validly judged conversations with a flag: facts (wrong or invented), goal (goal or "
                    "constraints changed), stopping (too early or never), refusal (withheld what the instruction "
                    "gives); any: at least one.",
                    tables["judge_fidelity"],
                ),
                Section(
                    "Fidelity against the baseline",
                    "Paired difference in flag rates, task bootstrap CI, sign-flip p, Holm within each flag.",
                    tables["judge_fidelity_deltas"],
                ),
                Section(
                    "Success deltas on fidelity-clean conversations (sensitivity)",
                    "delta: all scored pairs (the primary analysis's pairs, against the baseline); clean_delta: "
                    "only pairs where both conversations were judged without any fidelity flag. A drop that "
                    "vanishes here came from a simulator that stopped playing its part.",
                    tables["judge_clean_success_deltas"],
                ),
                Section(
                    "Agreement between judge runs",
                    "Cohen's κ between this judge and every other judge set of the sweep, on the turns (emotion) "
                    "and conversations (any flag) both judged validly."
                    if not tables["judge_agreement"].empty
                    else "One judge run only: run the judge again with another `sampling.seed` or `model` for κ.",
                    tables["judge_agreement"] if not tables["judge_agreement"].empty else None,
                ),
            ],
        )
    )
    return results


def _lexicon(
    results: JudgeResults,
    sweep_dir: Path,
    jobs: list[str],
    conversations: pd.DataFrame,
    user_turns: pd.DataFrame,
    rng: np.random.Generator,
    resamples: int,
) -> None:
    markers = sweep_markers(sweep_dir, jobs)
    if user_turns.empty or not markers:
        return
    table = lexicon_rates(active_turns(user_turns, conversations), markers, rng, resamples)
    results.tables["lexicon_check"] = table
    results.sections.append(
        Section(
            "Lexicon check (free fallback to the judge)",
            "Markers per 100 words of each variant's own lexicon (its `markers:` in conf/variant/<name>.yaml; "
            "none of them occurs in any persona text), over active turns only; 95 % bootstrap CI over tasks. "
            "Each variant's own lexicon should rate highest in its own condition. Cells: rate [CI]; "
            "lexicon_check.csv has the numbers.",
            _lexicon_grid(table),
        )
    )


def _lexicon_grid(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, one column per lexicon: `rate [low, high]`."""
    if table.empty:
        return table
    text = table.assign(
        value=[
            f"{rate:.2f} [{low:.2f}, {high:.2f}]"
            for rate, low, high in zip(
                table["markers_per_100_words"], table["ci_low"], table["ci_high"], strict=True
            )
        ]
    )
    grid = text.pivot_table(index=[*CELL, "active_turns"], columns="lexicon", values="value", aggfunc="first")
    grid.columns.name = None
    return grid.reset_index()
