"""The one way records become JSON at the edge: a record says how it reads on the wire
(``wire()``), and `dumps` writes it there — the HTTP answer and the WebSocket frame alike.

Services and storage pass typed records; nothing below the edge builds the JSON text.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Wire(Protocol):
    """A record with a JSON shape (docs/capabilities.md, public API): the plain value it is written as."""

    def wire(self) -> Any: ...


def plain(value: Any) -> Any:
    """``value`` with every record in it replaced by its wire form (for ``json.dumps``)."""
    # What ``isinstance(value, Wire)`` decides, without the runtime protocol check: that check
    # walks the protocol's members on every call, and this runs for every record in every answer.
    method = getattr(value, "wire", None)
    if callable(method):
        return method()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: ``json.dumps`` that writes records through their ``wire()`` form; the text is the same as for
#: the equivalent plain dicts.
dumps = partial(json.dumps, default=plain)
