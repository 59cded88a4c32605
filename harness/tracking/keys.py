"""Every metric name a job's W&B run holds, defined once.

The logger writes rows and summaries with these names and the dashboards build their panels from
them, so renaming a metric here renames both: a panel cannot point at a metric nobody logs.
"""

from __future__ import annotations

from enum import StrEnum

CONVERSATION_PREFIX = "conversation/"
RUNNING_PREFIX = "running/"
THROUGHPUT_PREFIX = "throughput/"
ANATOMY_PREFIX = "anatomy/"
"""Run summary: per failure-anatomy category (`harness.analysis.anatomy.CATEGORIES`), the scored
conversations with that fault, as `anatomy/<category>`; `anatomy/scored` is how many were scored."""


def anatomy_key(category: str) -> str:
    return ANATOMY_PREFIX + category


class Conversation(StrEnum):
    """One history row per finished conversation, logged as `conversation/<name>`."""

    TASK_ID = "task_id"
    TRIAL = "trial"
    REWARD = "reward"
    SUCCESS = "success"
    SCORED = "scored"
    TERMINATION = "termination"
    TRANSFER_TO_HUMAN = "transfer_to_human"
    TURNS = "turns"
    STEPS = "steps"
    TOOL_CALLS = "tool_calls"
    TOOL_ERRORS = "tool_errors"
    MALFORMED_TOOL_CALLS = "malformed_tool_calls"
    USER_WORDS_PER_TURN = "user_words_per_turn"
    AGENT_TOKENS = "agent_tokens"
    USER_TOKENS = "user_tokens"
    AGENT_REASONING_TOKENS = "agent_reasoning_tokens"
    USER_REASONING_TOKENS = "user_reasoning_tokens"
    AGENT_COST_USD = "agent_cost_usd"
    """Absent where the agent model's preset has no price (as are the two below)."""
    USER_COST_USD = "user_cost_usd"
    COST_USD = "cost_usd"
    AGENT_LATENCY_S = "agent_latency_s"
    USER_LATENCY_S = "user_latency_s"
    LATENCY_S = "latency_s"
    STARTED_AT = "started_at"

    @property
    def key(self) -> str:
        return CONVERSATION_PREFIX + self.value


class Running(StrEnum):
    """Means over the conversations the run holds so far, logged with each row as `running/<name>`."""

    CONVERSATIONS = "conversations"
    AVERAGE_REWARD = "average_reward"
    SUCCESS_RATE = "success_rate"
    TRANSFER_RATE = "transfer_rate"
    TOOL_ERROR_RATE = "tool_error_rate"
    UNSCORED_ERRORS = "unscored_errors"

    @property
    def key(self) -> str:
        return RUNNING_PREFIX + self.value


class Throughput(StrEnum):
    """Measured over one attempt of the job, in the run summary as `throughput/<name>`."""

    SEGMENT_S = "segment_s"
    SEGMENT_CONVERSATIONS = "segment_conversations"
    CONVERSATIONS_PER_S = "conversations_per_s"
    AGENT_TOKENS_PER_S = "agent_tokens_per_s"

    @property
    def key(self) -> str:
        return THROUGHPUT_PREFIX + self.value


class Summary(StrEnum):
    """Keys of `summary.json` the dashboards show (the run summary holds all of it)."""

    AVERAGE_REWARD = "average_reward"
    PASS_HAT_K = "pass_hat_k"
    """A mapping k -> pass^k: `pass_hat_k.1`, `pass_hat_k.2`, ... in W&B."""
    TERMINATIONS = "terminations"
    """A mapping reason -> count: `terminations.user_stop`, ... in W&B."""
    SCORED = "scored"
    CONVERSATIONS = "conversations"
    UNSCORED_ERRORS = "unscored_errors"
    TOOL_CALLS = "tool_calls"
    TOOL_ERRORS = "tool_errors"
    MISSING = "missing"


class Table(StrEnum):
    """Tables in the run summary."""

    TRANSCRIPTS = "transcripts"
    """One row per conversation of `results.json`."""
    FAILURES = "transcripts_failed"
    """The rows of `transcripts` whose conversation was scored and failed, to read side by side."""


def nested(summary_key: Summary, part: str | int) -> str:
    """The W&B name of one entry of a mapping in the summary, e.g. `pass_hat_k.2`."""
    return f"{summary_key.value}.{part}"
