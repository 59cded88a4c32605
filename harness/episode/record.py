"""The conversation record: one line of `conversations.jsonl`, read by every module.

`harness.episode.conversation.run_conversation` returns its episode part (`EpisodeRecord`), the
runner adds the job's facts (`JobFacts`), and the store, metrics, report, W&B logger and viewer
read the whole (`ConversationRecord`). The JSON on disk
is exactly this shape; `RECORD_SCHEMA` validates a line read back.
"""

from __future__ import annotations

from typing import (
    Any,
    NotRequired,  # pydantic validates only these on Python 3.11
)

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from harness.episode.types import Message, Termination


class Counts(TypedDict):
    steps: int
    """Agent steps taken (one model call each)."""
    tool_calls: int
    """Tool calls executed (only the first call of an agent message runs, as in τ-bench)."""
    tool_errors: int
    """Tool calls whose observation was an error."""
    malformed_tool_calls: int
    """Replies whose tool call could not be parsed or whose arguments were not a JSON object."""
    truncated_tool_calls: NotRequired[int]
    """Replies whose tool call was cut off by `max_tokens` (not counted as malformed)."""
    truncated_replies: NotRequired[int]
    """Text replies cut off by `max_tokens` (`finish_reason: length`), sent on as they were."""
    empty_replies: NotRequired[int]
    """Replies with neither text nor a tool call (an empty reply cut off ends the conversation)."""
    user_turns: int
    """Messages the simulated user produced, the opening included."""
    agent_replies: int
    """Text replies the agent sent to the user."""
    user_tool_calls: NotRequired[int]
    """Tool calls the simulated user made on its own tools (dual control, τ² telecom)."""


class Usage(TypedDict, total=False):
    """Token totals per role. Prompt tokens include the cached ones, completion tokens the reasoning ones."""

    agent_prompt_tokens: int
    agent_completion_tokens: int
    agent_cached_tokens: int
    agent_cache_write_tokens: int
    agent_reasoning_tokens: int
    agent_latency_s: float
    user_prompt_tokens: int
    user_completion_tokens: int
    user_cached_tokens: int
    user_cache_write_tokens: int
    user_reasoning_tokens: int
    user_latency_s: float


class ModelCall(TypedDict, total=False):
    role: str
    """`agent`, `user`, or `judge` (τ²'s NL assertions, after the conversation)."""
    step: int
    turn: int
    affect_active: bool
    """User calls: whether the variant's own persona shaped this turn (from `onset_after_turns` on)."""
    persona: str | None
    """User calls: the variant whose persona this turn had (the variant's name; `neutral` before the onset;
    null for control, or before the onset in persona set v1, where those turns had the control prompt)."""
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int | None
    """Prompt tokens written to the provider's cache (Anthropic); null where the provider has none."""
    reasoning_tokens: int | None
    """Completion tokens spent reasoning (reasoning models report them; null elsewhere)."""
    latency_s: float
    parse_error: str | None
    finish_reason: str | None
    """Why the model stopped: `stop`, `length` (max_tokens or context), `abort`; null if unknown."""
    served_model: str
    """Hosted APIs: the model version the provider says answered (the response's `model`, Gemini's
    `model_version`); absent where the backend does not say (vLLM, scripted, oracle)."""
    system_fingerprint: str
    """OpenAI chat completions: the response's `system_fingerprint` (the serving configuration; it
    changes when the provider changes what serves the model); absent where not given."""
    intensity: str
    """A reactive user's calls: the intensity (`low|medium|high`) this message was written at."""
    events: list[str]
    """A reactive user's calls: the events of the agent's turn before it (`harness.episode.dynamics`)."""
    stated_mood: str | None
    """A reactive user with llm appraisal: the mood its reply stated (null: it stated none)."""


