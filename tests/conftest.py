from __future__ import annotations

import pytest

from harness.taubench import INSTALL_HINT, taubench_available


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if taubench_available():
        return
    skip = pytest.mark.skip(reason=INSTALL_HINT)
    for item in items:
        if "taubench" in item.keywords:
            item.add_marker(skip)
