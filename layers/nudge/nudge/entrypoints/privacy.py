"""`nudge export USER` and `nudge forget USER`: privacy requests from a laptop, against a
deployed table (AWS credentials) or the local stack's moto (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

from nudge.config import ConfigError

__all__ = ["run_export", "run_forget"]


def run_export(user_id: str, table: str | None) -> int:
    from nudge.bootstrap import privacy_service

    table_name = _table(table)
    if table_name is None:
        return 2
    document = privacy_service(table_name=table_name).export(user_id)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0


def run_forget(user_id: str, table: str | None, schedule_group: str | None) -> int:
    from nudge.bootstrap import privacy_service

    table_name = _table(table)
    if table_name is None:
        return 2
    try:
        service = privacy_service(table_name=table_name, schedule_group=schedule_group)
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    now = datetime.now(UTC)  # an entry point: the one place this command reads the clock
    summary = service.forget(user_id, now)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def _table(table: str | None) -> str | None:
    name = table or os.environ.get("NUDGE_TABLE_NAME")
    if not name:
        sys.stderr.write("name the table: --table or NUDGE_TABLE_NAME\n")
    return name
