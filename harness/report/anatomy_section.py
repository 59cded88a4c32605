"""The report's "why the agent fails" sections: anatomy per arm, secondary contrasts, mediation, heterogeneity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.agent_acts import acts_by_arm, agreement_table, with_judged_acts
from harness.report.anatomy_figures import anatomy_figure
from harness.report.anatomy_tables import JUDGED_MEASURES, anatomy_by_arm, main_fault_shares, secondary_table
from harness.report.contrasts import Comparisons
from harness.report.heterogeneity import heterogeneity_tables
from harness.report.judgments import Judgments
from harness.report.mediation import DEFAULT_BIAS, mediation_table
from harness.report.render import Section

SECONDARY_COLUMNS = [
    "model", "env", "split", "contrast", "measure", "scale", "source", "tasks", "pairs", "baseline_rate",
    "variant_rate", "delta", "ci_low", "ci_high", "sim_ci_low", "sim_ci_high", "p_value", "p_holm", "note",
]  # fmt: skip

ANATOMY_TEXT = """Per conversation, from its record and the environment's ground truth (`harness/analysis/anatomy.py`; docs/report.md defines each): a missing write (a required state change never attempted), a wrong write (the required tool with other arguments), an extra write (a state change the task did not require), a concession (an extra write that gives the user something: refund, exchange, cancellation, compensation), a missing output, an unconfirmed write (no explicit yes from the user before a write the policy wants confirmed), authentication skipped, a premature transfer to a human, the step cap. Rates over scored conversations; a conversation may have several. The figure splits each arm's failures by their main fault: the first of concession, extra, wrong, missing write, missing output, transfer, step cap, unconfirmed write, skipped authentication that it has ("no fault found": a failure none of these explains, e.g. a write the scorer's database comparison rejects for a reason the anatomy does not see)."""

SECONDARY_TEXT = """Secondary outcomes: each measure compared as success is in the headline (pairs scored in both arms, 95% task-bootstrap CI, sign-flip p, simultaneous intervals), Holm across the contrasts of one kind for each measure. Rates are shares of conversations with at least one such fault; means are per conversation. Apologies and refusals are counted with a lexicon, a cheap proxy (source says so; the judge's reading of them, where a judge judged the agent's messages, is in the next section); gave_in_after_refusal: an extra write after a message that refused (the judge's refusals where it judged the conversation, source says so)."""

JUDGED_TEXT = """Secondary, judged by {judge}: the judge read every agent message with words for an apology, an empathy statement and a refusal, blind to the variant (judge prompt version 3 on). Per conversation, the number of messages with each act, compared as the lexicon's counts are (pairs scored in both arms and judged in both, task-bootstrap CI, sign-flip p), one Holm family per (measure, kind of contrast), named in holm_family, apart from the lexicon's. The per-arm table says how many conversations the judge judged, how many it could not (judge_errors: no valid answer; not_judged: no judgment; judged_without_agent_acts: judged under an earlier prompt), and the share with at least one act, beside the lexicon's share on the same conversations. The agreement table reads the same messages both ways: the lexicon does not tell an apology from empathy, so it is compared with the judge's either; κ with a 95% CI resampling conversations. A low κ says the lexicon rows above measure something else than the judge does."""


MEDIATION_TEXT = f"""EXPLORATORY. The share of each contrast's success effect that runs through each mechanism: pair differences of success regressed on the pair differences of every mechanism (0/1) together, so total = direct + Σ effect_on_mechanism × mechanism_on_success is the headline delta. Intervals: bootstrap over tasks. It assumes no unmeasured confounding of mechanism and success (given the arm and the pair), mechanisms that do not cause each other, and additive linear effects. Sensitivity: bias_to_zero is how far an unmeasured confounder must move mechanism_on_success to explain the indirect effect away; share_if_bias_{DEFAULT_BIAS:g} is the share if it moves it {DEFAULT_BIAS:g} towards zero."""

HETEROGENEITY_TEXT = """EXPLORATORY. Per primary contrast: the spread of per-task effects (SD, IQR), a test that every task has the same effect (the variance of task effects against redraws of each task's pairs from the pooled differences: needs several trials per task), the headline delta leaving each task out (range, and whether it keeps its sign), and the tasks where the arm loses most, linked to a side-by-side pair in the viewer."""


RETRIEVAL_TEXT = """τ³ banking: each failed conversation of a task that names its governing documents (τ²'s `required_documents`), by what the agent's searches brought back: none of them (never_retrieved), some (partly_retrieved), or all, and it acted against them (retrieved_but_failed). A document counts as retrieved when its id is in a tool result the agent got."""
RETRIEVAL_CLASSES = ("never_retrieved", "partly_retrieved", "retrieved_but_failed")


def retrieval_by_arm(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per arm: failed conversations by what retrieval tells of them (empty outside banking)."""
    if "retrieval_failure" not in conversations or not (conversations["retrieval_failure"] != "").any():
        return pd.DataFrame()
    rows = []
    for key, arm in conversations[conversations["scored"]].groupby(["model", "env", "split", "condition"]):
        failed = arm[arm["success"] == 0]
        counts = failed["retrieval_failure"].value_counts()
        rows.append(
            {
                **dict(zip(["model", "env", "split", "condition"], map(str, key), strict=True)),
                "failures": len(failed),
                **{c: int(counts.get(c, 0)) for c in RETRIEVAL_CLASSES},
            }
        )
    return pd.DataFrame(rows)


def _apart(table: pd.DataFrame, measures: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of other measures, then those of `measures`."""
    if table.empty:
        return table, table
    chosen = table["measure"].isin(measures)
    return table[~chosen].reset_index(drop=True), table[chosen].reset_index(drop=True)


@dataclass(frozen=True)
class AnatomyResults:
    tables: dict[str, pd.DataFrame]
    sections: list[Section]
    figures: list[Path]


def anatomy_results(
    comparisons: Comparisons, out: Path, tag: str, judgments: Judgments | None = None
) -> AnatomyResults:
    judge = None
    if judgments is not None:
        conversations, judge = with_judged_acts(comparisons.conversations, judgments)
        comparisons = comparisons.with_conversations(conversations)
    conversations, rng, options = comparisons.conversations, comparisons.rng, comparisons.options
    by_arm = anatomy_by_arm(conversations, rng, options.resamples)
    shares = main_fault_shares(conversations)
    secondary, judged_deltas = _apart(secondary_table(comparisons), {m.name for m in JUDGED_MEASURES})
    if not judged_deltas.empty:
        judged_deltas["holm_family"] = (
            f"secondary, judged by {judge}: " + judged_deltas["measure"] + " (within each kind)"
        )
    mediation = mediation_table(comparisons)
    heterogeneity, worst = heterogeneity_tables(comparisons)
    tables = {
        "anatomy_by_arm": by_arm,
        "anatomy_main_fault": shares,
        "secondary_deltas": secondary,
        "mediation": mediation,
        "heterogeneity": heterogeneity,
        "worst_tasks": worst,
    }
    retrieval = retrieval_by_arm(conversations)
    if not retrieval.empty:
        tables["retrieval_by_arm"] = retrieval
    judged_sections = []
    if judge is not None and judgments is not None:
        tables["agent_acts_by_arm"] = acts_by_arm(conversations, judgments, judge)
        tables["agent_acts_deltas"] = judged_deltas
        tables["agent_acts_agreement"] = agreement_table(conversations, rng, options.resamples)
        judged_sections.append(
            Section(
                "Secondary, judged: the agent's apologies, empathy and refusals",
                JUDGED_TEXT.format(judge=judge),
                tables["agent_acts_by_arm"],
                subsections=[
                    Section(
                        "Judged acts against the baseline",
                        "",
                        judged_deltas[[*SECONDARY_COLUMNS, "holm_family"]]
                        if not judged_deltas.empty
                        else None,
                    ),
                    Section(
                        "The judge and the lexicon on the same messages",
                        "",
                        tables["agent_acts_agreement"] if not tables["agent_acts_agreement"].empty else None,
                    ),
                ],
            )
        )
    figures = []
    if not by_arm.empty:
        figures.append(anatomy_figure(shares, by_arm, out / "failure_anatomy.png", f"Failure anatomy{tag}"))
    shown = secondary[SECONDARY_COLUMNS] if not secondary.empty else None
    section = Section(
        "Why the agent fails: failure anatomy per arm",
        ANATOMY_TEXT,
        by_arm if not by_arm.empty else None,
        figures[0] if figures else None,
        subsections=[
            *(
                [Section("Retrieval behind the failures (banking)", RETRIEVAL_TEXT, retrieval)]
                if not retrieval.empty
                else []
            ),
            Section("Secondary: anatomy and behaviour against the baseline", SECONDARY_TEXT, shown),
            *judged_sections,
            Section("Mediation (exploratory)", MEDIATION_TEXT, mediation if not mediation.empty else None),
            Section(
                "Per-task heterogeneity (exploratory)",
                HETEROGENEITY_TEXT,
                heterogeneity if not heterogeneity.empty else None,
                subsections=[Section("Tasks where the arm loses most", "", worst)] if not worst.empty else [],
            ),
        ],
    )
    return AnatomyResults(tables, [section], figures)
