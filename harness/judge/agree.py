"""`python -m harness.judge.agree RATINGS.json [...] --key KEY.json`: human raters against each other and the judge.

Reads the files the rating page saved (one per rater, all of one sample) and the sample's key, and
reports, each with a 95 % bootstrap interval over conversations:

- inter-rater agreement: Krippendorff's α on the turns' emotion (nominal) and intensity (ordinal)
  and on the conversations' fidelity (played its part or not; nominal), over items rated twice or more;
- judge–human agreement, for every judge set of the sweep: α between the judge and the human
  majority (emotion: the most frequent label, turns with a tie left out; intensity: the median;
  fidelity: the majority, ties left out), and per-class precision, recall and F1 of the judge's
  emotion against the human majority.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import ExitCode
from harness.judge.schema import EMOTIONS, LEGACY_LABELS
from harness.report.reliability import Level, alpha_with_ci, cluster_bootstrap, f1_scores
from harness.store import JobDir
from harness.store.judgments import read_judgments

RATINGS_FORMAT = "tau-emotion-ratings"
INTENSITIES = 4


class RatingsError(ValueError):
    """A ratings or key file that cannot be used (its path and the reason)."""


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise RatingsError(f"{what} {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RatingsError(f"{what} {path} is not readable JSON: {error}") from None
    if not isinstance(value, dict):
        raise RatingsError(f"{what} {path} is not a JSON object")
    return value


def read_ratings(paths: list[Path], key: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(turn ratings: item, turn, rater, emotion, intensity; fidelity ratings: item, rater, faithful)."""
    turns, fidelity = [], []
    raters: set[str] = set()
    for path in paths:
        data = _read(path, "ratings file")
        if data.get("format") != RATINGS_FORMAT:
            raise RatingsError(
                f"ratings file {path} is not a saved rating page (format {data.get('format')!r})"
            )
        if data.get("sample") != key["sample"]:
            raise RatingsError(
                f"ratings file {path} rates sample {data.get('sample')!r}, the key is of sample {key['sample']!r}"
            )
        rater = str(data.get("rater") or path.stem)
        if rater in raters:
            rater = f"{rater} ({path.name})"
        raters.add(rater)
        for rating in data.get("ratings") or []:
            item = rating.get("item")
            if item not in key["items"]:
                raise RatingsError(f"ratings file {path}: item {item!r} is not in the sample's key")
            for turn in rating.get("turns") or []:
                if turn.get("emotion") in EMOTIONS or turn.get("intensity") is not None:
                    turns.append({"item": item, "turn": int(turn["turn"]), "rater": rater,
                                  "emotion": turn.get("emotion"), "intensity": turn.get("intensity")})  # fmt: skip
            faithful = (rating.get("fidelity") or {}).get("faithful")
            if faithful is not None:
                fidelity.append({"item": item, "rater": rater, "faithful": bool(faithful)})
    return pd.DataFrame(turns, columns=["item", "turn", "rater", "emotion", "intensity"]), pd.DataFrame(
        fidelity, columns=["item", "rater", "faithful"]
    )


