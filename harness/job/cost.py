"""What a job cost: US dollars from token counts and the presets' prices, GPU-hours from wall time.

A cost is None wherever a price is not known (a local model, a preset without prices): absent,
never zero. `tokens_cost` is the one formula; the judge and the report call it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.presets import Prices
from harness.errors import validated
from harness.store import read_summary

PER_MILLION = 1_000_000
ROLES = ("agent", "user")


def preset_prices(model: Mapping[str, Any] | None) -> dict[str, float | None] | None:
    """A model config's `prices` as plain data (for job.json), or None where there is no model.

    Only `prices` is read: the backend validates the rest of its preset.
    """
    if not model:
        return None
    return validated(Prices, model.get("prices") or {}, prefix="model.prices.").model_dump()


def tokens_cost(
    prices: Prices | Mapping[str, Any] | None,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> float | None:
    """US dollars for one call or a sum of calls; None when the prices needed are not known.

    `prompt_tokens` includes the `cached_tokens` (as OpenAI counts them); cached tokens are charged
    at the input price where no cached price is given. Reasoning tokens are completion tokens.
    """
    if prices is None:
        return None
    table = prices.model_dump() if isinstance(prices, Prices) else dict(prices)
    input_price, output_price = table.get("input"), table.get("output")
    if input_price is None or output_price is None:
        return None
    cached = min(cached_tokens or 0, prompt_tokens)
    cached_price = table.get("cached_input")
    cached_price = input_price if cached_price is None else cached_price
    dollars = (
        (prompt_tokens - cached) * input_price + cached * cached_price + completion_tokens * output_price
    )
    return dollars / PER_MILLION


def _total(parts: Iterable[float | None]) -> float | None:
    values = list(parts)
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def conversation_cost(record: Mapping[str, Any]) -> dict[str, float | None]:
    """`agent_usd`, `user_usd` and their sum `usd` for one conversation record (None where unpriced)."""
    usage = record.get("usage") or {}
    prices = record.get("prices") or {}
    cost: dict[str, float | None] = {}
    for role in ROLES:
        cost[f"{role}_usd"] = tokens_cost(
            prices.get(role),
            usage.get(f"{role}_prompt_tokens") or 0,
            usage.get(f"{role}_completion_tokens") or 0,
            usage.get(f"{role}_cached_tokens") or 0,
        )
    cost["usd"] = _total(cost[f"{role}_usd"] for role in ROLES)
    return cost


def job_cost(records: Sequence[Mapping[str, Any]], info: Mapping[str, Any], wall_s: float) -> dict[str, Any]:
    """The job's cost for summary.json: dollars per role and in all, per conversation, GPU-hours."""
    per_conversation = [conversation_cost(record) for record in records]
    cost: dict[str, Any] = {
        key: _total(c[key] for c in per_conversation) if records else None
        for key in (*(f"{role}_usd" for role in ROLES), "usd")
    }
    cost["usd_per_conversation"] = cost["usd"] / len(records) if cost["usd"] is not None else None
    for role in ROLES:
        cost[f"{role}_reasoning_tokens"] = sum(
            (record.get("usage") or {}).get(f"{role}_reasoning_tokens") or 0 for record in records
        )
    gpus = int(info.get("gpus") or 0)
    cost["wall_s"] = round(wall_s, 3)
    cost["gpu_hours"] = gpus * cost["wall_s"] / 3600 if gpus else None
    return cost


def previous_wall_s(job_dir: Path) -> float:
    """Wall time of the job's earlier segments (a resumed job adds to it), from its last summary."""
    summary = read_summary(job_dir)
    try:
        return float((summary.cost or {})["wall_s"]) if summary else 0.0
    except (KeyError, TypeError, ValueError):
        return 0.0


def cost_line(cost: Mapping[str, Any]) -> str:
    """The cost for the job's closing log line: dollars per role where priced, GPU-hours; '' if neither."""
    parts = [f"{role} ${cost[f'{role}_usd']:.4f}" for role in ROLES if cost.get(f"{role}_usd") is not None]
    if cost.get("usd") is not None:
        parts.insert(0, f"${cost['usd']:.4f}")
    elif parts:
        parts.append("the rest unpriced")
    if cost.get("gpu_hours") is not None:
        parts.append(f"{cost['gpu_hours']:.2f} GPU-hours")
    return (
        f", cost {' '.join(parts[:1])}{' (' + ', '.join(parts[1:]) + ')' if parts[1:] else ''}"
        if parts
        else ""
    )
