"""Builds one job from the composed config and runs it. `DictConfig` stops here."""

from __future__ import annotations

import asyncio
import logging
import os
import string
from pathlib import Path
from typing import Any, Literal

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pydantic import Field, field_validator, model_validator

from harness import __version__
from harness.backends.base import Backend, comparable_fingerprint, request_shapes
from harness.backends.presets import model_preset
from harness.backends.vllm import check_engines_fit
from harness.cluster.weights import weights_environment
from harness.domains.base import Domain
from harness.episode.conversation import LoopSettings
from harness.episode.types import Sampling
from harness.episode.user import simulator_identity
from harness.episode.variants import Variant
from harness.errors import ConfigError, HarnessError, StrictModel, validated
from harness.job.capacity import KVTokens
from harness.job.cost import cost_line, preset_prices
from harness.job.guards import refuse_bad_path_names, refuse_credentials, refuse_own_user
from harness.job.observers import JobObserver, ProgressBar
from harness.job.retry import RetryPolicy, describe_missing
from harness.job.runner import Job, UserSettings, run_job
from harness.job.study import Study, study_from
from harness.tracking.run_facts import engine_facts
from harness.tracking.wandb_logger import wandb_observers

log = logging.getLogger(__name__)

OPERATIONAL_KEYS = ("concurrency", "progress", "wandb", "name", "retry", "weights", "study")
"""Config keys that change how a job runs but not what its results mean."""


class SamplingSettings(StrictModel):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(1024, ge=1)

    def build(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_tokens)


class KVTokensSettings(StrictModel):
    shared: int = Field(ge=0)
    agent: int = Field(ge=1)
    user: int = Field(ge=1)

    def build(self) -> KVTokens:
        return KVTokens(self.shared, self.agent, self.user)


class EnvSettings(StrictModel):
    name: str
    split: str = "test"
    domain: dict[str, Any]
    tasks: list[int] | None = None
    task_range: tuple[int, int] | None = None
    trials: int = Field(1, ge=1)
    max_steps: int = Field(30, ge=1)
    judge: dict[str, Any] | None = None
    """A backend config judging scores that need an LLM (τ²'s NL assertions); null: the user's backend."""
    kv_tokens: KVTokensSettings | None = None
    """Expected KV-cache tokens per conversation: caps `concurrency` to the engines' KV caches."""

    @model_validator(mode="after")
    def _one_selection(self) -> EnvSettings:
        if self.tasks is not None and self.task_range is not None:
            raise ValueError("set env.tasks or env.task_range, not both")
        return self


class UserConfig(StrictModel):
    strategy: Literal["llm", "react"] = "llm"
    framing: dict[str, str] | str
    """Text around the variant's persona, per persona set (or one text for every set); `{persona}` is its
    only field, so variants differ only there."""
    sampling: SamplingSettings = SamplingSettings(temperature=1.0, top_p=1.0, max_tokens=512)
    backend: dict[str, Any] | None = None
    same_as_agent: bool = True
    """Whether the agent's own backend may play the user when `backend` is null. The study sweeps set it
    false, so they refuse to start without one named simulated user unless `user.same_as_agent=true`."""

    @field_validator("framing")
    @classmethod
    def _persona_is_the_only_field(cls, framing: dict[str, str] | str) -> dict[str, str] | str:
        for text in framing.values() if isinstance(framing, dict) else [framing]:
            fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            if fields != {"persona"}:
                raise ValueError(
                    f"the framing must hold {{persona}} and no other field; it has {sorted(fields)}"
                )
        return framing

    def framing_for(self, persona_set: str) -> str:
        """The framing of one persona set, or a ConfigError naming the sets there are."""
        if isinstance(self.framing, str):
            return self.framing
        if persona_set not in self.framing:
            raise ConfigError(
                f"config error at `user.framing`: no framing for variant.persona_set={persona_set}; "
                f"choose one of {sorted(self.framing)}"
            )
        return self.framing[persona_set]


class RetryConfig(StrictModel):
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