def _matrix(
    frame: pd.DataFrame, unit: list[str], value: str, codes: dict[Any, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(raters × units codes, each unit's conversation) from long ratings."""
    if frame.empty:
        return np.empty((0, 0)), np.empty(0)
    coded = frame.assign(code=frame[value].map(lambda v: codes.get(v, np.nan)))
    wide = coded.pivot_table(index="rater", columns=unit, values="code", aggfunc="first")
    columns = wide.columns.to_frame(index=False)
    return wide.to_numpy(float), columns["item"].to_numpy() if "item" in columns else columns.iloc[
        :, 0
    ].to_numpy()


def _alpha_row(name: str, matrix: np.ndarray, clusters: np.ndarray, level: Level, categories: int,
               rng: np.random.Generator, resamples: int) -> dict[str, Any]:  # fmt: skip
    rated_twice = int(np.sum(np.sum(~np.isnan(matrix), axis=0) >= 2)) if matrix.size else 0
    row: dict[str, Any] = {"measure": name, "level": level, "units_rated_twice": rated_twice}
    if not matrix.size:
        return {**row, "alpha": np.nan, "alpha_ci_low": np.nan, "alpha_ci_high": np.nan}
    return {
        **row,
        **alpha_with_ci(matrix, clusters, level, categories, rng, resamples),
    }


EMOTION_CODES: dict[Any, int] = {e: i for i, e in enumerate(EMOTIONS)}
INTENSITY_CODES: dict[Any, int] = {i: i for i in range(INTENSITIES)}
BOOL_CODES: dict[Any, int] = {False: 0, True: 1}
TURN_MEASURES: tuple[tuple[str, dict[Any, int], Level, int], ...] = (
    ("emotion", EMOTION_CODES, "nominal", len(EMOTIONS)),
    ("intensity", INTENSITY_CODES, "ordinal", INTENSITIES),
)
"""What each turn is rated on: the measure, its codes, Krippendorff's level and the number of categories."""


def inter_rater(
    turns: pd.DataFrame, fidelity: pd.DataFrame, rng: np.random.Generator, resamples: int
) -> pd.DataFrame:
    rows = []
    for name, codes, level, categories in TURN_MEASURES:
        matrix, clusters = _matrix(turns.dropna(subset=[name]), ["item", "turn"], name, codes)
        rows.append(_alpha_row(name, matrix, clusters, level, categories, rng, resamples))
    matrix, clusters = _matrix(fidelity, ["item"], "faithful", BOOL_CODES)
    rows.append(_alpha_row("fidelity", matrix, clusters, "nominal", 2, rng, resamples))
    return pd.DataFrame(rows)


def _majority(values: pd.Series) -> Any:
    counts = Counter(values.dropna())
    if not counts:
        return None
    ranked = counts.most_common()
    return None if len(ranked) > 1 and ranked[0][1] == ranked[1][1] else ranked[0][0]


def human_majority(turns: pd.DataFrame, fidelity: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    by_turn = turns.groupby(["item", "turn"])
    majority_turns = pd.DataFrame(
        {"emotion": by_turn["emotion"].agg(_majority), "intensity": by_turn["intensity"].median(),
         "raters": by_turn["rater"].nunique()}
    ).reset_index()  # fmt: skip
    majority_fidelity = (
        fidelity.groupby("item")["faithful"].agg(_majority).rename("faithful").reset_index()
        if not fidelity.empty
        else pd.DataFrame(columns=["item", "faithful"])
    )
    return majority_turns, majority_fidelity


def judge_verdicts(key: dict[str, Any], judge: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judge set's verdicts on the sample's conversations (this very attempt of each)."""
    sweep = Path(key["sweep_dir"])
    turns, fidelity = [], []
    cache: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
    for item, facts in key["items"].items():
        job = facts["job"]
        if job not in cache:
            cache[job] = read_judgments(JobDir(sweep / job).judgments(judge))
        judgment = cache[job].get((int(facts["task_id"]), int(facts["trial"])))
        if judgment is None or judgment.get("turns") is None:
            continue
        if judgment.get("conversation_started_at") != facts.get("conversation_started_at"):
            continue
        for turn in judgment["turns"]:
            turns.append({"item": item, "turn": int(turn["turn"]),
                          "emotion": LEGACY_LABELS.get(turn["emotion"], turn["emotion"]),
                          "intensity": int(turn["intensity"])})  # fmt: skip
        fidelity.append({"item": item, "faithful": not judgment.get("fidelity")})
    return pd.DataFrame(turns, columns=["item", "turn", "emotion", "intensity"]), pd.DataFrame(
        fidelity, columns=["item", "faithful"]
    )


def _two_rater(first: pd.Series, second: pd.Series, codes: dict[Any, int]) -> np.ndarray:
    return np.vstack([s.map(lambda v: codes.get(v, np.nan)).to_numpy(float) for s in (first, second)])


def judge_against_humans(
    key: dict[str, Any], majority_turns: pd.DataFrame, majority_fidelity: pd.DataFrame,
    rng: np.random.Generator, resamples: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(α of each judge set against the human majority, per-class F1 of its emotion against it)."""
    sweep = Path(key["sweep_dir"])
    judges = sorted({j for facts in key["items"].values() for j in JobDir(sweep / facts["job"]).judges()})
    alphas, classes = [], []
    for judge in judges:
        judged_turns, judged_fidelity = judge_verdicts(key, judge)
        both = majority_turns.merge(judged_turns, on=["item", "turn"], suffixes=("_human", "_judge"))
        for name, codes, level, categories in TURN_MEASURES:
            kept = both.dropna(subset=[f"{name}_human"])
            human = kept[f"{name}_human"]
            if name == "intensity":
                human = human.round().astype(int)  # the median of an even number of raters may fall between
            matrix = _two_rater(human, kept[f"{name}_judge"], codes)
            alphas.append({"judge": judge, "turns_or_conversations": len(kept),
                           **_alpha_row(name, matrix, kept["item"].to_numpy(), level, categories, rng, resamples)})  # fmt: skip
        fid = majority_fidelity.dropna(subset=["faithful"]).merge(
            judged_fidelity, on="item", suffixes=("_human", "_judge")
        )
        matrix = _two_rater(
            fid["faithful_human"].astype(bool), fid["faithful_judge"].astype(bool), BOOL_CODES
        )
        alphas.append({"judge": judge, "turns_or_conversations": len(fid),
                       **_alpha_row("fidelity", matrix, fid["item"].to_numpy(), "nominal", 2, rng, resamples)})  # fmt: skip
        labelled = both.dropna(subset=["emotion_human"])
        truth, predicted = labelled["emotion_human"].to_numpy(), labelled["emotion_judge"].to_numpy()
        clusters = labelled["item"].to_numpy()
        for label in [e for e in EMOTIONS if e in set(truth) | set(predicted)]:
            precision, recall, f1 = f1_scores(truth, predicted, label)
            low, high = cluster_bootstrap(clusters, _f1_of(truth, predicted, label), rng, resamples)
            classes.append({"judge": judge, "emotion": label, "human_turns": int((truth == label).sum()),
                            "judge_turns": int((predicted == label).sum()), "precision": precision,
                            "recall": recall, "f1": f1, "f1_ci_low": low, "f1_ci_high": high})  # fmt: skip
    return pd.DataFrame(alphas), pd.DataFrame(classes)


def _f1_of(truth: np.ndarray, predicted: np.ndarray, label: str) -> Callable[[np.ndarray], float]:
    return lambda index: f1_scores(truth[index], predicted[index], label)[2]


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    lines = [
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.judge.agree", description=__doc__.split("\n")[0])
    parser.add_argument(
        "ratings", type=Path, nargs="+", help="the JSON files the rating page saved, one per rater"
    )
    parser.add_argument(
        "--key", type=Path, required=True, help="the sample's key.json (harness.judge.sample)"
    )
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="a directory for the tables as CSV")
    args = parser.parse_args(argv)
    try:
        key = _read(args.key, "key file")
        if "items" not in key or "sample" not in key:
            raise RatingsError(f"key file {args.key} is not a sample key (no items or sample)")
        turns, fidelity = read_ratings(args.ratings, key)
    except RatingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    rng = np.random.default_rng(args.seed)
    raters = sorted(set(turns["rater"]) | set(fidelity["rater"]))
    print(
        f"sample {key['sample']}: {len(raters)} raters ({', '.join(raters)}), {turns[['item', 'turn']].drop_duplicates().shape[0]} turns and {fidelity['item'].nunique()} conversations rated"
    )
    inter = inter_rater(turns, fidelity, rng, args.resamples)
    majority_turns, majority_fidelity = human_majority(turns, fidelity)
    judge_alpha, judge_f1 = judge_against_humans(key, majority_turns, majority_fidelity, rng, args.resamples)
    print("\n## Inter-rater agreement (Krippendorff's α, 95 % bootstrap CI over conversations)\n")
    print(
        _markdown(inter)
        if len(raters) > 1
        else "One rater only: inter-rater α needs two or more rating files."
    )
    print("\n## Judge against the human majority (α)\n")
    print(_markdown(judge_alpha))
    print("\n## Judge's emotion against the human majority, per class\n")
    print(_markdown(judge_f1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        inter.to_csv(args.out / "inter_rater.csv", index=False)
        judge_alpha.to_csv(args.out / "judge_human_alpha.csv", index=False)
        judge_f1.to_csv(args.out / "judge_human_f1.csv", index=False)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
