"""Where the config groups are, located once: `harness/conf` in an installed wheel, else `conf/`
beside the package (a checkout, or an editable install)."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "conf"
CONF_DIR = (
    _PACKAGED if (_PACKAGED / "config.yaml").is_file() else Path(__file__).resolve().parents[1] / "conf"
)
