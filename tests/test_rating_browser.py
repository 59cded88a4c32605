"""The human validation loop for real: a toy oracle sweep judged by two scripted judges, a blinded sample,
its rating page filled in and saved by two raters in headless chromium, and `harness.judge.agree` on the
saved files."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.judge import agree, sample
from tests.judge_support import SCRIPTED_JUDGE, judge_cli, oracle_sweep
from tests.viewer_support import chromium_or_skip, launch_chromium

pytestmark = pytest.mark.browser
VARIANTS = ("control", "neutral", "anger", "frustration")
SECOND_JUDGE = ["backend=scripted_judge_b", "model=oracle", "family=scripted-b", "wandb.mode=disabled"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    chromium_or_skip()
    root = tmp_path_factory.mktemp("rating")
    sweep = root / "sweep"
    oracle_sweep(sweep, VARIANTS, trials=3)
    for judge in (SCRIPTED_JUDGE, SECOND_JUDGE):
        result = judge_cli([str(sweep), *judge])
        assert result.returncode == 0, result.stderr
    assert sample.main([str(sweep), "--n", "8", "--out", str(root / "rating")]) == 0
    return root / "rating", json.loads((root / "rating" / "key.json").read_text())


@pytest.fixture(scope="module")
def browser(drawn: tuple[Path, dict[str, Any]]) -> Iterator[Any]:
    yield from launch_chromium()


def test_the_sample_is_stratified_and_blinded(drawn: tuple[Path, dict[str, Any]]) -> None:
    out, key = drawn
    assert key["strata"] == {
        f"{v}/{'medium' if v in ('anger', 'frustration') else 'None'}/success": 2 for v in VARIANTS
    }
    page_data = (out / "page" / "sample.js").read_text()
    items = json.loads(page_data.removeprefix("window.RATING_SAMPLE=").rstrip().removesuffix(";"))["items"]
    shown = json.dumps(items)
    for facts in key["items"].values():
        assert facts["job"] not in page_data and facts["variant"] not in shown
    assert "variant" not in shown and "persona" not in shown
    assert not (out / "page" / "key.json").exists()
    assert sorted(i["id"] for i in items) == sorted(key["items"])


def rate(browser: Any, out: Path, rater: str, label: Any, download_dir: Path) -> Path:
    """Fill every control of the page as `label(variant, turn) -> (emotion, intensity, faithful)` says, save."""
    _, key = out, json.loads((out / "key.json").read_text())
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((out / "page" / "index.html").as_uri())
    page.fill("#rater", rater)
    for item, facts in key["items"].items():
        for turn in facts["turns"]:
            emotion, intensity, _ = label(facts["variant"], turn)
            page.select_option(f'select.emotion[data-item="{item}"][data-turn="{turn}"]', emotion)
            page.select_option(f'select.intensity[data-item="{item}"][data-turn="{turn}"]', str(intensity))
        faithful = label(facts["variant"], 0)[2]
        page.check(f'input.faithful[data-item="{item}"][value="{"yes" if faithful else "no"}"]')
        if not faithful:
            page.check(f'input.flag[data-item="{item}"][data-kind="goal"]')
    assert page.text_content("#progress") == f"{len(key['items'])} of {len(key['items'])} conversations rated"
    page.reload()  # the answers survive a reload (localStorage)
    first = next(iter(key["items"]))
    assert page.input_value(f'select.emotion[data-item="{first}"][data-turn="0"]') != ""
    with page.expect_download() as download:
        page.click("#save")
    path = download_dir / f"{rater}.json"
    download.value.save_as(path)
    page.close()
    assert errors == []
    return path


def test_two_raters_round_trip_into_agree(
    drawn: tuple[Path, dict[str, Any]], browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, key = drawn

    def first(variant: str, turn: int) -> tuple[str, int, bool]:
        return ("anger", 2, True) if variant == "anger" else ("none", 0, True)

    def second(variant: str, turn: int) -> tuple[str, int, bool]:
        if variant == "frustration":
            return "frustration", 1, False  # disagrees with the first rater on frustration's conversations
        return first(variant, turn)

    files = [rate(browser, out, "ada", first, tmp_path), rate(browser, out, "bo", second, tmp_path)]
    saved = json.loads(files[0].read_text())
    assert (
        saved["format"] == "tau-emotion-ratings"
        and saved["rater"] == "ada"
        and saved["sample"] == key["sample"]
    )
    assert len(saved["ratings"]) == len(key["items"])

    assert agree.main([*map(str, files), "--key", str(out / "key.json"), "--resamples", "200",
                       "--out", str(tmp_path / "tables")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "2 raters (ada, bo)" in printed
    inter = {r["measure"]: r for r in _csv(tmp_path / "tables" / "inter_rater.csv")}
    turns = [(facts["variant"], t) for facts in key["items"].values() for t in facts["turns"]]
    emotions = [(first(v, t)[0], second(v, t)[0]) for v, t in turns]
    faithful = [
        (first(facts["variant"], 0)[2], second(facts["variant"], 0)[2]) for facts in key["items"].values()
    ]
    assert float(inter["emotion"]["alpha"]) == pytest.approx(nominal_alpha(emotions))
    assert float(inter["fidelity"]["alpha"]) == pytest.approx(nominal_alpha(faithful))
    assert 0 < nominal_alpha(emotions) < 1 and int(inter["emotion"]["units_rated_twice"]) == len(turns)
    assert float(inter["emotion"]["alpha_ci_low"]) <= float(inter["emotion"]["alpha"])

    judge_alpha = _csv(tmp_path / "tables" / "judge_human_alpha.csv")
    assert len({r["judge"] for r in judge_alpha}) == 2
    # each scripted judge says one emotion on every turn (anger 2; frustration 1); the raters' majority
    # is anger on anger's turns and none on control's (frustration's, where they disagree, is left out)
    f1 = _csv(tmp_path / "tables" / "judge_human_f1.csv")
    says_anger = {r["judge"] for r in f1 if r["emotion"] == "anger" and r["judge_turns"] != "0"}
    assert len(says_anger) == 1
    rows = {r["emotion"]: r for r in f1 if r["judge"] in says_anger}
    majority_anger, majority_none = int(rows["anger"]["human_turns"]), int(rows["none"]["human_turns"])
    assert majority_anger > 0 and majority_none > 0
    assert rows["anger"]["judge_turns"] == str(majority_anger + majority_none)
    assert float(rows["anger"]["recall"]) == 1.0
    assert float(rows["anger"]["precision"]) == pytest.approx(
        majority_anger / (majority_anger + majority_none)
    )
    assert float(rows["none"]["recall"]) == 0.0


def nominal_alpha(pairs: list[tuple[object, object]]) -> float:
    """Krippendorff's nominal α of two raters without missing values, from its definition."""
    values = [v for pair in pairs for v in pair]
    n = len(values)
    observed = sum(2 * (a != b) for a, b in pairs) / n
    counts = Counter(values)
    expected = (n * n - sum(c * c for c in counts.values())) / (n * (n - 1))
    return 1 - observed / expected


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as file:
        return list(csv.DictReader(file))
