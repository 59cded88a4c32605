"""Turns a finished (or partly finished) sweep directory into tables, figures and a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.job.study import Study
from harness.report import figures
from harness.report.affect import manipulation_check, score_user_turns
from harness.report.anatomy_section import anatomy_results
from harness.report.contrasts import (
    Comparisons,
    Options,
    contrast_table,
    failure_examples,
    model_table,
    mood_interaction_table,
    pass_k_table,
    pooled_table,
    termination_table,
    verdict,
    without_noop,
)
from harness.report.cost import cost_section, cost_table
from harness.report.design import (
    COGNITIVE,
    FRAMING,
    KINDS,
    PRIMARY,
    STYLE,
    VS_CONTROL,
    VS_PLACEBO,
    Contrast,
    model_refusals,
    plan,
)
from harness.report.dose import dose_tables
from harness.report.dynamics import dynamics_section, dynamics_tables
from harness.report.estimand import declaration_line, label_sections, named_holm, primary_rows, study_of
from harness.report.fidelity import fidelity_bounds, fidelity_outcome_table, fidelity_rates
from harness.report.fidelity_section import fidelity_section
from harness.report.independence import independence_lines, independence_table, job_infos, nl_assertion_tasks
from harness.report.judge_sections import judge_results
from harness.report.judgments import read_sweep_judgments
from harness.report.lexicon import active_turns
from harness.report.load import ReportError, Sweep, load_sweep
from harness.report.render import Section, plumbing_banner, to_html, to_markdown
from harness.report.stats import MIN_TASKS_CI, MIN_TASKS_TEST
from harness.report.style_match import TOLERANCE, style_match
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

Worst-case bounds for unscored conversations (Manski): delta recounted over every pair with the arm's unscored conversations as failures and the baseline's as successes (worst_low, the lowest delta the data allow), then the reverse (worst_high), each with its bootstrap interval (simultaneous, like sim_ci); worst_ci_low..worst_ci_high spans both. They assume nothing about why a conversation went unscored. A comparison with unscored conversations is called significant only when p_holm < 0.05 and that whole worst-case interval excludes 0; otherwise it reads "not robust to unscored conversations (worst case a to b)". The same-direction imputations (every unscored conversation a failure, if_failure, then a success, if_success) are a sensitivity that assumes both arms lose alike; bounds_flag names their disagreement in sign or significance. Fewer than {MIN_TASKS_TEST} tasks give no test and fewer than {MIN_TASKS_CI} no interval ("n/a" with the reason in note)."""

