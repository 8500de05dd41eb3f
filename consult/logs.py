"""Logging set-up: plain text or JSON lines (``CONSULT_LOG_FORMAT``) at ``CONSULT_LOG_LEVEL``.

A JSON line carries the time, level, logger and message, and the ids a line was given as
``extra`` (request id, user id, route template, method, status, milliseconds) — never content.
An exception is written as its type and where it was raised, without its message (a message
can quote input); anything shaped like a Finnish identity code is masked in every line, as a
last guard should a message ever quote one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime

#: Fields a line may carry besides its message (``log.info(..., extra={...})``).
FIELDS = ("request_id", "user_id", "route", "method", "status", "ms", "outcome")
_HETU_LIKE = re.compile(r"(?<![0-9])[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-Y](?![0-9A-Za-z])", re.IGNORECASE)
MASK = "[masked]"
#: Third-party loggers whose debug lines can carry SQL parameters or raw request lines.
NOISY = ("aiohttp.access", "aiosqlite", "sqlalchemy", "asyncio", "alembic")


def mask(text: str) -> str:
    return _HETU_LIKE.sub(MASK, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = mask(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            frames = traceback.extract_tb(record.exc_info[2]) if record.exc_info[2] else []
            if frames:
                line["at"] = f"{frames[-1].filename}:{frames[-1].lineno} {frames[-1].name}"
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Send the service's log to standard error in ``fmt`` at ``level`` (replacing earlier set-up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