class Settings(StrictModel):
    """The typed view of the composed config: wrong types fail here, before any work."""

    name: str
    seed: int = 0
    concurrency: int = Field(32, ge=1)
    progress: bool = True
    env: EnvSettings
    variant: dict[str, Any]
    before_onset: dict[str, Any] | None = None
    """The variant whose persona the user has before `variant.onset_after_turns` (neutral)."""
    user: UserConfig
    backend: dict[str, Any]
    model: dict[str, Any]
    agent: dict[str, SamplingSettings]
    wandb: dict[str, Any] = Field(default_factory=dict)
    weights: dict[str, Any] = Field(default_factory=dict)
    retry: RetryConfig = RetryConfig.model_validate({})
    study: Study = Study.default()
    """The declared estimand (`harness.job.study`); the report reads it from job.json."""

    @field_validator("study", mode="before")
    @classmethod
    def _declared_study(cls, value: Any) -> Any:
        return value if isinstance(value, Study) else study_from(value)


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
    refuse_own_user(container)
    settings = settings_from(cfg)
    domain: Domain = build(settings.env.domain)
    variant = Variant.from_config(settings.variant)
    framing = settings.user.framing_for(variant.persona_set)
    before_onset = _before_onset(settings, variant)
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
        k: v for k, v in fingerprint["env"].items() if k not in ("tasks", "task_range", "trials", "kv_tokens")
    }
    if domain.provenance:
        fingerprint["env"]["provenance"] = dict(domain.provenance)
    # `order` only sorts reports; an intensity the persona ignores changes nothing (one job, one directory);
    # only the persona set in use defines the results, and the persona before the onset only where there is one
    fingerprint["variant"] = {
        **{
            k: v
            for k, v in fingerprint["variant"].items()
            if k not in ("order", "older_personas", "persona", "dynamics")
        },
        "persona": variant.selected_persona,
        "persona_set": variant.persona_set,
        "intensity": variant.recorded_intensity,
        "before_onset": before_onset.persona_text() if before_onset else None,
        # static dynamics (and a variant without a dose, which cannot react) leave the fingerprint as it was
        **({"dynamics": variant.dynamics.model_dump()} if variant.reactive else {}),
    }
    fingerprint["user"] = {
        k: v for k, v in fingerprint["user"].items() if k != "same_as_agent"
    }  # a guard only
    fingerprint.pop("before_onset", None)
    fingerprint["user"] = {**fingerprint["user"], "framing": framing}
    fingerprint = comparable_fingerprint(fingerprint)
    info = {
        "job_name": settings.name,
        "env": domain.name,
        "split": domain.split,
        **({"env_provenance": dict(domain.provenance)} if domain.provenance else {}),
        "variant": variant.name,
        "variant_kind": variant.kind,
        "persona_set": variant.persona_set,
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
            framing=framing,
        ),
        "identity_tools": sorted(domain.identity_tools),
        "engine": engine_facts(backend.name),
        "gpus": settings.model.get("gpus", 0),
        "preset_defaults": preset_defaults(settings),
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
        "nl_judge": "env.judge"
        if judge_backend
        else "user.backend"
        if user_backend
        else "agent (plumbing check)"
        if backend.plumbing_check
        else None,
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
        before_onset=before_onset,
        user=UserSettings(
            strategy=settings.user.strategy,
            framing=framing,
            sampling=settings.user.sampling.build(),
        ),
        fingerprint=fingerprint,
        info=info,
        retry=settings.retry.build(),
        study=settings.study.model_dump() if settings.study.declared else None,
        kv_tokens=settings.env.kv_tokens.build() if settings.env.kv_tokens else None,
        observers=[
            ProgressBar(settings.progress),
            *wandb_observers(settings.wandb, container, output_dir, info),
            *(observers or []),
        ],
    )


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    weights = OmegaConf.to_container(cfg.weights, resolve=True) if "weights" in cfg else {}
    assert isinstance(weights, dict)
    os.environ.update(weights_environment(weights, on_cluster=bool(os.environ.get("SLURM_JOB_ID"))))
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


def preset_defaults(settings: Settings) -> dict[str, Any]:
    """Per role, the defaults its model preset sets (sampling, concurrency, timeout, SLURM resources)."""
    agent = model_preset(settings.model).defaults_in_force() if settings.model.get("name") else {}
    user_model = (settings.user.backend or {}).get("model")
    user = model_preset(user_model, prefix="user.backend.model.").defaults_in_force() if user_model else agent
    return {"agent": agent, "user": user}


def _before_onset(settings: Settings, variant: Variant) -> Variant | None:
    """The persona of the turns before the onset: `before_onset` in the job's persona set, where there are such turns."""
    if variant.is_control or not variant.onset_after_turns or not variant.neutral_before_onset:
        return None
    if not settings.before_onset:
        raise ConfigError(
            "config error at `before_onset`: variant.onset_after_turns > 0 needs the persona of the turns before it "
            "(before_onset=neutral in conf/config.yaml)"
        )
    data = {**settings.before_onset, "persona_set": variant.persona_set, "intensity": variant.intensity}
    return validated(Variant, data, prefix="before_onset.")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
