"""Loader for the committed known-answer vectors under tests/vectors/crypto/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "crypto"


def load_vectors(name: str) -> list[dict[str, Any]]:
    """The ``tests`` list of one vector file."""
    with open(VECTORS / name, encoding="utf-8") as handle:
        return json.load(handle)["tests"]
