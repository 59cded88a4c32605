"""Turns a finished (or partly finished) sweep directory into tables, figures and a report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import figures
from harness.report.affect import manipulation_check, score_user_turns
from harness.report.cost import cost_section, cost_table
from harness.report.judge_sections import judge_results
from harness.report.load import ReportError, Sweep, load_sweep
from harness.report.render import Section, plumbing_banner, to_html, to_markdown
from harness.report.tables import (
    CELL,
    affect_split_deltas,
    cell_summary,
    failure_examples,
    job_states,
    mixed_model,
    success_deltas,
    termination_deltas,
    termination_rates,
)

EXAMPLES_SHOWN = 10
"""Failure examples listed per condition in the report; the CSV has all of them."""


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    resamples: int = 2000
    mixed: bool = True


@dataclass(frozen=True)
class Report:
    directory: Path
    markdown: Path
    html: Path
    tables: dict[str, pd.DataFrame]
    test_backends: list[str]
    """Backends marked as a plumbing check (oracle, scripted); empty for a model result."""
    figures: list[Path]


METHOD = """Success is reward 1 on a scored conversation. Conversations ended by a failure of the simulated user, the infrastructure or the harness are not scored; they are counted as unscored_errors and left out of every success figure. pass^k is τ-bench's: the mean over tasks of C(c, k) / C(n, k), over tasks whose n trials were all scored.

