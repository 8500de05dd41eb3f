"""Fixtures for the crypto tests: a fresh key file per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consult.crypto import FileKeyring


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "konsulta-keys.json"


@pytest.fixture
def keyring(key_path: Path) -> FileKeyring:
    return FileKeyring.open(key_path, create=True)


@pytest.fixture
def open_keyring(key_path: Path) -> Callable[..., FileKeyring]:
    """Open another handle on the same key file, as a second process would."""

    def _open(**kwargs: Any) -> FileKeyring:
        return FileKeyring.open(key_path, **kwargs)

    return _open
