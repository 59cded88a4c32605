"""A tiny τ-bench-shaped shop domain, so CI drives the whole loop without τ-bench's data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.domains.roles import ToolRoles
from harness.domains.taubench.domain import TauBenchDomain

WIKI = """# Toy shop agent policy
You help customers of a small shop. Authenticate the user by email before any change.
Only pending orders can be cancelled. Transfer to a human agent when you cannot help."""


def _data() -> dict[str, Any]:
    return {
        "users": {
            "ada_1": {"email": "ada@example.com", "address": "1 Loop St", "orders": ["#A1", "#A2"]},
            "bob_2": {"email": "bob@example.com", "address": "2 Tree Rd", "orders": ["#B1"]},
        },
        "orders": {
            "#A1": {"user_id": "ada_1", "status": "pending", "item": "kettle", "price": 30},
            "#A2": {"user_id": "ada_1", "status": "delivered", "item": "lamp", "price": 45},
            "#B1": {"user_id": "bob_2", "status": "pending", "item": "chair", "price": 80},
        },
    }


def _tool(name: str, description: str, properties: dict[str, Any], invoke: Any) -> type:
    info = {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }
    return type(name, (), {"get_info": staticmethod(lambda: info), "invoke": staticmethod(invoke)})


def _find_user(data: dict[str, Any], email: str) -> str:
    for user_id, user in data["users"].items():
        if user["email"] == email:
            return user_id
    return "Error: user not found"


def _get_order(data: dict[str, Any], order_id: str) -> str:
    if order_id not in data["orders"]:
        return "Error: order not found"
    return json.dumps(data["orders"][order_id])


def _cancel_order(data: dict[str, Any], order_id: str) -> str:
    order = data["orders"].get(order_id)
    if order is None:
        return "Error: order not found"
    if order["status"] != "pending":
        return "Error: non-pending order cannot be cancelled"
    order["status"] = "cancelled"
    return json.dumps(order)


def _update_address(data: dict[str, Any], user_id: str, address: str) -> str:
    data["users"][user_id]["address"] = address  # a KeyError becomes τ-bench's "Error: ..."
    return json.dumps(data["users"][user_id])


def _transfer(data: dict[str, Any], summary: str) -> str:
    return "Transfer successful"


STR = {"type": "string"}
TOOLS = [
    _tool("find_user_id_by_email", "Find a user id by email.", {"email": STR}, _find_user),
    _tool("get_order_details", "Get an order.", {"order_id": STR}, _get_order),
    _tool("cancel_pending_order", "Cancel a pending order.", {"order_id": STR}, _cancel_order),
    _tool(
        "modify_user_address", "Change a user's address.", {"user_id": STR, "address": STR}, _update_address
    ),
    _tool("transfer_to_human_agents", "Transfer to a human.", {"summary": STR}, _transfer),
]


ROLES = ToolRoles(
    writes=frozenset({"cancel_pending_order", "modify_user_address"}),
    identify=frozenset({"find_user_id_by_email"}),
    transfer=frozenset({"transfer_to_human_agents"}),
)
"""The toy's tools: its writes ask no confirmation (its policy wants none)."""


@dataclass
class ToyAction:
    name: str
    kwargs: dict[str, Any]


@dataclass
class ToyTask:
    user_id: str
    instruction: str
    actions: list[ToyAction]
    outputs: list[str] = field(default_factory=list)


TASKS = [
    ToyTask(
        "ada_1",
        "You are Ada (ada@example.com). Cancel your pending kettle order #A1. You are calm.",
        [
            ToyAction("find_user_id_by_email", {"email": "ada@example.com"}),
            ToyAction("cancel_pending_order", {"order_id": "#A1"}),
        ],
    ),
    ToyTask(
        "ada_1",
        "You are Ada (ada@example.com). Ask how much your lamp order #A2 cost.",
        [
            ToyAction("find_user_id_by_email", {"email": "ada@example.com"}),
            ToyAction("get_order_details", {"order_id": "#A2"}),
        ],
        outputs=["45"],
    ),
    ToyTask(
        "bob_2",
        "You are Bob (bob@example.com), impatient and upset. Move to 9 Oak Ave.",
        [
            ToyAction("find_user_id_by_email", {"email": "bob@example.com"}),
            ToyAction("modify_user_address", {"user_id": "bob_2", "address": "9 Oak Ave"}),
        ],
    ),
    ToyTask(
        "ada_1",
        "You are Ada. You want your delivered lamp #A2 cancelled, and a human if that is impossible.",
        [
            ToyAction("get_order_details", {"order_id": "#A2"}),
            ToyAction("transfer_to_human_agents", {"summary": "wants to cancel a delivered order"}),
        ],
        outputs=["delivered"],
    ),
    ToyTask(
        "bob_2",
        "You are Bob (bob@example.com). Check the status of your chair order #B1; change nothing.",
        [ToyAction("get_order_details", {"order_id": "#B1"})],
        outputs=["pending"],
    ),
]


def load_toy_domain(name: str = "toy", split: str = "test") -> TauBenchDomain:
    return TauBenchDomain(
        name=name, split=split, tools=TOOLS, tasks=TASKS, wiki=WIKI, data_load_func=_data, tool_roles=ROLES
    )
