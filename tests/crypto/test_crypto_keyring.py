"""FileKeyring: creation and permissions of the key file, strict parsing,
wrapping bound to owner and version, rotation and retirement, and rotation by
another process while this one keeps running."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from crypto_vectors import load_vectors

from consult.crypto import (
    ACTIVE,
    RETIRED,
    BlindIndexKeySource,
    CryptoError,
    FileKeyring,
    KeyFileError,
    Keyring,
    WrappedKey,
    seal,
)
from consult.crypto.keyring import wrap_aad

DEK = bytes(range(0x80, 0xA0))
CONTEXT = b"consultation:42"
FIXED_TIME = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write_document(path: Path, document: Any, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    os.chmod(path, mode)


def _valid_document(**changes: Any) -> dict[str, Any]:
    key = base64.b64encode(bytes(32)).decode()
    document: dict[str, Any] = {
        "format": "konsulta-keyfile",
        "format_version": 1,
        "current": 1,
        "keks": [{"version": 1, "status": "active", "key": key, "created_at": "t"}],
        "blind_index_key": {"key": key, "created_at": "t"},
    }
    document.update(changes)
    return document


# --- creation and the key file ----------------------------------------------


def test_created_file_is_private_and_well_formed(key_path: Path) -> None:
    """Keys at rest: the new key file is 0600 in a 0700 directory."""
    keyring = FileKeyring.open(key_path, create=True, clock=lambda: FIXED_TIME)
    assert _mode(key_path) == 0o600
    assert _mode(key_path.parent) == 0o700
    document = _document(key_path)
    assert document["format"] == "konsulta-keyfile" and document["current"] == 1
    assert document["keks"][0]["created_at"] == FIXED_TIME.isoformat()
    assert len(base64.b64decode(document["keks"][0]["key"])) == 32
    assert keyring.current_version() == 1
    assert keyring.versions() == {1: ACTIVE}
    assert len(keyring.blind_index_key()) == 32
    assert keyring.blind_index_key() != base64.b64decode(document["keks"][0]["key"])
    assert not [p for p in key_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_created_file_is_private_even_with_a_permissive_umask(key_path: Path) -> None:
    previous = os.umask(0)
    try:
        FileKeyring.open(key_path, create=True).add_version()
    finally:
        os.umask(previous)
    assert _mode(key_path) == 0o600


def test_reopening_keeps_the_existing_keys(key_path: Path) -> None:
    """create=True never overwrites a key file that exists: that would shred all data."""
    first = FileKeyring.open(key_path, create=True)
    wrapped = first.wrap(DEK, CONTEXT)
    second = FileKeyring.open(key_path, create=True)
    assert second.unwrap(wrapped, CONTEXT) == DEK
    assert second.blind_index_key() == first.blind_index_key()


def test_missing_file_without_create_names_the_path(key_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist") as caught:
        FileKeyring.open(key_path)
    assert str(key_path) in str(caught.value)
    assert not key_path.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o610])
def test_group_or_other_permissions_are_refused(key_path: Path, mode: int) -> None:
    """A key file readable or writable by anyone but its owner is a configuration error."""
    FileKeyring.open(key_path, create=True)
    os.chmod(key_path, mode)
    with pytest.raises(KeyFileError) as caught:
        FileKeyring.open(key_path)
    message = str(caught.value)
    assert str(key_path) in message and f"{mode:04o}" in message and "chmod 600" in message
    assert not isinstance(caught.value, CryptoError)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_permissions_are_accepted(key_path: Path, mode: int) -> None:
    FileKeyring.open(key_path, create=True)
    os.chmod(key_path, mode)
    assert FileKeyring.open(key_path).current_version() == 1


def test_read_only_directory_reads_but_refuses_rotation(keyring: FileKeyring, key_path: Path) -> None:
    """A key file on a read-only mount still serves; rotating there is a clear error."""
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    os.chmod(key_path.parent, 0o500)
    try:
        assert FileKeyring.open(key_path).current_version() == 1
        with pytest.raises(KeyFileError, match="cannot be"):
            keyring.add_version()
    finally:
        os.chmod(key_path.parent, 0o700)


def test_unlockable_key_file_refuses_rotation_clearly(keyring: FileKeyring, key_path: Path) -> None:
    lock = key_path.with_name(key_path.name + ".lock")
    lock.unlink()
    lock.mkdir()
    with pytest.raises(KeyFileError, match="locked") as caught:
        keyring.add_version()
    assert str(key_path) in str(caught.value)
    assert keyring.versions() == {1: ACTIVE}


def test_directory_in_place_of_the_file_is_refused(key_path: Path) -> None:
    key_path.mkdir(parents=True, mode=0o700)
    with pytest.raises(KeyFileError, match="regular file"):
        FileKeyring.open(key_path)


_B64_32 = base64.b64encode(bytes(32)).decode()
_KEK = {"version": 1, "status": "active", "key": _B64_32, "created_at": "t"}

MALFORMED: dict[str, Any] = {
    "not-json": "{not json",
    "not-utf8": b"\xff\xfe".decode("latin-1"),
    "empty": "",
    "array": "[]",
    "wrong-format": _valid_document(format="something-else"),
    "future-format-version": _valid_document(format_version=2),
    "no-keks": _valid_document(keks=[]),
    "keks-not-list": _valid_document(keks={"1": _KEK}),
    "kek-not-object": _valid_document(keks=["x"]),
    "version-zero": _valid_document(keks=[{**_KEK, "version": 0}], current=0),
    "version-bool": _valid_document(keks=[{**_KEK, "version": True}], current=True),
    "duplicate-version": _valid_document(keks=[_KEK, _KEK]),
    "bad-status": _valid_document(keks=[{**_KEK, "status": "disabled"}]),
    "bad-base64": _valid_document(keks=[{**_KEK, "key": "!!notbase64!!"}]),
    "short-key": _valid_document(keks=[{**_KEK, "key": base64.b64encode(bytes(16)).decode()}]),
    "key-not-string": _valid_document(keks=[{**_KEK, "key": 12}]),
    "missing-created-at": _valid_document(keks=[{k: v for k, v in _KEK.items() if k != "created_at"}]),
    "current-unlisted": _valid_document(current=2),
    "current-missing": {k: v for k, v in _valid_document().items() if k != "current"},
    "current-retired": _valid_document(
        keks=[{**_KEK, "status": "retired"}, {**_KEK, "version": 2}], current=1
    ),
    "no-blind-index-key": {k: v for k, v in _valid_document().items() if k != "blind_index_key"},
    "short-blind-index-key": _valid_document(
        blind_index_key={"key": base64.b64encode(bytes(31)).decode(), "created_at": "t"}
    ),
    "duplicate-field": json.dumps(_valid_document())[:-1] + ', "current": 1}',
}


@pytest.mark.parametrize("document", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_key_file_is_refused(key_path: Path, document: Any) -> None:
    """A damaged key file stops start-up with a message naming the file, never key bytes."""
    _write_document(key_path, document)
    with pytest.raises(KeyFileError, match="malformed") as caught:
        FileKeyring.open(key_path)
    assert str(key_path) in str(caught.value)
    assert _B64_32 not in str(caught.value)


def test_hand_written_valid_document_is_accepted(key_path: Path) -> None:
    _write_document(key_path, _valid_document())
    assert FileKeyring.open(key_path).versions() == {1: ACTIVE}


def test_file_keyring_implements_the_interfaces(keyring: FileKeyring) -> None:
    assert isinstance(keyring, Keyring)
    assert isinstance(keyring, BlindIndexKeySource)
    assert str(keyring.path) in repr(keyring)


# --- wrapping ----------------------------------------------------------------


@pytest.mark.parametrize("vector", load_vectors("wrap.json"), ids=lambda v: f"v{v['version']}")
def test_wrap_format_is_frozen(key_path: Path, vector: dict) -> None:
    """Stored wrapped keys stay unwrappable: wrap AAD and layout never drift."""
    kek, dek, nonce = (bytes.fromhex(vector[f]) for f in ("kek", "dek", "nonce"))
    version, context = vector["version"], vector["context"].encode()
    keks = [
        {"version": v, "status": "active", "key": base64.b64encode(kek if v == version else os.urandom(32)).decode(), "created_at": "t"}
        for v in range(1, version + 1)
    ]
    _write_document(key_path, _valid_document(keks=keks, current=version))
    keyring = FileKeyring.open(key_path, random_bytes=lambda n: nonce[:n])
    assert wrap_aad(version, context).hex() == vector["aad"]
    wrapped = keyring.wrap(dek, context)
    assert wrapped == WrappedKey(version, bytes.fromhex(vector["blob"]))
    assert wrapped.blob == seal(kek, dek, bytes.fromhex(vector["aad"]), nonce=nonce)
    assert wrapped.to_bytes().hex() == vector["wrapped_key_bytes"]
    assert WrappedKey.from_bytes(wrapped.to_bytes()) == wrapped
    assert keyring.unwrap(wrapped, context) == dek


def test_wrap_round_trip_uses_fresh_nonces(keyring: FileKeyring) -> None:
    first, second = keyring.wrap(DEK, CONTEXT), keyring.wrap(DEK, CONTEXT)
    assert first.blob != second.blob
    assert keyring.unwrap(first, CONTEXT) == keyring.unwrap(second, CONTEXT) == DEK
    assert DEK.hex() not in repr(first)


def test_unwrap_with_wrong_context_fails(keyring: FileKeyring) -> None:
    """Owner binding: a data key wrapped for one consultation does not unwrap for another."""
    wrapped = keyring.wrap(DEK, CONTEXT)
    with pytest.raises(CryptoError):
        keyring.unwrap(wrapped, b"consultation:43")


def test_unwrap_with_unknown_version_fails(keyring: FileKeyring) -> None:
    wrapped = keyring.wrap(DEK, CONTEXT)
    for version in (0, 2, -1, 2**40):
        with pytest.raises(CryptoError):
            keyring.unwrap(WrappedKey(version, wrapped.blob), CONTEXT)


def test_unwrap_with_relabelled_version_fails(keyring: FileKeyring) -> None:
    """The version is bound into the wrap AAD, so relabelling a blob does not help."""
    wrapped = keyring.wrap(DEK, CONTEXT)
    keyring.add_version()
    with pytest.raises(CryptoError):
        keyring.unwrap(WrappedKey(2, wrapped.blob), CONTEXT)


def test_unwrap_of_tampered_or_truncated_blob_fails(keyring: FileKeyring) -> None:
    wrapped = keyring.wrap(DEK, CONTEXT)
    tampered = bytearray(wrapped.blob)
    tampered[20] ^= 0x04
    for blob in (bytes(tampered), wrapped.blob[:-1], b"", wrapped.blob[:10]):
        with pytest.raises(CryptoError):
            keyring.unwrap(WrappedKey(1, blob), CONTEXT)


def test_unwrap_under_another_key_file_fails(keyring: FileKeyring, tmp_path: Path) -> None:
    other = FileKeyring.open(tmp_path / "other.json", create=True)
    with pytest.raises(CryptoError):
        other.unwrap(keyring.wrap(DEK, CONTEXT), CONTEXT)


def test_wrapped_key_from_short_bytes_fails() -> None:
    for data in (b"", b"\x00\x00\x00\x01"):
        with pytest.raises(CryptoError):
            WrappedKey.from_bytes(data)


@pytest.mark.parametrize("dek", [bytes(16), bytes(31), bytes(33), b""])
def test_wrap_of_wrong_length_key_raises_value_error(keyring: FileKeyring, dek: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        keyring.wrap(dek, CONTEXT)


def test_wrap_context_must_be_non_empty_bytes(keyring: FileKeyring) -> None:
    with pytest.raises(ValueError):
        keyring.wrap(DEK, b"")
    with pytest.raises(TypeError):
        keyring.wrap(DEK, "consultation:42")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyring.unwrap((1, b"x"), CONTEXT)  # type: ignore[arg-type]


# --- rotation and retirement -------------------------------------------------


def test_rotation_keeps_old_keys_readable_and_wraps_new_ones_under_the_new_version(
    keyring: FileKeyring,
) -> None:
    """docs/capabilities.md C4 rotation: after add_version old wraps still open, new ones use v2."""
    old = keyring.wrap(DEK, CONTEXT)
    assert keyring.add_version() == 2
    assert keyring.current_version() == 2
    assert keyring.versions() == {1: ACTIVE, 2: ACTIVE}
    assert keyring.unwrap(old, CONTEXT) == DEK
    new = keyring.wrap(DEK, CONTEXT)
    assert new.version == 2
    assert keyring.unwrap(new, CONTEXT) == DEK


def test_retired_version_no_longer_unwraps(keyring: FileKeyring) -> None:
    """Retiring a KEK version makes every key still wrapped under it unreadable."""
    old = keyring.wrap(DEK, CONTEXT)
    keyring.add_version()
    new = keyring.wrap(DEK, CONTEXT)
    keyring.retire(1)
    assert keyring.versions() == {1: RETIRED, 2: ACTIVE}
    with pytest.raises(CryptoError):
        keyring.unwrap(old, CONTEXT)
    assert keyring.unwrap(new, CONTEXT) == DEK


def test_retiring_the_current_version_is_refused(keyring: FileKeyring) -> None:
    with pytest.raises(ValueError, match="current"):
        keyring.retire(1)
    keyring.add_version()
    with pytest.raises(ValueError, match="current"):
        keyring.retire(2)
    assert keyring.versions() == {1: ACTIVE, 2: ACTIVE}


def test_retiring_an_unknown_version_is_refused(keyring: FileKeyring) -> None:
    with pytest.raises(ValueError, match="unknown"):
        keyring.retire(7)


def test_retire_is_idempotent_and_recorded(key_path: Path) -> None:
    keyring = FileKeyring.open(key_path, create=True, clock=lambda: FIXED_TIME)
    keyring.add_version()
    keyring.retire(1)
    keyring.retire(1)
    entry = _document(key_path)["keks"][0]
    assert entry["status"] == "retired" and entry["retired_at"] == FIXED_TIME.isoformat()
    assert _mode(key_path) == 0o600


def test_rotation_does_not_change_the_blind_index_key(keyring: FileKeyring) -> None:
    """Blind indexes survive KEK rotation: their key is a separate entry."""
    before = keyring.blind_index_key()
    keyring.add_version()
    keyring.retire(1)
    assert keyring.blind_index_key() == before


# --- another process rotates while this one runs -----------------------------


def test_running_keyring_sees_rotation_by_another_handle(keyring: FileKeyring, open_keyring) -> None:
    """The CLI rotates while the server runs: the server's handle follows the file."""
    cli = open_keyring()
    old = keyring.wrap(DEK, CONTEXT)
    cli.add_version()
    rewrapped = cli.wrap(cli.unwrap(old, CONTEXT), CONTEXT)
    assert keyring.current_version() == 2
    assert keyring.unwrap(rewrapped, CONTEXT) == DEK
    assert keyring.wrap(DEK, CONTEXT).version == 2
    cli.retire(1)
    with pytest.raises(CryptoError):
        keyring.unwrap(old, CONTEXT)


