"""Turns a finished (or partly finished) sweep directory into tables, figures and a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import figures
from harness.report.affect import manipulation_check, score_user_turns
from harness.report.contrasts import (
    Options,
    contrast_table,
    failure_examples,
    model_table,
    mood_interaction_table,
    pass_k_table,
    pooled_table,
    termination_table,
    without_noop,
)
from harness.report.cost import cost_section, cost_table
from harness.report.design import FRAMING, KINDS, PRIMARY, VS_CONTROL, Contrast, model_refusals, plan
from harness.report.dose import dose_tables
from harness.report.dynamics import dynamics_section, dynamics_tables
from harness.report.judge_sections import judge_results
from harness.report.load import ReportError, Sweep, load_sweep
from harness.report.render import Section, plumbing_banner, to_html, to_markdown
from harness.report.stats import MIN_TASKS_CI, MIN_TASKS_TEST
from harness.report.tables import CELL, cell_summary, job_states, termination_rates

EXAMPLES_SHOWN = 10
"""Failure examples listed per contrast in the report; the CSV has all of them."""


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    resamples: int = 2000
    model: bool = True
    """Fit the conditional logit model (`--no-mixed` turns it off)."""
    permutations: int = 20000
    allow_differing: tuple[str, ...] = ()
    """Settings (dotted keys or their prefixes) allowed to differ between compared jobs besides the variant."""


@dataclass(frozen=True)
class Report:
    directory: Path
    markdown: Path
    html: Path
    tables: dict[str, pd.DataFrame]
    test_backends: list[str]
    """Backends marked as a plumbing check (oracle, scripted); empty for a model result."""
    figures: list[Path]
    notes: list[str] = field(default_factory=list)
    """One line per missing contrast, refused comparison or other caveat, as printed."""


METHOD = f"""Success is reward 1 on a scored conversation. Conversations that end through a failure of the simulated user, the infrastructure or the harness are unscored; they stay in every table as their own terminations and are counted in the bounds below.

Each arm is compared with its baseline on the pairs of conversations that share (run seed, task, trial): seeds are identical across variants. The primary contrast is emotion − neutral (neutral has the same framing block as the emotions, with a calm persona); neutral − control is the framing's effect; emotion − control both together. delta = arm − baseline over the pairs scored on both sides. CI: 95% percentile bootstrap over tasks (all trials of a task move together). p: two-sided sign-flip permutation test on each task's summed difference (exact up to 12 differing tasks). p_holm: Holm's correction across every contrast of the same kind in the sweep (every env × emotion × intensity of a model for the primary one). sim_ci: simultaneous intervals, each a percentile bootstrap at level 1 − 0.05/m, m being the number of contrasts in the Holm family (Bonferroni): an interval that excludes 0 implies a Holm rejection, not conversely. mde: the smallest true difference the test detects with 80% power at α = 0.05, from the spread of the per-task differences; mde_adjusted the same at α/m. A result that is not significant after Holm reads "inconclusive at this size (MDE x points)" with the adjusted MDE: it is not evidence of no effect.

