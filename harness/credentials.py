"""What a credential looks like: by its key's name, or by the shape of its value (no imports of the harness)."""

from __future__ import annotations

import re
from typing import Any

CREDENTIAL_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential", "credentials"}
)
"""A key whose last word is one of these holds a credential (`api_key`, `hf_token`, `clientSecret`)."""
KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])("
    r"sk-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic (sk-ant-), DeepSeek
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google
    r"|(?:gsk|r8|pplx|nvapi)[_-][A-Za-z0-9_-]{20,}"  # Groq, Replicate, Perplexity, NVIDIA
    r")"
)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def is_credential_name(name: str) -> bool:
    """`api_key`, `HF_TOKEN`, `clientSecret`; not `api_key_env`, `max_tokens` or `token_limit_field`."""
    words = _words(name)
    return bool(words) and words[-1] in CREDENTIAL_WORDS


def looks_like_key(value: Any) -> bool:
    """A string holding something shaped like a known provider's API key or token."""
    return isinstance(value, str) and KEY_SHAPES.search(value) is not None
