"""Small helpers shared by the storage modules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; everything stored is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sqlite_stamp(value: datetime) -> str:
    """``value`` as SQLAlchemy's SQLite ``DateTime`` stores it (UTC, naive text), for the inserts
    that go straight to the sqlite3 connection."""
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H:%M:%S.%f")


def as_dict(row: Any) -> dict[str, Any]:
    data: Mapping[str, Any] = row._mapping
    return {k: (as_utc(v) if isinstance(v, datetime) else v) for k, v in data.items()}
