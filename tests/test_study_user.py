"""The ready study sweeps refuse to let the agent's model play its own customer unless told so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from harness.errors import ConfigError
from harness.job.guards import refuse_own_user
from tests.helpers import harness_cli

CONF = Path(__file__).resolve().parents[1] / "conf"
STUDIES = ["emotional_study", "dose_response", "tau2_study"]


@pytest.fixture
def hydra_conf() -> Iterator[None]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def _config(*overrides: str) -> dict[str, object]:
    container = OmegaConf.to_container(compose("config", list(overrides)), resolve=False)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize("sweep", STUDIES)
def test_a_study_without_a_named_user_is_refused(sweep: str) -> None:
    with pytest.raises(ConfigError, match=r"^user\.same_as_agent=false .* or say user\.same_as_agent=true"):
        refuse_own_user(_config(f"+sweep={sweep}", "backend=openai", "model=gpt-4o"))


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(
    "extra",
    [
        ["user.same_as_agent=true"],
        ["+user/backend=openai", "model@user.backend.model=gpt-4o"],
    ],
)
def test_a_named_user_or_an_explicit_same_as_agent_passes(extra: list[str]) -> None:
    refuse_own_user(_config("+sweep=emotional_study", "backend=openai", "model=gpt-4o-mini", *extra))


@pytest.mark.usefixtures("hydra_conf")
def test_plumbing_checks_and_single_runs_are_not_studies() -> None:
    refuse_own_user(_config("+sweep=emotional_study", "backend=oracle"))
    refuse_own_user(_config("backend=openai", "model=gpt-4o"))
    refuse_own_user(_config("+sweep=smoke", "backend=openai", "model=gpt-4o"))


def test_the_sweep_stops_with_one_line_before_any_job(tmp_path: Path) -> None:
    result = harness_cli(
        [
            "-m",
            "+sweep=emotional_study",
            "backend=openai",
            "model=gpt-4o",
            f"hydra.sweep.dir={tmp_path / 's'}",
        ]
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: user.same_as_agent=false")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