Bounds: delta recounted over every pair with the unscored conversations as failures (if_failure) and as successes (if_success), each with its own Holm-adjusted test; a comparison whose bounds disagree in sign or in significance is flagged, and a flagged comparison is never called significant. Fewer than {MIN_TASKS_TEST} tasks give no test and fewer than {MIN_TASKS_CI} no interval ("n/a" with the reason in note)."""

HEADLINE = [
    "model", "env", "split", "contrast", "tasks", "pairs", "baseline_rate", "variant_rate", "delta",
    "ci_low", "ci_high", "sim_ci_low", "sim_ci_high", "p_value", "p_holm", "mde", "mde_adjusted", "verdict",
]  # fmt: skip
BOUNDS = [
    "model", "env", "split", "contrast", "all_pairs", "baseline_unscored", "variant_unscored", "unscored_delta",
    "unscored_ci_low", "unscored_ci_high", "unscored_p", "delta", "delta_if_failure", "p_holm_if_failure",
    "delta_if_success", "p_holm_if_success", "bounds_flag",
]  # fmt: skip

TERMINATION_COLUMNS = [
    "model", "env", "contrast", "termination", "pairs", "baseline_rate", "variant_rate", "delta", "ci_low",
    "ci_high", "p_value", "note",
]  # fmt: skip


def _columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]] if not frame.empty else frame


def _kind(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    return table[table["kind"] == kind] if not table.empty else table


def _headline(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    rows = _kind(table, kind)
    if rows.empty:
        return rows
    shown = _columns(rows, HEADLINE).copy()
    refused = rows["refused"].astype(bool)
    shown.loc[refused, "verdict"] = rows.loc[refused, "refused"]
    return shown


def _mean_std(summary: pd.DataFrame) -> pd.DataFrame:
    pass_columns = sorted((c for c in summary.columns if c.startswith("pass^")), key=lambda c: int(c[5:]))
    table = summary[[*CELL, "trials", "pass_k_tasks", *pass_columns]].copy()
    table.insert(
        len(CELL) + 2,
        "success mean ± std over trials",
        [
            "" if pd.isna(m) else f"{m:.3f} ± {s:.3f}" if pd.notna(s) else f"{m:.3f}"
            for m, s in zip(summary["success_trial_mean"], summary["success_trial_std"], strict=True)
        ],
    )
    return table


def _job_section(sweep: Sweep) -> Section:
    jobs = job_states(sweep.jobs)
    counts = jobs["state"].value_counts().to_dict()
    text = f"{len(jobs)} job directories: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    problems = jobs[jobs["state"] != "complete"]
    if problems.empty:
        text += ". Every job finished."
    else:
        text += (
            ". Jobs not complete are listed below: their finished conversations are included, "
            "the rest are missing from every comparison."
        )
    dropped = sweep.conversations.attrs.get("duplicates_dropped", 0)
    if dropped:
        text += f"\n\n{dropped} conversations appeared in more than one job for the same cell; the later job's were kept."
    return Section("Jobs", text, problems if not problems.empty else None)


def build_report(sweep_dir: Path, out_dir: Path | None = None, settings: Settings = Settings()) -> Report:
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir} is not a directory")
    sweep = load_sweep(sweep_dir)
    if sweep.jobs.empty:
        raise ReportError(
            f"{sweep_dir} holds no job directories (no job.json, conversations.jsonl or error.txt)"
        )
    if sweep.conversations.empty:
        raise ReportError(
            f"{sweep_dir} holds {len(sweep.jobs)} job directories but no finished conversations yet"
        )
    out = out_dir or sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(settings.seed)
    options = Options(settings.resamples, settings.permutations)
    conversations = sweep.conversations

    contrasts, missing = plan(conversations)
    deltas = contrast_table(conversations, contrasts, sweep.settings, rng, options, settings.allow_differing)
    refused = _refused(contrasts, deltas)
    noop_conversations, noop_note = without_noop(conversations)
    deltas_without_noop = (
        contrast_table(noop_conversations, contrasts, sweep.settings, rng, options, settings.allow_differing)
        if noop_conversations is not None
        else pd.DataFrame()
    )
    dose_points, dose_trends = dose_tables(
        conversations, rng, settings.resamples, min(settings.permutations, 2000)
    )
    summary = cell_summary(conversations, rng, settings.resamples)
    manipulation = manipulation_check(score_user_turns(sweep.user_turns))
    model = model_table(conversations, contrasts, refused) if settings.model else pd.DataFrame()
    tables = {
        "jobs": job_states(sweep.jobs),
        "summary": summary,
        "deltas": deltas,
        "deltas_pooled": pooled_table(conversations, contrasts, refused, rng, options),
        "deltas_without_noop": deltas_without_noop,
        "dose_response": dose_points,
        "dose_trend": dose_trends,
        "instruction_mood": mood_interaction_table(conversations, contrasts, refused, rng, options),
        "pass_k_deltas": pass_k_table(conversations, contrasts, refused, rng, options),
        "terminations": termination_rates(conversations),
        "termination_deltas": termination_table(conversations, contrasts, refused, rng, options),
        "manipulation_check": manipulation,
        "failure_examples": failure_examples(conversations, [c for c in contrasts if c not in refused]),
        "conditional_logit": model,
        "cost": cost_table(sweep_dir),
    }
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)

    notes = [
        *missing,
        *_refusal_lines(deltas),
        *model_refusals(conversations, sweep.settings, settings.allow_differing),
    ]
    if settings.allow_differing:
        notes.append(
            f"settings allowed to differ between compared jobs: {', '.join(settings.allow_differing)}"
        )
    test_backends = sorted(set(conversations.loc[conversations["plumbing_check"], "backend"]))
    plumbing = bool(test_backends)
    banner = plumbing_banner(test_backends) if plumbing else None
    tag = f"\nPLUMBING CHECK ({', '.join(test_backends)} backend): not a model result" if plumbing else ""
    figure_paths = {
        "success": figures.success_by_variant(
            summary, out / "success_by_variant.png", f"Success by variant{tag}"
        ),
        "pass_k": figures.pass_k_curves(summary, out / "pass_k.png", f"pass^k by variant{tag}"),
        "turns": figures.turns_by_variant(conversations, out / "turns_by_variant.png", f"User turns{tag}"),
    }
    if not deltas.empty and deltas.get("delta", pd.Series(dtype=float)).notna().any():
        figure_paths["contrasts"] = figures.contrast_forest(
            deltas[deltas["delta"].notna()], out / "contrasts.png", f"Differences in success{tag}"
        )
    if not dose_points.empty and dose_points["dose"].nunique() > 1:
        figure_paths["dose"] = figures.dose_response(
            dose_points, dose_trends, out / "dose_response.png", f"Success by intensity{tag}"
        )
    if not manipulation.empty:
        figure_paths["manipulation"] = figures.manipulation_heatmap(
            manipulation, out / "manipulation_check.png", f"Manipulation check{tag}"
        )

    sections = _sections(sweep, tables, figure_paths, notes, noop_note, settings)
    reactive = dynamics_tables(conversations, rng, settings.resamples, settings.permutations)
    sections[-1:-1] = dynamics_section(reactive)
    tables.update(reactive)
    for name, table in reactive.items():
        table.to_csv(out / f"{name}.csv", index=False)
    judged = judge_results(sweep_dir, conversations, sweep.user_turns, out, rng, settings.resamples)
    sections[-1:-1] = judged.sections
    tables.update(judged.tables)
    for name, table in judged.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    title = f"tau-emotion report: {sweep_dir.resolve().name}"
    markdown = out / "report.md"
    markdown.write_text(to_markdown(title, banner, sections, out))
    page = out / "report.html"
    page.write_text(to_html(title, banner, sections))
    return Report(
        out, markdown, page, tables, test_backends, [*figure_paths.values(), *judged.figures], notes
    )


def _refused(contrasts: list[Contrast], deltas: pd.DataFrame) -> set[Contrast]:
    """The contrasts whose jobs may not be compared (`contrast_table` keeps the order of `contrasts`)."""
    if deltas.empty:
        return set()
    return {c for c, refused in zip(contrasts, deltas["refused"], strict=True) if refused}


def _refusal_lines(deltas: pd.DataFrame) -> list[str]:
    if deltas.empty:
        return []
    rows = deltas[deltas["refused"].astype(bool)]
    return [f"{r.model}/{r.env}/{r.split} {r.contrast}: {r.refused}" for r in rows.itertuples()]


def _sections(
    sweep: Sweep,
    tables: dict[str, pd.DataFrame],
    figure_paths: dict[str, Path],
    notes: list[str],
    noop_note: str,
    settings: Settings,
) -> list[Section]:
    summary = tables["summary"]
    deltas = tables["deltas"]
    overview = [
        *CELL, "tasks", "trials", "conversations", "scored", "unscored_errors", "unscored_rate", "user_error_rate",
        "success_rate", "success_ci_low", "success_ci_high", "transfer_rate", "step_cap_rate",
    ]  # fmt: skip
    behaviour = [
        *CELL, "user_turns", "agent_steps", "tool_calls", "tool_errors", "user_words_per_turn",
        "agent_words_per_turn", "duration_s", "agent_tokens", "user_tokens",
    ]  # fmt: skip
    examples = tables["failure_examples"]
    shown = (
        examples.groupby(["model", "env", "contrast"], sort=False).head(EXAMPLES_SHOWN)
        if not examples.empty
        else examples
    )
    comparability = (
        "Every pair of compared jobs must share every setting of `job.json`'s fingerprint and the simulated "
        "user's identity (`user_simulator`) except the variant; a pair that differs is refused, never pooled."
    )
    comparability += "\n\n" + (
        "\n".join(f"- {line}" for line in notes)
        if notes
        else "Every comparison has its baseline arm and comparable jobs."
    )
    return [
        _job_section(sweep),
        Section("Comparability and missing contrasts", comparability),
        Section(
            "Success per variant",
            "Per (model, env, split, variant). success CI: percentile bootstrap over tasks. unscored_rate: "
            "conversations the agent cannot be scored on (user simulator, infrastructure, harness), over all "
            "conversations, as are the transfer and step-cap rates.",
            _columns(summary, overview),
            figure_paths["success"],
        ),
        Section(
            f"Primary: {KINDS[PRIMARY]}",
            METHOD,
            _headline(deltas, PRIMARY),
            figure_paths.get("contrasts"),
            subsections=[
                Section(
                    "Pooled across envs",
                    "Each primary contrast over the tasks of every env that has it (tasks resampled within "
                    "their env), Holm across the pooled contrasts."
                    + (
                        ""
                        if not tables["deltas_pooled"].empty
                        else " None: no primary contrast was run in two envs."
                    ),
                    _columns(tables["deltas_pooled"], ["model", "envs", "split", "contrast", *HEADLINE[4:]]),
                ),
                Section(f"Framing: {KINDS[FRAMING]}", "Holm within this kind.", _headline(deltas, FRAMING)),
                Section(
                    f"Against control: {KINDS[VS_CONTROL]}",
                    "Holm within this kind.",
                    _headline(deltas, VS_CONTROL),
                ),
            ],
        ),
        Section(
            "Unscored conversations: rates, their difference and the bounds",
            "Per contrast over every pair present in both arms: the share unscored in each arm, its paired "
            "difference (95% CI, sign-flip p), and delta recounted with the unscored as failures and as "
            "successes (Holm-adjusted p). bounds_flag names a disagreement in sign or significance.",
            _columns(deltas, BOUNDS),
        ),
        Section(
            "Without no-op tasks",
            f"Tasks with no write action and no required output pass when the agent does nothing. {noop_note}.",
            _columns(tables["deltas_without_noop"], ["kind", *HEADLINE])
            if not tables["deltas_without_noop"].empty
            else None,
        ),
        Section(
            "Dose-response: success against intensity",
            "Dose 0 is neutral, then the intensities low, medium, high. slope: points of success per intensity "
            "step, least squares within tasks; CI by task bootstrap; p: dose labels permuted within each task; "
            "p_holm across the emotions of the sweep.",
            tables["dose_trend"] if not tables["dose_trend"].empty else None,
            figure_paths.get("dose"),
            subsections=[Section("Success per dose", "", tables["dose_response"])]
            if not tables["dose_response"].empty
            else [],
        ),
        Section(
            "Instruction mood: does the effect differ when the instruction states a mood?",
            "Some τ-bench instructions already set the user's demeanour (record `instruction_affect`). Per contrast: "
            "delta within tasks whose instruction states a mood and within the rest, and their difference "
            "(the interaction): 95% CI resampling tasks within each group, p permuting the group labels over "
            "tasks, Holm within each kind.",
            tables["instruction_mood"] if not tables["instruction_mood"].empty else None,
        ),
        Section(
            "pass^k",
            "Per arm: pass^k for k = 1..trials over its own complete tasks, and each trial's success rate averaged "
            "over trials ± its standard deviation.",
            _mean_std(summary),
            figure_paths["pass_k"],
            subsections=[
                Section(
                    "Paired pass^k differences",
                    "Over the tasks whose every trial is scored in both arms only (tasks_left_out are not), "
                    "so an arm cannot gain by losing its hard tasks to unscored endings. CI: bootstrap over tasks.",
                    tables["pass_k_deltas"],
                )
            ],
        ),
        Section(
            "How conversations end",
            "Share of conversations per termination reason, unscored ones included.",
            tables["terminations"],
            subsections=[
                Section(
                    "Change against the baseline",
                    "Paired change in how often each arm ends each way (every ending that occurs, over all pairs).",
                    _columns(tables["termination_deltas"], TERMINATION_COLUMNS),
                )
            ],
        ),
        Section(
            "Conversation statistics",
            "Means per conversation.",
            _columns(summary, behaviour),
            figure_paths["turns"],
        ),
        Section(
            "Sentiment of the simulated user",
            "Every simulated-user message (the stop token removed) scored with VADER (compound −1..1, "
            "negative and positive shares). VADER cannot tell one negative emotion from another: the "
            "lexicon check and the judge's sections below do. The heatmap shows the difference from control.",
            tables["manipulation_check"],
            figure_paths.get("manipulation"),
        ),
        Section(
            "Conditional logit model",
            "Log-odds of success in the arm against its baseline from a logistic model conditioned on each task's "
            "successes (statsmodels ConditionalLogit, grouped by task): no assumption about how tasks differ. "
            "95% Wald interval. Only tasks with both outcomes inform it; n/a with the reason where it cannot be fitted."
            if settings.model
            else "Not fitted (--no-mixed).",
            tables["conditional_logit"] if not tables["conditional_logit"].empty else None,
        ),
        Section(
            "Failures where the baseline succeeded",
            f"Scored conversations an arm failed where its baseline succeeded on the same task and trial; "
            f"job directories are relative to the sweep. {len(examples)} in all, at most {EXAMPLES_SHOWN} "
            "per contrast shown here; failure_examples.csv lists all.",
            shown,
        ),
        cost_section(tables["cost"]),
        Section(
            "Settings",
            f"bootstrap resamples: {settings.resamples} (more for simultaneous intervals: 50 beyond each end); "
            f"permutations: {settings.permutations}; random seed: {settings.seed}. Tables as CSV next to this file.",
        ),
    ]
