"""The `model` config group: one strict schema for every preset in `conf/model/`.

Each backend reads the fields it needs; a key no backend knows (a typo, a field of a newer
version) is an error naming it, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import validated

SamplingField = Literal["temperature", "top_p", "seed"]


class Prices(BaseModel):
    """US dollars per million tokens; null where the price is not known (local models)."""

    model_config = ConfigDict(extra="forbid")

    input: float | None = Field(default=None, ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    """Input tokens read from the provider's cache."""
    cache_write: float | None = Field(default=None, ge=0)
    """Input tokens written to the cache where the provider charges for it (Anthropic: 1.25 × input)."""
    output: float | None = Field(default=None, ge=0)


class RoleSampling(BaseModel):
    """Sampling a model's authors recommend for one role; null fields leave the config's default."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    """For a reasoning model this limit counts the thinking too: leave it room."""


class SlurmResources(BaseModel):
    """What one SLURM job of this model asks for besides its GPUs; null: the launcher's default."""

    model_config = ConfigDict(extra="forbid")

    mem_gb: int | None = Field(default=None, ge=1)
    cpus_per_task: int | None = Field(default=None, ge=1)


class ModelPreset(BaseModel):
    """One model as every backend sees it: identity, where it runs, how requests are shaped."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    """The model's name in outputs, W&B tags and paths."""
    gpus: int = Field(0, ge=0)
    """GPUs one job of this model needs (the SLURM launcher asks for this many)."""

    # In-process vLLM
    path: str | None = None
    """A hub id or a local directory with the weights (vLLM)."""
    revision: str | None = None
    tokenizer: str | None = None
    tokenizer_mode: str = "auto"
    tool_parser: str | None = None
    """vLLM's tool-call parser for this model (`hermes`, `llama3_json`, `mistral`, ...)."""
    reasoning_parser: str | None = None
    """vLLM's reasoning parser (e.g. `qwen3`, `deepseek_r1`): keeps thinking text out of the reply."""
    chat_template: str | None = None
    chat_template_kwargs: dict[str, Any] = {}
    """Passed to the chat template on every render (e.g. `{enable_thinking: false}`)."""
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=16)
    tensor_parallel_size: int = Field(1, ge=1)
    trust_remote_code: bool = False

    # OpenAI-compatible endpoints
    api_model: str | None = None
    """The model name the endpoint expects (default: `name`)."""
    base_url: str | None = None
    api_key_env: str | None = None
    """The environment variable holding the key (never the key itself)."""

    # Request shape (both backends)
    sampling_fields: list[SamplingField] = ["temperature", "top_p", "seed"]
    """Sampling fields the model accepts; the others are not sent (reasoning models take none)."""
    token_limit_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    reasoning_effort: str | None = None
    """OpenAI's `reasoning_effort` (Chat Completions) / `reasoning.effort` (Responses)."""
    thinking_budget: int | None = Field(None, ge=0)
    """Thinking tokens per call: Anthropic's `thinking.budget_tokens`, Gemini's `thinking_budget`."""
    extra_body: dict[str, Any] = {}
    """Extra request fields passed through verbatim (provider fields, vLLM sampling extras)."""

    prices: Prices = Prices(input=None, cached_input=None, output=None)

    # Per-model defaults: each one set here replaces the config's default (an explicit override wins)
    agent_sampling: RoleSampling = RoleSampling()
    """`agent.sampling` when this model is the agent."""
    user_sampling: RoleSampling = RoleSampling()
    """`user.sampling` when this model plays the user."""
    concurrency: int | None = Field(None, ge=1)
    """Conversations in flight in one job (`backend=vllm`'s `job_concurrency`)."""
    timeout_s: float | None = Field(None, gt=0)
    """Per request (`backend=openai`'s `timeout_s`): reasoning at high effort or a flex tier needs minutes."""
    slurm: SlurmResources = SlurmResources()
    gated: bool = False
    """The hub makes you accept a licence before downloading (Llama, Mistral): HF_TOKEN needed."""

    def defaults_in_force(self) -> dict[str, Any]:
        """The per-model defaults this preset sets, for job.json."""
        return {
            key: value
            for key, value in self.model_dump(
                include={"agent_sampling", "user_sampling", "concurrency", "timeout_s", "slurm"},
                exclude_none=True,
            ).items()
            if value not in ({}, None)
        }


def model_preset(data: Any, prefix: str = "model.", hint: str = "") -> ModelPreset:
    """`data` as a `ModelPreset`, or a ConfigError naming the first bad key."""
    return validated(ModelPreset, data, prefix=prefix, hint=hint)