class JobFacts(TypedDict, total=False):
    """The job's facts, copied into every record so a line stands on its own."""

    job_name: str
    """The `name` the job ran under (one sweep, one name)."""
    model: str | None
    """The agent model's preset name."""
    backend: str
    """The agent's backend (`vllm`, `openai`, `oracle`, `scripted`)."""
    plumbing_check: bool
    """True for test backends: the numbers test the harness, not a model."""
    variant_kind: str
    """`control`, `baseline` (neutral), `emotion`, `cognitive` or `placebo` (conf/variant/*.yaml `kind`)."""
    persona_set: str
    """The persona texts' and framing's version (`v1`, `v2`); only jobs of one set are compared."""
    intensity: str | None
    """The variant's intensity (`low|medium|high`); null where the persona does not depend on it
    (control, neutral: dose 0)."""
    onset_after_turns: int
    """User turns before the emotion sets in."""
    dynamics: str
    """A reactive user's dynamics (`reactive`, ...: `conf/variant/dynamics/`); absent for a static one."""
    harness_version: str
    user_simulator: dict[str, Any]
    """Who played the user: `backend`, `model`, `strategy`, `sampling`, `framing_sha` (the
    framing text's SHA-256, 16 hex digits). Jobs compared with each other must share it."""
    identity_tools: list[str]
    """The domain's agent tools whose success authenticates the user (`Domain.identity_tools`)."""
    gpus: int
    """GPUs the agent model's job holds (0 for API models)."""
    prices: dict[str, dict[str, float | None] | None]
    """Per role (`agent`, `user`): the preset's US dollars per million tokens; null fields unknown."""
    request_shape: dict[str, Any]
    preset_defaults: dict[str, dict[str, Any]]
    """Per role (`agent`, `user`): the defaults its model preset set (`agent_sampling`,
    `user_sampling`, `concurrency`, `timeout_s`, `slurm`); the values in force are in the config."""
    """Per role: the request fields actually sent (besides messages and tools), and `not_sent`."""


class EpisodeRecord(TypedDict):
    """What one conversation produced, as `run_conversation` returns it."""

    env: str
    """The environment (`retail`, `airline`, ...)."""
    split: str
    """The task split (`test`, `train`, `dev`)."""
    task_id: int
    trial: int
    seed: int
    """The (task, trial)'s seed, the same in every variant of a sweep."""
    variant: str
    """The user's emotional variant (`control`, `neutral`, `anger`, ...)."""
    reward: float
    """τ-bench's reward: 1.0 iff the final database and the required outputs match; 0 when unscored."""
    reward_at_cap: NotRequired[float | None]
    """The database (and outputs) scored even at the step cap, where `reward` is 0 by rule; equal to
    `reward` for every other ending; null where the cap's scoring failed. A sensitivity, never the score."""
    termination: Termination
    """Why it ended (written as the `Termination` value, e.g. `user_stop`)."""
    scored: bool
    """Whether it counts in the agent's metrics (false for user, infrastructure and harness errors)."""
    error: str | None
    """What went wrong, for every ending but a normal one."""
    reward_info: dict[str, Any] | None
    """τ-bench's `RewardResult` as a dict (ground-truth actions, outputs found); null when not scored."""
    user_id: str
    instruction: str
    """The task's instruction, as the simulated user received it."""
    instruction_affect: list[str]
    """Mood words the instruction itself uses (e.g. "impatient"), to split results on them."""
    noop_task: NotRequired[bool]
    """Doing nothing passes this task: no required output, and its ground truth leaves the
    database unchanged (`Domain.noop_task`). Headline numbers are also given without these."""
    counts: Counts
    usage: Usage
    calls: list[ModelCall]
    """Every model call of the conversation, agent's and user's, in order; then the judge's, if any."""
    started_at: float
    """Unix time the conversation started."""
    duration_s: float
    messages: list[Message]
    """The agent's view: system (policy), user, assistant (with tool calls) and tool messages."""
    user_messages: list[Message]
    """The simulated user's view of the conversation (its own side as `assistant`)."""
    actions: list[dict[str, Any]]
    """The agent's actions as τ-bench records them: `{name, kwargs}`, `respond` for text replies."""
    user_actions: NotRequired[list[dict[str, Any]]]
    """Dual control only: the simulated user's own tool calls, in order: `{name, arguments, observation}`
    (`arguments` as the raw JSON text). They are also in `messages`, marked `"requestor": "user"`."""
    extra: NotRequired[dict[str, Any]]
    """Anything an environment or backend adds that has no field of its own."""


class ConversationRecord(EpisodeRecord, JobFacts):
    """One line of `conversations.jsonl`: the episode and the job's facts, so a line stands on its own."""


RECORD_SCHEMA: TypeAdapter[ConversationRecord] = TypeAdapter(ConversationRecord)
"""Validates a record read back from disk (extra keys are kept out of the result, not refused).

`harness.store.read_jsonl_records` applies it to each line's JSON in strict mode: a string or
null reward, a missing `counts` or an unknown termination fails, an integer reward passes.
A field added later must be `NotRequired`, or records written before it are set aside.
"""
