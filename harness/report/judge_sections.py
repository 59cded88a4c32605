"""The report's judge sections (when a judge has run) and its lexicon check, with their figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.judge.run import simulator_model
from harness.judge.schema import EMOTIONS
from harness.report.dose import judged_dose_table
from harness.report.judge_tables import (
    CELL,
    baseline_of,
    clean_success_deltas,
    emotion_table,
    fidelity_deltas,
    fidelity_table,
    intensity_table,
    judge_error_deltas,
    judged_turns,
    manipulation_table,
)
from harness.report.judge_validity import (
    active,
    agreement_table,
    confusion_table,
    intensity_trend_table,
    judge_error_table,
    recall_precision_table,
)
from harness.report.judgments import KEY, Judgments, primary_judge
from harness.report.lexicon import active_turns, lexicon_rates, sweep_markers
from harness.report.render import Section


@dataclass
class JudgeResults:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


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
    judgments: Judgments,
    out: Path,
    rng: np.random.Generator,
    resamples: int = 2000,
    permutations: int = 2000,
) -> JudgeResults:
    """The judge's tables, sections and figures (empty where no judge has run), and the lexicon check."""
    results = JudgeResults()
    jobs = sorted(set(conversations["job"]))
    _lexicon(results, sweep_dir, jobs, conversations, user_turns, rng, resamples)
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
    arm_facts = conversations[[*KEY, "variant", "intensity"]].rename(columns={"intensity": "intensity_arm"})
    labelled = active(turns.merge(arm_facts, on=KEY)) if not turns.empty else pd.DataFrame()
    measured = _measured_dose(conversations, labelled)
    intensity_points, intensity_trend = (
        intensity_trend_table(measured[measured["judged_intensity"].notna()], rng, resamples, permutations)
        if not labelled.empty
        else (pd.DataFrame(), pd.DataFrame())
    )
    tables = {
        "judge_sets": judgments.sets,
        "judge_emotions": emotions,
        "judge_intensity": intensity_table(turns, rng, resamples) if not turns.empty else pd.DataFrame(),
        "judge_manipulation": manipulation_table(turns, rng, resamples)
        if not turns.empty
        else pd.DataFrame(),
        "judge_fidelity": fidelity_table(judged),
        "judge_fidelity_deltas": fidelity_deltas(judged, rng, resamples),
        "judge_error_deltas": judge_error_deltas(judged, rng, resamples),
        "judge_clean_success_deltas": clean_success_deltas(judged, rng, resamples),
        "judge_confusion": confusion_table(labelled),
        "judge_recall_precision": recall_precision_table(labelled, rng, resamples)
        if not labelled.empty
        else pd.DataFrame(),
        "judge_intensity_by_dose": intensity_points,
        "judge_intensity_trend": intensity_trend,
        "judge_errors": judge_error_table(judged),
        "judge_agreement": agreement_table(judgments, rng, resamples),
        "dose_trend_judged": judged_dose_table(measured, rng, resamples, permutations)
        if "judged_intensity" in measured
        else pd.DataFrame(),
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
            f"variant's onset_after_turns on. Judge errors (no valid answer after retries) are left out of the judged shares and counted per arm, "
            f"by kind, in the fidelity table, with their paired difference from the baseline."
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
                    "Prompted against judged emotion (confusion matrix)",
                    "Active turns of each arm by the label the judge gave, from a fixed taxonomy that does not "
                    "follow the sweep's variants and holds `none` and `other` (docs/judge.md): an arm whose "
                    "turns land elsewhere than its own emotion fails the check. prompted: the arm's emotion; "
                    "`none` for neutral and other calm arms; control's is unknown.",
                    tables["judge_confusion"],
                ),
                Section(
                    "Recall and precision per prompted emotion",
                    "recall: share of the arm's active turns judged as its emotion; precision: share of the turns "
                    "judged as an emotion that came from arms prompting it (control left out); 95 % bootstrap "
                    "CIs over conversations; f1 from the two.",
                    tables["judge_recall_precision"],
                ),
                Section(
                    "Judged intensity by prompted intensity",
                    "Each conversation's mean judged intensity (0–3, active turns) per prompted dose (neutral 0, "
                    "low 1, medium 2, high 3). Trend: Spearman's ρ over conversations, 95 % bootstrap CI over "
                    "conversations, two-sided permutation p (doses permuted among conversations). A persona "
                    "ladder that is one scale shows ρ > 0.",
                    tables["judge_intensity_trend"],
                    subsections=[
                        Section(
                            "Mean judged intensity per dose",
                            "95 % bootstrap CI over conversations.",
                            tables["judge_intensity_by_dose"],
                        )
                    ]
                    if not tables["judge_intensity_by_dose"].empty
                    else [],
                ),
                Section(
                    "Success against the measured dose",
                    "The dose-response with each conversation's mean judged intensity as the dose instead of the "
                    "prompted one: slope of success per judged intensity point within tasks, task-bootstrap CI, "
                    "p with the judged doses permuted within each task, Holm across emotions. Beside the prompted "
                    "dose-response above: the effect of the emotion the user expressed, not of the prompt.",
                    tables["dose_trend_judged"],
                ),
                Section(
                    "Judge errors per arm",
                    "Conversations the judge gave no valid verdict for, by kind; rate with a Wilson 95 % interval. "
                    "An arm with more errors is judged on fewer, possibly easier, conversations.",
                    tables["judge_errors"],
                ),
                Section(
                    "Simulator fidelity per condition",
                    "Share of validly judged conversations with a flag: facts (wrong or invented), goal (goal or "
                    "constraints changed), stopping (too early or never), refusal (withheld what the instruction "
                    "gives); any: at least one.",
                    tables["judge_fidelity"],
                ),
                Section(
                    "Judge errors against the baseline",
                    "Per arm, the share of conversations the judge gave no valid answer for (too long, invalid: "
                    "counted by kind in the fidelity table) and its paired difference from the baseline, on the "
                    "headline's paired_delta: n/a with the reason below 6 tasks (test) or 10 (interval); "
                    "Holm within each (model, env, split).",
                    tables["judge_error_deltas"],
                ),
                Section(
                    "Fidelity against the baseline",
                    "Paired difference in flag rates, task bootstrap CI, sign-flip p, Holm within each flag.",
                    tables["judge_fidelity_deltas"],
                ),
                Section(
                    "Success deltas on fidelity-clean conversations (exploratory, selects on an outcome)",
                    "delta: all scored pairs (the primary analysis's pairs, against the baseline); clean_delta: "
                    "only pairs where both conversations were judged without any fidelity flag. The flags are "
                    "themselves affected by the emotion (and stopping partly by whether the agent failed), so "
                    "this subset selects on an outcome of the arm: read it beside the worst-case bounds of the "
                    "deterministic fidelity section, never instead of the primary result.",
                    tables["judge_clean_success_deltas"],
                ),
                Section(
                    "Agreement between judges",
                    "Every pair of judge sets on the turns (emotion: Krippendorff's α nominal and Cohen's κ; "
                    "intensity 0–3: α ordinal and κ with quadratic weights) and conversations (any flag: α) both "
                    "judged validly; 95 % bootstrap CIs over conversations. kind: agreement only between judges "
                    "of different model families (`family` in conf/judge.yaml); two seeds or sizes of one family "
                    "are test–retest, which shares the family's biases."
                    if not tables["judge_agreement"].empty
                    else "One judge set only: judge again with a model of another family (`model=...`, docs/judge.md) "
                    "for agreement figures.",
                    tables["judge_agreement"] if not tables["judge_agreement"].empty else None,
                ),
            ],
        )
    )
    return results


def _measured_dose(conversations: pd.DataFrame, labelled: pd.DataFrame) -> pd.DataFrame:
    """The conversations with `judged_intensity`: the primary judge's mean intensity over active turns."""
    if labelled.empty:
        return conversations
    judged = labelled.groupby(KEY)["intensity"].mean().rename("judged_intensity").reset_index()
    return conversations.merge(judged, on=KEY, how="left")


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
