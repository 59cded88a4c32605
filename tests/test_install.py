"""The `tau-emotion` console script from a real, non-editable install of the wheel: it finds the
config shipped inside the package and runs what `python -m harness` runs (its command-line guard too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree, installed with pip into a folder of its own (no `-e`)."""
    work = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "wheel"), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=300, cwd=work)
    [wheel] = (work / "wheel").glob("tau_emotion-*.whl")
    target = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=300
    )
    return target


def console(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [str(target / "bin" / "tau-emotion"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_package_holds_its_config(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = "import harness, harness.conf_dir as c; print(harness.__file__); print(c.CONF_DIR)"
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    module, conf = shown.stdout.split()
    assert module == str(installed / "harness" / "__init__.py")
    assert conf == str(installed / "harness" / "conf") and (Path(conf) / "variant" / "anger.yaml").is_file()


def test_the_console_script_runs_a_job_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    toy = ["env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy", "progress=false"]
    out = tmp_path / "job"
    env_path = f"{installed}{os.pathsep}{ROOT}"  # the toy domain lives in the tests
    result = subprocess.run(
        [
            str(installed / "bin" / "tau-emotion"),
            *toy,
            "env.tasks=[0,1]",
            "wandb.mode=disabled",
            f"hydra.run.dir={out}",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": env_path, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "summary.json").is_file() and len(
        (out / "conversations.jsonl").read_text().splitlines()
    ) == 2


def test_the_console_script_runs_the_command_line_guard(installed: Path, tmp_path: Path) -> None:
    result = console(installed, "+backend.api_key=sk-abcdefghijklmnopqrstuvwx", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error:") and "sk-abcdefghijklmnopqrstuvwx" not in line
