"""What each agent tool of an environment does, as far as the failure anatomy needs to know.

A domain names its tools that change the world (`writes`), the writes its policy allows only after
an explicit yes from the user (`confirm`), the writes that give the user something (`concessions`:
refunds, exchanges, cancellations, compensation), the lookups that authenticate the user (`auth`,
where the policy requires one before anything else), the lookups whose success identifies the user
at all (`identify`: recorded as `identity_tools`, read by the report's deterministic fidelity)
and the hand-over to a human (`transfer`).
The tables are plain names, so a report reads a sweep without importing τ-bench or τ².
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ToolRoles:
    writes: frozenset[str] = field(default_factory=frozenset)
    confirm: frozenset[str] = field(default_factory=frozenset)
    concessions: frozenset[str] = field(default_factory=frozenset)
    auth: frozenset[str] = field(default_factory=frozenset)
    """Identifying lookups the policy requires before any write (retail: always `identify`; airline
    and telecom name no such rule, so none)."""
    identify: frozenset[str] = field(default_factory=frozenset)
    """Agent tools whose success identifies the user (a superset of `auth`)."""
    transfer: frozenset[str] = field(default_factory=frozenset)


TRANSFER = frozenset({"transfer_to_human_agents"})
RETAIL_WRITES = frozenset(
    {
        "cancel_pending_order",
        "exchange_delivered_order_items",
        "modify_pending_order_address",
        "modify_pending_order_items",
        "modify_pending_order_payment",
        "modify_user_address",
        "return_delivered_order_items",
    }
)
SHOP_IDENTIFY = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
RETAIL = ToolRoles(
    writes=RETAIL_WRITES,
    confirm=RETAIL_WRITES,  # "obtain explicit user confirmation (yes) to proceed"
    concessions=frozenset(
        {"cancel_pending_order", "exchange_delivered_order_items", "return_delivered_order_items"}
    ),
    auth=SHOP_IDENTIFY,
    identify=SHOP_IDENTIFY,
    transfer=TRANSFER,
)
AIRLINE_WRITES = frozenset(
    {
        "book_reservation",
        "cancel_reservation",
        "send_certificate",
        "update_reservation_baggages",
        "update_reservation_flights",
        "update_reservation_passengers",
    }
)
AIRLINE = ToolRoles(
    writes=AIRLINE_WRITES,
    confirm=AIRLINE_WRITES,  # "obtain explicit user confirmation (yes) to proceed"
    concessions=frozenset({"cancel_reservation", "send_certificate"}),
    identify=frozenset({"get_user_details"}),
    transfer=TRANSFER,
)
TELECOM = ToolRoles(
    writes=frozenset(
        {
            "disable_roaming",
            "enable_roaming",
            "refuel_data",
            "resume_line",
            "send_payment_request",
            "suspend_line",
        }
    ),
    confirm=frozenset({"refuel_data"}),  # "Confirm the price" before refuelling
    concessions=frozenset({"refuel_data", "resume_line"}),
    identify=frozenset({"get_customer_by_phone", "get_customer_by_id", "get_customer_by_name"}),
    transfer=TRANSFER,
)
NONE = ToolRoles()

ROLES = {
    "retail": RETAIL,
    "airline": AIRLINE,
    "tau2_retail": RETAIL,
    "tau2_airline": AIRLINE,
    "tau2_telecom": TELECOM,
}
"""Per env name (`ConversationRecord.env`)."""


def roles_for(env: str) -> ToolRoles:
    """The roles of an env's tools; an env with no table has none (nothing is judged a write)."""
    return ROLES.get(env, NONE)
