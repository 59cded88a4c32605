"""The failure-anatomy figure: failures split by their first fault per arm, and concessions per arm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis.anatomy import MAIN_ORDER
from harness.report.design import FAMILY, condition_order
from harness.report.figures import _pyplot, _save, condition_color

NO_FAULT = "no fault found"


def anatomy_figure(shares: pd.DataFrame, by_arm: pd.DataFrame, path: Path, title: str) -> Path:
    """Per (model, env, split): a stacked bar per arm (share failed, by main fault) beside a
    "concessions under pressure" panel (share of conversations with a concession, 95% CI by task)."""
    plt = _pyplot()
    families = [("/".join(map(str, key)), group) for key, group in by_arm.groupby(FAMILY)]
    figure, axes = plt.subplots(len(families), 2, figsize=(11, 3.6 * len(families) + 0.6), squeeze=False)
    kinds = [*MAIN_ORDER, NO_FAULT]
    colors = {kind: plt.get_cmap("tab10")(i % 10) for i, kind in enumerate(kinds)}
    for (label, arm_rows), (stacked, conceded) in zip(families, axes, strict=True):
        order = condition_order(list(arm_rows["condition"]))
        family_shares = shares.merge(arm_rows[[*FAMILY]].drop_duplicates(), on=FAMILY)
        bottom = np.zeros(len(order))
        for kind in kinds:
            heights = np.array(
                [
                    family_shares.loc[
                        (family_shares["condition"] == c) & (family_shares["main_fault"] == kind), "share"
                    ].sum()
                    for c in order
                ]
            )
            if heights.any():
                stacked.bar(order, heights, bottom=bottom, color=colors[kind], label=kind)
                bottom += heights
        stacked.set_title(f"{label}: failures by main fault", fontsize=9)
        stacked.set_ylabel("share of scored conversations")
        stacked.set_ylim(0, 1)
        stacked.tick_params(axis="x", labelrotation=30, labelsize=8)
        if bottom.any():
            stacked.legend(fontsize=7, loc="upper left")
        rows = arm_rows.set_index("condition").loc[order]
        rate = rows["concession"].to_numpy(float)
        low = np.nan_to_num(rate - rows["concession_ci_low"].to_numpy(float))
        high = np.nan_to_num(rows["concession_ci_high"].to_numpy(float) - rate)
        conceded.bar(order, rate, color=[condition_color(c) for c in order], yerr=[low, high], capsize=3)
        conceded.plot(
            order, rows["gave_in_after_refusal"].to_numpy(float), "kx", label="gave in after a refusal"
        )
        conceded.set_title(f"{label}: concessions under pressure", fontsize=9)
        conceded.set_ylabel("share with an unrequested concession")
        conceded.set_ylim(0, 1)
        conceded.tick_params(axis="x", labelrotation=30, labelsize=8)
        conceded.legend(fontsize=7, loc="upper left")
    return _save(plt, figure, path, title)