HEADLINE = [
    "model", "env", "split", "contrast", "tasks", "pairs", "baseline_rate", "variant_rate", "delta",
    "ci_low", "ci_high", "sim_ci_low", "sim_ci_high", "worst_ci_low", "worst_ci_high", "p_value", "p_holm",
    "mde", "mde_adjusted", "verdict",
]  # fmt: skip
BOUNDS = [
    "model", "env", "split", "contrast", "all_pairs", "baseline_unscored", "variant_unscored", "unscored_delta",
    "unscored_ci_low", "unscored_ci_high", "unscored_p", "delta", "worst_low", "worst_low_ci_low",
    "worst_low_ci_high", "worst_high", "worst_high_ci_low", "worst_high_ci_high", "delta_if_failure", "p_holm_if_failure",
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


def _style_match_section(sweep: Sweep) -> Section:
    table = style_match(sweep.conversations)
    text = (
        "Is the placebo as long as the emotional users? Mean user words per turn of the placebo against the mean "
        f"over the emotion arms; matched: within ±{TOLERANCE:.0%}."
    )
    if not table.empty and not table["matched"].all():
        text += " Where it is not matched, emotion − placebo also measures a difference in length."
    return Section("Length match of the placebo", text, table if not table.empty else None)


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

    study = study_of(sweep_dir)
    contrasts, missing = plan(conversations)
    deltas = contrast_table(conversations, contrasts, sweep.settings, rng, options, settings.allow_differing)
    compared = Comparisons(conversations, contrasts, rng, options, _refused(contrasts, deltas))
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
    manipulation = manipulation_check(
        score_user_turns(active_turns(sweep.user_turns, conversations)), rng, settings.resamples
    )
    model = model_table(compared) if settings.model else pd.DataFrame()
    pooled = pooled_table(compared)
    primary = primary_rows(deltas if study.scope == "per_env" else pooled, study, verdict)
    at_cap = conversations.assign(success=conversations["success_at_cap"])
    primary_at_cap = primary_rows(
        contrast_table(at_cap, contrasts, sweep.settings, rng, options, settings.allow_differing)
        if study.scope == "per_env"
        else pooled_table(compared.with_conversations(at_cap)),
        study,
        verdict,
    )
    if not primary_at_cap.empty:
        primary_at_cap["holm_family"] = "sensitivity: the declared family, scored at the step cap"
    tables = {
        "primary": primary,
        "primary_at_cap": primary_at_cap,
        "jobs": job_states(sweep.jobs),
        "summary": summary,
        "deltas": deltas,
        "deltas_pooled": pooled,
        "deltas_without_noop": deltas_without_noop,
        "dose_response": dose_points,
        "dose_trend": dose_trends,
        "instruction_mood": mood_interaction_table(compared),
        "pass_k_deltas": pass_k_table(compared),
        "terminations": termination_rates(conversations),
        "termination_deltas": named_holm(
            termination_table(compared),
            "termination changes",
            ["model", "kind"],
        ),
        "manipulation_check": manipulation,
        "failure_examples": failure_examples(compared),
        "conditional_logit": named_holm(model, "conditional logit", ["model", "kind"]),
        "cost": cost_table(sweep_dir),
        "independence": independence_table(conversations, contrasts, job_infos(sweep_dir)),
        "nl_assertion_tasks": nl_assertion_tasks(conversations),
        "fidelity_rates": fidelity_rates(conversations),
        "fidelity_deltas": fidelity_outcome_table(compared),
        "fidelity_bounds": fidelity_bounds(compared),
    }
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)

    notes = [
        *missing,
        *_refusal_lines(deltas),
        *model_refusals(conversations, sweep.settings, settings.allow_differing),
        *independence_lines(tables["independence"]),
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
    judgments = read_sweep_judgments(sweep_dir, sorted(set(conversations["job"])))
    anatomy = anatomy_results(compared, out, tag, judgments)
    sections[-3:-3] = anatomy.sections
    tables.update(anatomy.tables)
    for name, table in anatomy.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    reactive = dynamics_tables(conversations, rng, settings.resamples, settings.permutations)
    sections[-1:-1] = dynamics_section(reactive)
    tables.update(reactive)
    for name, table in reactive.items():
        table.to_csv(out / f"{name}.csv", index=False)
    judged = judge_results(
        sweep_dir, conversations, sweep.user_turns, judgments, out, rng, settings.resamples,
        min(settings.permutations, 2000),
    )  # fmt: skip
    sections[-1:-1] = judged.sections
    sections.insert(0, _declared_section(study, tables))
    label_sections(sections, {DECLARED}, {"Jobs", "Settings", "Cost"})
    tables.update(judged.tables)
    for name, table in judged.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    title = f"tau-emotion report: {sweep_dir.resolve().name}"
    markdown = out / "report.md"
    markdown.write_text(to_markdown(title, banner, sections, out))
    page = out / "report.html"
    page.write_text(to_html(title, banner, sections))
    return Report(
        out,
        markdown,
        page,
        tables,
        test_backends,
        [*figure_paths.values(), *anatomy.figures, *judged.figures],
        notes,
    )


DECLARED = "Declared estimand: the primary results"


def _declared_section(study: Study, tables: dict[str, pd.DataFrame]) -> Section:
    primary = tables["primary"]
    text = declaration_line(study)
    if primary.empty:
        text += (
            " The sweep has no comparable contrast of that kind and family"
            + (" (pooled needs the contrast in two envs)" if study.scope == "pooled" else "")
            + ": every table below is exploratory."
        )
    else:
        text += (
            f" Holm over these {len(primary)} contrasts alone (holm_family). "
            "Every other table is exploratory (not in the declared family), with its own named Holm family "
            "where it prints p-values."
        )
    columns = ["model", "env", "envs", "split", "contrast", *HEADLINE[4:], "holm_family"]
    changes = tables["termination_deltas"]
    if not changes.empty:
        chosen = changes["termination"].isin(["step_cap", "transfer_to_human"]) & (
            changes["kind"] == study.kind
        )
        changes = _columns(changes[chosen], [*TERMINATION_COLUMNS, "p_holm", "holm_family"])
    return Section(
        DECLARED,
        text,
        _columns(primary, columns) if not primary.empty else None,
        subsections=[
            Section(
                "Step cap as a sensitivity: the database scored at the cap",
                "The same declared contrasts with a conversation that reached `env.max_steps` scored on its "
                "database and outputs at the cap (`reward_at_cap`) instead of τ-bench's 0: an arm whose "
                "user drives the agent into the cap more often cannot gain or lose by the rule alone. "
                "Conversations recorded before `reward_at_cap` keep their official score.",
                _columns(tables["primary_at_cap"], columns),
            ),
            Section(
                "Step-cap and transfer changes beside the headline",
                "Paired change in how often each arm ends at the step cap or by a transfer to a human, for "
                "the declared kind of contrast (from the termination changes below, with their Holm family).",
                changes,
            ),
        ]
        if not primary.empty
        else [],
    )


def _refused(contrasts: list[Contrast], deltas: pd.DataFrame) -> frozenset[Contrast]:
    """The contrasts whose jobs may not be compared (`contrast_table` keeps the order of `contrasts`)."""
    if deltas.empty:
        return frozenset()
    return frozenset(c for c, refused in zip(contrasts, deltas["refused"], strict=True) if refused)


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
        Section(
            "Comparability and missing contrasts",
            comparability,
            subsections=[
                Section(
                    "Simulated user, engine and timing per contrast",
                    "Who played the user (marked when it is the agent's own model), the vLLM versions and GPU "
                    "types of the arms' jobs where recorded (`job.json` info.engine), and, on an API backend, "
                    "whether the arms ran at overlapping times.",
                    tables["independence"] if not tables["independence"].empty else None,
                ),
                Section(
                    "Tasks scored on NL assertions (τ²)",
                    "Their reward rests on an LLM judge's verdicts (`nl_judge` in job.json says which backend).",
                    tables["nl_assertion_tasks"],
                )
                if not tables["nl_assertion_tasks"].empty
                else Section("Tasks scored on NL assertions (τ²)", "None in this sweep."),
            ],
        ),
        Section(
            "Success per variant",
            "Per (model, env, split, variant). success CI: percentile bootstrap over tasks. unscored_rate: "
            "conversations the agent cannot be scored on (user simulator, infrastructure, harness), over all "
            "conversations, as are the transfer and step-cap rates.",
            _columns(summary, overview),
            figure_paths["success"],
        ),
        Section(
            f"Every contrast: {KINDS[PRIMARY]}",
            "Holm within each kind over every contrast the sweep has, the declared family or not.\n\n"
            + METHOD,
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
                Section(
                    f"Against the placebo: {KINDS[VS_PLACEBO]}",
                    "Each emotion against the style placebo (formal, wordy, no emotion: conf/variant/verbose_formal.yaml) "
                    "on the same pairs; not declared as a primary hypothesis, so read as exploratory. Holm within this kind.",
                    _headline(deltas, VS_PLACEBO),
                ),
                Section(
                    f"Style placebo: {KINDS[STYLE]}",
                    "What a longer, formal user does without any emotion. Holm within this kind.",
                    _headline(deltas, STYLE),
                    subsections=[_style_match_section(sweep)],
                ),
                Section(
                    f"Cognitive: {KINDS[COGNITIVE]}",
                    "Cognitive variants (confusion) change what the user does (asks for explanations, misreads), not "
                    "only its tone: a family of their own, Holm within it, never pooled with the emotions.",
                    _headline(deltas, COGNITIVE),
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
            "difference (95% CI, sign-flip p); the worst-case bounds (worst_low: the arm's unscored as failures, "
            "the baseline's as successes; worst_high: the reverse), each with its interval; and, as a "
            "sensitivity that assumes both arms lose alike, delta with every unscored conversation a failure "
            "and a success (Holm-adjusted p). bounds_flag names their disagreement in sign or significance.",
            _columns(deltas, BOUNDS),
        ),
        fidelity_section(tables),
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
                    "so an arm cannot gain by losing its hard tasks to unscored endings. CI: bootstrap over tasks. "
                    "Over every task with all trials present in both arms: worst_low..worst_high cross-impute the "
                    "unscored (arm's as failures and baseline's as successes, then the reverse), each with its "
                    "interval (worst_ci_low..worst_ci_high spans both); delta_if_failure/_if_success impute "
                    "both arms alike (a sensitivity).",
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
            "Every simulated-user message on an active turn (from the onset on; the stop token removed) scored "
            "with VADER (compound −1..1 with a 95 % task-bootstrap CI where there are 10 tasks or more, "
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
