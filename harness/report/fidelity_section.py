"""The report's section on the simulated user's deterministic fidelity (tables from `harness.report.fidelity`)."""

from __future__ import annotations

import pandas as pd

from harness.report.fidelity import OUTCOMES
from harness.report.render import Section

TEXT = (
    "Read from each record, without a judge: for every identifying fact of the instruction (names, zip "
    "codes, emails, user, order and reservation ids) whose kind the agent asked for, whether the user's "
    "messages hold it (given correctly), hold another value of that kind (given wrong) or neither "
    "(withheld); whether one of the domain's identity tools succeeded (authenticated); whether the user "
    "stopped while the database goal was unmet; and whether the user stated an identifying value that "
    "neither the instruction nor an earlier message holds (invented). These are outcomes of the arm, "
    "compared like success: paired delta over the pairs where both sides are known, 95% bootstrap CI over "
    "tasks, sign-flip p, Holm within each outcome (family `fidelity: <outcome>`) — exploratory, not in the "
    "primary family. Outcomes: " + "; ".join(f"{name}: {text}" for name, text in OUTCOMES.items()) + "."
)
BOUNDS_TEXT = (
    "Success with every conversation that has a fidelity failure (an asked fact wrong or withheld, an "
    "invented fact) or is unscored treated as unknown, filled in the worst case each way: worst_low counts "
    "the arm's as failures and the baseline's as successes, worst_high the reverse; each with its 95% "
    "bootstrap CI. A success difference is robust to fidelity failures only when both intervals exclude 0 "
    "on the same side. This replaces restricting the comparison to faithful pairs, which selects on an "
    "outcome of the arm."
)


def fidelity_section(tables: dict[str, pd.DataFrame]) -> Section:
    rates, deltas, bounds = tables["fidelity_rates"], tables["fidelity_deltas"], tables["fidelity_bounds"]
    return Section(
        "Fidelity of the simulated user, as outcomes (deterministic)",
        TEXT,
        rates if not rates.empty else None,
        subsections=[
            Section("Paired fidelity deltas (exploratory)", "", deltas if not deltas.empty else None),
            Section(
                "Success, worst case for fidelity failures", BOUNDS_TEXT, bounds if not bounds.empty else None
            ),
        ],
    )
