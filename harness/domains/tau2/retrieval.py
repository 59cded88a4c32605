"""banking_knowledge's knowledge-retrieval configuration (`env.domain.retrieval`): checked before a job starts.

τ² ships one retrieval configuration per way the agent may search the bank's 698 policy
documents (`tau2.domains.banking_knowledge.retrieval.RETRIEVAL_VARIANTS`). Some run on this
machine alone (BM25, grep, the whole knowledge base in the prompt, none); the others call a hosted
embedding model or reranker, or need a shell sandbox. Those are refused in one line naming what is
missing, before any conversation, rather than failing on the first search.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from harness.episode.types import Message
from harness.errors import ConfigError

DEFAULT_RETRIEVAL = "bm25"
"""BM25 over the documents: τ²'s classic RAG configuration that needs no service."""
PER_TASK_POLICY = ("golden_retrieval",)
"""Configurations whose policy inlines each task's own documents; a job gives every task one policy."""
SANDBOX_BINARIES = ("srt", "rg", "bwrap", "socat")
EMBEDDING_KEYS = {"openai": ("OPENAI_API_KEY",), "openrouter": ("OPENROUTER_API_KEY",)}
RERANKER_KEYS = ("QWEN_RERANKER_API_KEY", "BASETEN_API_KEY")


def _variants() -> dict[str, Any]:
    from tau2.domains.banking_knowledge.retrieval import RETRIEVAL_VARIANTS

    return dict(RETRIEVAL_VARIANTS)


def _any_set(keys: tuple[str, ...]) -> bool:
    return any(os.environ.get(key) for key in keys)


def missing_services(variant: Any) -> list[str]:
    """What a retrieval configuration needs that this machine does not have (empty: it runs here)."""
    missing: list[str] = []
    for spec in (variant.kb_search, variant.kb_search_bm25, variant.kb_search_dense):
        if spec is None:
            continue
        if spec.type == "embedding":
            keys = EMBEDDING_KEYS.get(spec.embedder_type or "", ())
            if not _any_set(keys):
                what = f"{spec.embedder_type} embedding service ({spec.embedder_model})"
                missing.append(f"the {what}: set {' or '.join(keys) or 'its API key'}")
        if spec.reranker and not _any_set(RERANKER_KEYS):
            missing.append(f"the hosted Qwen reranker: set {' or '.join(RERANKER_KEYS)}")
    if variant.shell is not None:
        absent = [b for b in SANDBOX_BINARIES if shutil.which(b) is None]
        if absent:
            missing.append(f"τ²'s shell sandbox: {', '.join(absent)} not on PATH")
    return missing


def offline_choices() -> list[str]:
    return sorted(
        name
        for name, variant in _variants().items()
        if name not in PER_TASK_POLICY and not missing_services(variant)
    )


def check_retrieval(name: str | None) -> str:
    """The retrieval configuration to use, or a `ConfigError` naming the key and the choices."""
    name = name or DEFAULT_RETRIEVAL
    variants = _variants()
    if name not in variants:
        raise ConfigError(
            f"env.domain.retrieval={name!r} is not one of τ²'s configurations; choose one of {sorted(variants)}"
        )
    if name in PER_TASK_POLICY:
        raise ConfigError(
            f"env.domain.retrieval={name!r} puts each task's own documents in the agent's policy, and a job "
            f"gives every task one policy; choose one of {offline_choices()}"
        )
    missing = missing_services(variants[name])
    if missing:
        raise ConfigError(
            f"env.domain.retrieval={name!r} needs {'; '.join(missing)}; "
            f"these run without a service: {offline_choices()}"
        )
    return name


def read_log_allowlist(task: Any) -> set[str]:
    """τ²'s own allowlist of discoverable read tools whose calls count towards the database check."""
    from tau2.runner.build import _derive_read_log_allowlist

    return set(_derive_read_log_allowlist(task))


def banking_env_kwargs(retrieval: str) -> Callable[[Any], dict[str, Any]]:
    """The keyword arguments τ²'s runner gives banking_knowledge's environment for a task."""

    def env_kwargs(task: Any) -> dict[str, Any]:
        return {"retrieval_variant": retrieval, "task": task, "read_log_allowlist": read_log_allowlist(task)}

    return env_kwargs


def retrieved_documents(task: Any, messages: Sequence[Message]) -> dict[str, list[str]]:
    """Which of the task's governing documents (`required_documents`) the agent's searches brought back.

    A document counts as retrieved when its id appears in a tool result the agent got: that is how
    τ²'s search and grep tools name what they return. With `full_kb` every document is in the policy,
    so nothing needs retrieving."""
    required = list(getattr(task, "required_documents", None) or [])
    seen = "\n".join(
        str(m.get("content") or "") for m in messages if m["role"] == "tool" and m.get("requestor") != "user"
    )
    retrieved = [doc for doc in required if doc in seen]
    return {
        "required": required,
        "retrieved": retrieved,
        "missing": [d for d in required if d not in retrieved],
    }


def retrieval_failure(task: Any, messages: Sequence[Message], reward: float | None) -> str | None:
    """Why a failed banking conversation failed, as far as retrieval tells: `never_retrieved` (not one
    governing document came back), `partly_retrieved`, or `retrieved_but_failed` (every governing
    document was in front of the agent, which acted against it). None for a success or a task
    that names no document."""
    return classify_retrieval(retrieved_documents(task, messages), reward)


def classify_retrieval(documents: dict[str, list[str]] | None, reward: float | None) -> str | None:
    """`retrieval_failure` from a record's `reward_info.retrieval` (what `retrieved_documents` gave)."""
    if reward is None or reward >= 1.0 or not documents or not documents.get("required"):
        return None
    if not documents.get("retrieved"):
        return "never_retrieved"
    return "partly_retrieved" if documents.get("missing") else "retrieved_but_failed"
