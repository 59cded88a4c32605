"""Builds one job from the composed config and runs it. `DictConfig` stops here."""

from __future__ import annotations

import asyncio
import logging
import string
from pathlib import Path
from typing import Any, Literal

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness import __version__
from harness.backends.base import Backend, comparable_fingerprint, request_shapes
from harness.backends.vllm import check_engines_fit
from harness.domains.base import Domain
from harness.episode.conversation import LoopSettings
from harness.episode.types import Sampling
from harness.episode.user import simulator_identity
from harness.episode.variants import Variant
from harness.errors import ConfigError, HarnessError, validated
from harness.job.cost import cost_line, preset_prices
from harness.job.guards import refuse_bad_path_names, refuse_credentials
from harness.job.observers import JobObserver, ProgressBar
from harness.job.retry import RetryPolicy, describe_missing
from harness.job.runner import Job, UserSettings, run_job
from harness.tracking.wandb_logger import wandb_observers

log = logging.getLogger(__name__)

OPERATIONAL_KEYS = ("concurrency", "progress", "wandb", "name", "retry")
"""Config keys that change how a job runs but not what its results mean."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingSettings(_Strict):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(1024, ge=1)

    def build(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_tokens)


class EnvSettings(_Strict):
    name: str
    split: str = "test"
    domain: dict[str, Any]
    tasks: list[int] | None = None
    task_range: tuple[int, int] | None = None
    trials: int = Field(1, ge=1)
    max_steps: int = Field(30, ge=1)
    judge: dict[str, Any] | None = None
    """A backend config judging scores that need an LLM (τ²'s NL assertions); null: the user's backend."""

    @model_validator(mode="after")
    def _one_selection(self) -> EnvSettings:
        if self.tasks is not None and self.task_range is not None:
            raise ValueError("set env.tasks or env.task_range, not both")
        return self


class UserConfig(_Strict):
    strategy: Literal["llm", "react"] = "llm"
    framing: str
    """Text around the variant's persona; `{persona}` is its only field, so variants differ only there."""
    sampling: SamplingSettings = SamplingSettings(temperature=1.0, top_p=1.0, max_tokens=512)
    backend: dict[str, Any] | None = None

    @field_validator("framing")
    @classmethod
    def _persona_is_the_only_field(cls, framing: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(framing) if name is not None}
        if fields != {"persona"}:
            raise ValueError(f"the framing must hold {{persona}} and no other field; it has {sorted(fields)}")
        return framing


class RetryConfig(_Strict):
    """The `retry:` block: see `harness.job.retry.RetryPolicy` for what each key does."""

    passes: int = Field(5, ge=0)
    cooldown_s: float = Field(30.0, ge=0)
    growth: float = Field(2.0, ge=1.0)
    max_total_s: float = Field(1800.0, ge=0)
    down_passes: int = Field(3, ge=1)
    accept_incomplete: bool = False
    requeues: int = Field(2, ge=0)

    def build(self) -> RetryPolicy:
        return RetryPolicy(**self.model_dump())


class Settings(_Strict):
    """The typed view of the composed config: wrong types fail here, before any work."""

    name: str
    seed: int = 0
    concurrency: int = Field(32, ge=1)
    progress: bool = True
    env: EnvSettings
    variant: dict[str, Any]
    user: UserConfig
    backend: dict[str, Any]
    model: dict[str, Any]
    agent: dict[str, SamplingSettings]
    wandb: dict[str, Any] = {}
    retry: RetryConfig = RetryConfig.model_validate({})


def settings_from(cfg: DictConfig) -> Settings:
    container = OmegaConf.to_container(cfg, resolve=True)
    return validated(Settings, container)


def select_tasks(env: EnvSettings, domain: Domain) -> list[int]:
    count = len(domain.tasks)
    if env.tasks is not None:
        ids = list(env.tasks)
    elif env.task_range is not None:
        ids = list(range(*env.task_range))
    else:
        ids = list(range(count))
    bad = [i for i in ids if not 0 <= i < count]
    if bad:
        raise ConfigError(
            f"env.tasks has ids out of range {bad[:5]}: {env.name}/{env.split} has tasks 0..{count - 1}"
        )
    if not ids:
        raise ConfigError("env.tasks selects no task")
    return sorted(set(ids))


def build(config: dict[str, Any]) -> Any:
    """`hydra.utils.instantiate`, letting a component's own `HarnessError` through unwrapped."""
    try:
        return instantiate(config, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, HarnessError):
            raise error.__cause__ from None
        raise


def build_job(cfg: DictConfig, output_dir: Path, observers: list[JobObserver] | None = None) -> Job:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    refuse_credentials(container)  # ConfigGuard did, for the command line; this covers every job of a sweep
    refuse_bad_path_names(container)
    settings = settings_from(cfg)
    domain: Domain = build(settings.env.domain)
    variant = Variant.from_config(settings.variant)
    backend: Backend = build(settings.backend)
    user_backend: Backend | None = build(settings.user.backend) if settings.user.backend else None
    check_engines_fit(backend, user_backend)
    judge_backend: Backend | None = build(settings.env.judge) if settings.env.judge else None
    if settings.user.strategy not in domain.user_strategies:
        raise ConfigError(
            f"user={settings.user.strategy} does not exist for env={settings.env.name}; "
            f"choose one of {list(domain.user_strategies)}"
        )
    fingerprint = {str(key): value for key, value in container.items() if key not in OPERATIONAL_KEYS}
    fingerprint["env"] = {
        k: v for k, v in fingerprint["env"].items() if k not in ("tasks", "task_range", "trials")
    }
    # `order` only sorts reports; an intensity the persona ignores changes nothing (one job, one directory)
    fingerprint["variant"] = {
        **{k: v for k, v in fingerprint["variant"].items() if k not in ("order", "dynamics")},
        "intensity": variant.recorded_intensity,
        # static dynamics (and a variant without a dose, which cannot react) leave the fingerprint as it was
        **({"dynamics": variant.dynamics.model_dump()} if variant.reactive else {}),
    }
    fingerprint = comparable_fingerprint(fingerprint)
    info = {
        "job_name": settings.name,
        "env": domain.name,
        "split": domain.split,
        "variant": variant.name,
        "intensity": variant.recorded_intensity,
        "onset_after_turns": variant.onset_after_turns,
        **({"dynamics": variant.dynamics_name} if variant.reactive else {}),
        "model": settings.model.get("name"),
        "backend": backend.name,
        "plumbing_check": backend.plumbing_check,
        "harness_version": __version__,
        "user_simulator": simulator_identity(
            backend=(user_backend or backend).name,
            model=(settings.user.backend or {}).get("model", {}).get("name")
            if user_backend
            else settings.model.get("name"),
            strategy=settings.user.strategy,
            sampling=settings.user.sampling.model_dump(),
            framing=settings.user.framing,
        ),
        "gpus": settings.model.get("gpus", 0),
        "prices": {
            "agent": preset_prices(settings.model),
            "user": preset_prices(
                settings.user.backend.get("model") if settings.user.backend else settings.model
            ),
        },
        "request_shape": request_shapes(
            backend,
            user_backend or backend,
            settings.agent["sampling"].build(),
            settings.user.sampling.build(),
        ),
        **({"judge": judge_backend.name} if judge_backend else {}),
    }
    return Job(
        domain=domain,
        variant=variant,
        backend=backend,
        user_backend=user_backend,
        judge_backend=judge_backend,
        task_ids=select_tasks(settings.env, domain),
        trials=settings.env.trials,
        output_dir=output_dir,
        seed=settings.seed,
        concurrency=settings.concurrency,
        loop=LoopSettings(
            max_steps=settings.env.max_steps, agent_sampling=settings.agent["sampling"].build()
        ),
        user=UserSettings(
            strategy=settings.user.strategy,
            framing=settings.user.framing,
            sampling=settings.user.sampling.build(),
        ),
        fingerprint=fingerprint,
        info=info,
        retry=settings.retry.build(),
        observers=[
            ProgressBar(settings.progress),
            *wandb_observers(settings.wandb, container, output_dir, info),
            *(observers or []),
        ],
    )


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    job = build_job(cfg, output_dir)
    summary = asyncio.run(run_job(job))
    label = (
        f"PLUMBING CHECK (backend={job.backend.name}, not a model result)"
        if job.backend.plumbing_check
        else f"model={job.info['model']}"
    )
    log.info(
        "%s | %s/%s | %s: average reward %s over %d scored conversations, pass^k %s, terminations %s%s -> %s",
        label,
        job.domain.name,
        job.domain.split,
        job.variant.name,
        _fmt(summary["average_reward"]),
        summary["scored"],
        {k: round(v, 4) for k, v in summary["pass_hat_k"].items()},
        summary["terminations"],
        cost_line(summary.get("cost") or {}),
        output_dir,
    )
    if summary["state"] != "complete":
        log.warning(
            "%s: %s%s",
            summary["state"],
            describe_missing(summary),
            " (accepted as final: retry.accept_incomplete=true)"
            if summary["state"] == "accepted_incomplete"
            else "; run the same command again to finish them",
        )
    return summary


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
