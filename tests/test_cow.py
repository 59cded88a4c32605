"""Copy-on-write database views behave like private deep copies, and hash like τ-bench."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from harness.domains.taubench.cow import CowDict, CowList, to_plain
from harness.domains.taubench.datahash import DataHasher, data_hash


def make_base() -> dict[str, Any]:
    return {
        "orders": {
            f"#W{i}": {
                "status": "pending",
                "items": [{"item_id": str(j), "price": j * 1.5, "options": {"size": "M"}} for j in range(3)],
                "payment_history": [{"amount": 10.0 * i, "payment_method_id": "gift_card_1"}],
            }
            for i in range(20)
        },
        "users": {
            f"u{i}": {"name": {"first_name": f"A{i}", "last_name": "B"}, "orders": [f"#W{i}"]}
            for i in range(10)
        },
        "meta": [1, 2, {"nested": [3, 4]}],
    }


def test_every_read_path_leaves_the_base_untouched() -> None:
    base = make_base()
    pristine = copy.deepcopy(base)
    view = CowDict(base)

    view["orders"]["#W1"]["status"] = "cancelled"
    view["orders"].get("#W2")["items"].append({"item_id": "x"})
    for order in view["orders"].values():
        order["payment_history"][0]["amount"] = 0
    for _, user in view["users"].items():
        user["name"]["first_name"] = "Z"
    for item in view["orders"]["#W3"]["items"]:
        item["options"]["size"] = "L"
    for item in reversed(view["orders"]["#W4"]["items"]):
        item["price"] = 0
    view["orders"]["#W5"]["items"][0:2][1]["price"] = -1
    dict(view["orders"]["#W6"])["items"].clear()
    {**view["orders"]["#W7"]}["payment_history"].pop()
    view["orders"]["#W8"].copy()["items"][0]["item_id"] = "copied"
    list(view["orders"]["#W9"]["items"])[2]["price"] = 99
    view["orders"]["#W10"].pop("items")[0]["price"] = 1
    view["orders"]["#W11"]["items"].pop()["price"] = 2
    view["orders"]["#W12"].setdefault("items", [])[0]["price"] = 3
    copy.copy(view["orders"]["#W13"])["items"][1]["price"] = 4
    (view["orders"]["#W14"]["items"] + [])[0]["price"] = 5
    view["orders"]["#W15"]["items"].sort(key=lambda item: -item["price"])
    view["orders"]["#W15"]["items"][0]["price"] = 6
    (view["orders"]["#W16"] | {})["items"][0]["price"] = 7
    view["meta"][2]["nested"].append(5)

    assert base == pristine
    assert view != pristine


@pytest.mark.parametrize("tables_only", [True, False], ids=["dict-of-tables", "with-a-list-table"])
def test_a_view_behaves_like_a_deep_copy_under_random_edits(tables_only: bool) -> None:
    """The same random edits on a view and on a deep copy give equal data and equal hashes."""
    rng = random.Random(7)
    for _ in range(200):
        base = make_base()
        if tables_only:
            del base["meta"]
        pristine = copy.deepcopy(base)
        view, mirror = CowDict(base), copy.deepcopy(base)
        hasher = DataHasher(base)
        for _ in range(rng.randint(0, 8)):
            apply_random_edit(rng, view, mirror)
        assert view == mirror
        assert to_plain(view) == mirror
        assert json.dumps(view, sort_keys=True) == json.dumps(mirror, sort_keys=True)
        assert hasher.digest(view) == data_hash(mirror)
        assert base == pristine


def apply_random_edit(rng: random.Random, view: dict[str, Any], mirror: dict[str, Any]) -> None:
    table = rng.choice(["orders", "users"])
    key = rng.choice(sorted(mirror[table]))
    op = rng.randrange(10)
    for data in (view, mirror):
        records = data[table]
        if op == 0:
            records[key]["status" if table == "orders" else "orders"] = "changed"
        elif op == 1:
            records[f"new-{key}"] = {"status": "new", "items": [], "orders": []}
        elif op == 2:
            del records[key]
        elif op == 3:
            records[key] = dict(records[key])
        elif op == 4 and table == "orders":
            records[key]["items"].insert(0, {"item_id": "n"})
        elif op == 5 and table == "users":
            records[key]["orders"].append("#new")
        elif op == 6:
            _ = [record for record in records.values()]  # a read only: must not change the hash
        elif op == 7:
            records[key] = records.pop(key)
        elif op == 8:
            records.update({key: {**records[key], "replaced": True}, "zz-last": {"items": [], "orders": []}})
        elif op == 9:
            records.pop(sorted(records)[-1])


def test_reads_do_not_mark_a_view_dirty_and_writes_do() -> None:
    base = make_base()
    view = CowDict(base)
    _ = view["orders"]["#W1"]["items"][0]["options"]["size"]
    _ = list(view["users"].items())
    assert not view.dirty
    view["orders"]["#W1"]["items"][0]["options"]["size"] = "S"
    assert view.dirty and view["orders"].dirty and view["orders"]["#W1"].dirty
    assert not view["orders"]["#W2"].dirty
    assert isinstance(view["orders"]["#W1"]["items"], CowList)


def test_a_pristine_or_read_only_view_hashes_like_the_base() -> None:
    base = make_base()
    hasher = DataHasher(base)
    view = CowDict(base)
    assert hasher.digest(view) == data_hash(base)
    for order in view["orders"].values():
        _ = order["items"][0]
    assert hasher.digest(view) == data_hash(base)


def test_single_record_tables_and_single_tables_keep_tuple_syntax() -> None:
    base = {"only": {"k": {"v": [1]}}}
    view = CowDict(base)
    hasher = DataHasher(base)
    assert hasher.digest(view) == data_hash(base)
    view["only"]["k"]["v"].append(2)
    assert hasher.digest(view) == data_hash(to_plain(view))
    view["only"]["k2"] = {}
    assert hasher.digest(view) == data_hash(to_plain(view))
    del view["only"]["k"], view["only"]["k2"]
    assert hasher.digest(view) == data_hash({"only": {}})