Each variant is compared with control on the same (run seed, task, trial): the seeds are identical across variants, so both sides of a pair saw the same task and sampling seeds. delta = variant success rate − control success rate over the pairs scored in both. The 95% CI is a percentile bootstrap that resamples tasks (all trials of a task move together). p is a two-sided paired permutation test that flips the sign of each task's summed difference (exact up to 12 tasks with a difference, else 20,000 random flips); p_holm corrects it with Holm's method across the variants of one (model, env, split). variant_only / control_only count pairs where only that side succeeded; mcnemar_p is the exact McNemar test on them, given only with one trial per task (with more, the pairs of a task are not independent)."""


def _split_title(value: str) -> str:
    return value.replace("_", " ")


def _columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]] if not frame.empty else frame


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


def _occurring(deltas: pd.DataFrame) -> pd.DataFrame:
    if deltas.empty:
        return deltas
    return deltas[(deltas["control_rate"] > 0) | (deltas["variant_rate"] > 0)]


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
    conversations = sweep.conversations

    summary = cell_summary(conversations, rng, settings.resamples)
    deltas = success_deltas(conversations, rng, settings.resamples)
    affect_deltas = affect_split_deltas(conversations, rng, settings.resamples)
    terminations = termination_rates(conversations)
    termination_changes = termination_deltas(conversations, rng, settings.resamples)
    manipulation = manipulation_check(score_user_turns(sweep.user_turns))
    examples = failure_examples(conversations)
    mixed, mixed_note = (
        mixed_model(conversations) if settings.mixed else (pd.DataFrame(), "every family (--no-mixed)")
    )
    tables = {
        "jobs": job_states(sweep.jobs),
        "summary": summary,
        "deltas": deltas,
        "deltas_by_instruction_affect": affect_deltas,
        "terminations": terminations,
        "termination_deltas": termination_changes,
        "manipulation_check": manipulation,
        "failure_examples": examples,
        "mixed_model": mixed,
        "cost": cost_table(sweep_dir),
    }
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)

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
    if not manipulation.empty:
        figure_paths["manipulation"] = figures.manipulation_heatmap(
            manipulation, out / "manipulation_check.png", f"Manipulation check{tag}"
        )

    sections = _sections(sweep, tables, figure_paths, mixed_note, settings)
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
    return Report(out, markdown, page, tables, test_backends, [*figure_paths.values(), *judged.figures])


def _sections(
    sweep: Sweep,
    tables: dict[str, pd.DataFrame],
    figure_paths: dict[str, Path],
    mixed_note: str,
    settings: Settings,
) -> list[Section]:
    summary = tables["summary"]
    delta_columns = [
        "model", "env", "split", "condition", "tasks", "pairs", "control_rate", "variant_rate", "delta",
        "ci_low", "ci_high", "p_value", "p_holm", "variant_only", "control_only", "mcnemar_p",
    ]  # fmt: skip
    overview = [
        *CELL, "tasks", "trials", "conversations", "scored", "unscored_errors", "success_rate",
        "success_ci_low", "success_ci_high", "transfer_rate", "step_cap_rate",
    ]  # fmt: skip
    behaviour = [
        *CELL, "user_turns", "agent_steps", "tool_calls", "tool_errors", "user_words_per_turn",
        "agent_words_per_turn", "duration_s", "agent_tokens", "user_tokens",
    ]  # fmt: skip
    examples = tables["failure_examples"]
    shown = examples.groupby(CELL, sort=False).head(EXAMPLES_SHOWN) if not examples.empty else examples
    mixed_text = (
        "Logistic model of success with a random intercept per task (statsmodels BinomialBayesMixedGLM, "
        "variational Bayes); log-odds of each variant against control with ±1.96 posterior sd."
    )
    if mixed_note:
        mixed_text += f"\n\nNot fitted for: {mixed_note}."
    return [
        _job_section(sweep),
        Section(
            "Success per variant",
            "Per (model, env, split, variant). success CI: percentile bootstrap over tasks. "
            "transfer and step-cap rates are over all conversations.",
            _columns(summary, overview),
            figure_paths["success"],
        ),
        Section(
            "Variant minus control",
            METHOD
            if not tables["deltas"].empty
            else "No comparison: no (model, env, split) has both control and another variant.",
            _columns(tables["deltas"], delta_columns),
        ),
        Section(
            "pass^k",
            "pass^k for k = 1..trials, and the success rate of each trial averaged over trials ± its "
            "standard deviation across trials.",
            _mean_std(summary),
            figure_paths["pass_k"],
        ),
        Section(
            "Split by affect already in the τ-bench instruction",
            "Some τ-bench instructions already describe the user's mood (for example 'you are impatient'). "
            "The same paired deltas, within tasks whose instruction has such words and within the rest. "
            "Holm correction within each subset.",
            _columns(tables["deltas_by_instruction_affect"], ["instruction", *delta_columns]),
        ),
        Section(
            "How conversations end",
            "Share of conversations per termination reason, then the paired change against control "
            "in how often each variant ends in a transfer to a human, the step cap or an agent error "
            "(all conversations, scored or not).",
            tables["terminations"],
            subsections=[
                Section(
                    "Change against control",
                    "Rows where neither side ever ended that way are left out; termination_deltas.csv has all.",
                    _columns(_occurring(tables["termination_deltas"]), ["termination", *delta_columns]),
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
            "Manipulation check: does the simulated user sound like its variant?",
            "Every simulated-user message (the stop token removed) scored with VADER (compound −1..1, "
            "negative and positive shares) and with a small marker lexicon per emotion (markers per 100 "
            "words; harness/report/affect.py). A variant whose row looks like control did not take effect. "
            "The heatmap shows the difference from control.",
            tables["manipulation_check"],
            figure_paths.get("manipulation"),
        ),
        Section(
            "Mixed-effects model",
            mixed_text,
            tables["mixed_model"] if not tables["mixed_model"].empty else None,
        ),
        Section(
            "Failures where control succeeded",
            f"Scored conversations a variant failed where control succeeded on the same task and trial; "
            f"job directories are relative to the sweep. {len(examples)} in all, at most {EXAMPLES_SHOWN} "
            "per variant shown here; failure_examples.csv lists all.",
            shown,
        ),
        cost_section(tables["cost"]),
        Section(
            "Settings",
            f"bootstrap resamples: {settings.resamples}; random seed: {settings.seed}. "
            "Tables as CSV next to this file.",
        ),
    ]
