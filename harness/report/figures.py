"""The report's figures as PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.episode.variants import INTENSITIES
from harness.report.affect import SCORES
from harness.report.design import CONTROL, FAMILY, KNOWN_ORDER, NEUTRAL, condition_order


def condition_color(condition: str) -> str:
    """The same colour for a variant in every panel; control is grey, neutral black."""
    base = condition.split("@")[0]
    if base == CONTROL:
        return "0.45"
    if base == NEUTRAL:
        return "0.1"
    index = KNOWN_ORDER.index(base) - 2 if base in KNOWN_ORDER else 4 + sum(map(ord, base)) % 5
    return f"C{index}"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _families(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [("/".join(map(str, key)), group) for key, group in frame.groupby(FAMILY)]


def _grid(plt: Any, panels: int, width: float = 4.6, height: float = 3.4) -> tuple[Any, list[Any]]:
    columns = min(panels, 3)
    rows = -(-panels // columns)
    size = (max(width * columns, 7.5), height * rows + 0.6)
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    flat = list(axes.flat)
    for extra in flat[panels:]:
        extra.set_visible(False)
    return figure, flat[:panels]


def _save(plt: Any, figure: Any, path: Path, title: str) -> Path:
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def success_by_variant(summary: pd.DataFrame, path: Path, title: str) -> Path:
    plt = _pyplot()
    families = _families(summary)
    figure, axes = _grid(plt, len(families))
    for axis, (label, group) in zip(axes, families, strict=True):
        rate = group["success_rate"].to_numpy()
        errors = np.vstack([rate - group["success_ci_low"], group["success_ci_high"] - rate])
        colors = [condition_color(c) for c in group["condition"]]
        axis.bar(group["condition"], rate, yerr=np.nan_to_num(errors), capsize=4, color=colors)
        axis.set_ylim(0, 1.05)
        axis.set_ylabel("success rate (95% CI by task)")
        axis.set_title(label, fontsize=10)
        axis.tick_params(axis="x", rotation=30)
    return _save(plt, figure, path, title)


def pass_k_curves(summary: pd.DataFrame, path: Path, title: str) -> Path:
    plt = _pyplot()
    families = _families(summary)
    figure, axes = _grid(plt, len(families))
    columns = sorted((c for c in summary.columns if c.startswith("pass^")), key=lambda c: int(c[5:]))
    for axis, (label, group) in zip(axes, families, strict=True):
        spread = 0.04 * (len(group) - 1)
        for i, (_, row) in enumerate(group.iterrows()):
            values = [row[c] for c in columns]
            # a small horizontal offset per variant keeps identical curves visible
            offset = i * 0.04 - spread / 2
            ks = [int(c[5:]) + offset for c, v in zip(columns, values, strict=True) if pd.notna(v)]
            vs = [v for v in values if pd.notna(v)]
            dashed = "--" if row["condition"] == "control" else "-"
            style = {"color": condition_color(row["condition"]), "linestyle": dashed}
            axis.plot(ks, vs, marker="o", label=row["condition"], **style)
        axis.set_ylim(-0.03, 1.05)
        axis.set_xlabel("k")
        axis.set_ylabel("pass^k")
        axis.set_xticks(range(1, max(len(columns), 1) + 1))
        axis.set_xlim(0.5, max(len(columns), 1) + 0.5)
        axis.set_title(label, fontsize=10)
        axis.legend(fontsize=8)
    return _save(plt, figure, path, title)


def manipulation_heatmap(manipulation: pd.DataFrame, path: Path, title: str) -> Path:
    """Each score's deviation from its control mean in the same (model, env), in the score's units."""
    plt = _pyplot()
    rows = []
    labels = []
    for key, group in manipulation.groupby(FAMILY):
        control = group[group["condition"] == "control"]
        base = control[SCORES].iloc[0] if len(control) else group[SCORES].mean() * 0
        for condition in condition_order(list(group["condition"])):
            values = group[group["condition"] == condition][SCORES].iloc[0]
            rows.append((values - base).to_numpy(dtype=float))
            labels.append(f"{'/'.join(map(str, key))} · {condition}")
    matrix = np.vstack(rows)
    scale = np.nanmax(np.abs(matrix), axis=0)
    scale[~np.isfinite(scale) | (scale == 0)] = 1
    figure, axis = plt.subplots(figsize=(1.3 * len(SCORES) + 3, 0.42 * len(labels) + 1.8))
    axis.imshow(matrix / scale, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    axis.set_xticks(range(len(SCORES)), [s.replace("_", " ") for s in SCORES], rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    for (r, c), value in np.ndenumerate(matrix):
        dark = abs(value / scale[c]) > 0.6
        axis.text(
            c, r, f"{value:+.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black"
        )
    axis.set_title("difference from control (colour scaled per column)", fontsize=9)
    return _save(plt, figure, path, title)


def turns_by_variant(conversations: pd.DataFrame, path: Path, title: str) -> Path:
    plt = _pyplot()
    families = _families(conversations)
    figure, axes = _grid(plt, len(families))
    for axis, (label, group) in zip(axes, families, strict=True):
        conditions = condition_order(list(group["condition"]))
        data = [group[group["condition"] == c]["user_turns"].to_numpy() for c in conditions]
        axis.boxplot(data, showmeans=True)
        axis.set_xticks(range(1, len(conditions) + 1), conditions, rotation=30)
        axis.set_ylabel("user turns per conversation")
        axis.set_title(label, fontsize=10)
    return _save(plt, figure, path, title)


def dose_response(points: pd.DataFrame, trends: pd.DataFrame, path: Path, title: str) -> Path:
    """Success against dose per emotion (neutral = 0), with 95% CIs by task and the fitted trend."""
    plt = _pyplot()
    families = _families(points)
    figure, axes = _grid(plt, len(families))
    fits = trends.set_index([*FAMILY, "emotion"]) if not trends.empty else trends
    labels = ["neutral", *INTENSITIES]
    for axis, (label, group) in zip(axes, families, strict=True):
        for i, (emotion, rows) in enumerate(group.groupby("emotion", sort=False)):
            rows = rows.sort_values("dose")
            x = rows["dose"].to_numpy(float) + (i - 1.5) * 0.04  # keeps overlapping points apart
            rate = rows["success_rate"].to_numpy()
            errors = np.vstack([rate - rows["ci_low"], rows["ci_high"] - rate])
            color = condition_color(str(emotion))
            axis.errorbar(x, rate, yerr=np.nan_to_num(errors), fmt="o", capsize=3, color=color, label=emotion)
            key = (*rows.iloc[0][FAMILY], emotion)
            if not fits.empty and key in fits.index and np.isfinite(fits.loc[key, "slope"]):
                fit = fits.loc[key]
                line = np.array([rows["dose"].min(), rows["dose"].max()], dtype=float)
                axis.plot(line, fit["intercept"] + fit["slope"] * line, "--", color=color, linewidth=1)
        axis.set_xticks(range(len(labels)), labels)
        axis.set_ylim(-0.03, 1.05)
        axis.set_xlabel("dose (intensity)")
        axis.set_ylabel("success rate (95% CI by task)")
        axis.set_title(label, fontsize=10)
        axis.legend(fontsize=8)
    return _save(plt, figure, path, title)


def contrast_forest(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Each contrast's delta with its 95% CI (thick) and simultaneous CI (thin), in points; hollow where the bounds disagree."""
    plt = _pyplot()
    rows = table[table["delta"].notna()] if "delta" in table else table
    figure, axis = plt.subplots(figsize=(8, 0.38 * max(len(rows), 1) + 1.6))
    y = np.arange(len(rows))[::-1]
    flags = [bool(f) and isinstance(f, str) for f in rows.get("bounds_flag", pd.Series([""] * len(rows)))]
    labels = [
        f"{r.model}/{r.env} · {r.contrast}{' (bounds disagree)' if flag else ''}"
        for r, flag in zip(rows.itertuples(), flags, strict=True)
    ]
    for position, row, flag in zip(y, rows.itertuples(), flags, strict=True):
        color = condition_color(str(row.condition))
        axis.plot([100 * row.sim_ci_low, 100 * row.sim_ci_high], [position] * 2, color=color, linewidth=1)
        axis.plot([100 * row.ci_low, 100 * row.ci_high], [position] * 2, color=color, linewidth=4, alpha=0.6)
        # hollow: the unscored conversations could change the conclusion
        axis.plot(100 * row.delta, position, "o", color=color, markerfacecolor="white" if flag else color)
    axis.axvline(0, color="0.5", linewidth=0.8)
    axis.set_yticks(y, labels, fontsize=8)
    axis.set_xlabel("difference in success (points): 95% CI thick, simultaneous CI thin")
    return _save(plt, figure, path, title)