def test_explicit_reload_without_auto_reload(keyring: FileKeyring, open_keyring) -> None:
    server = open_keyring(auto_reload=False)
    keyring.add_version()
    assert server.current_version() == 1
    server.reload()
    assert server.current_version() == 2


def test_reload_refuses_a_file_that_became_unsafe(keyring: FileKeyring, key_path: Path) -> None:
    os.chmod(key_path, 0o644)
    with pytest.raises(KeyFileError):
        keyring.reload()
    with pytest.raises(KeyFileError):
        keyring.wrap(DEK, CONTEXT)


def test_concurrent_handles_do_not_lose_updates(keyring: FileKeyring, open_keyring) -> None:
    """Each read-modify-write rereads the file under the lock, never a stale copy."""
    stale = open_keyring(auto_reload=False)
    keyring.add_version()
    assert stale.add_version() == 3
    assert keyring.versions() == {1: ACTIVE, 2: ACTIVE, 3: ACTIVE}


def _rotate_many(path: str, times: int) -> None:
    keyring = FileKeyring.open(path)
    for _ in range(times):
        keyring.add_version()


def test_rotations_from_several_processes_are_all_kept(keyring: FileKeyring, key_path: Path) -> None:
    """Writers in separate processes are serialised by the file lock; no version is lost."""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_rotate_many, args=(str(key_path), 5)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(keyring.versions()) == list(range(1, 22))
    assert keyring.current_version() == 21
    assert _mode(key_path) == 0o600
    assert not [p for p in key_path.parent.iterdir() if p.name.endswith(".tmp")]
