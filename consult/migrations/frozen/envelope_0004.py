"""The envelope encryption of migration 0004_encrypted_content, frozen with it.

A migration describes one fixed transformation of the data: it must do the same thing on every
database whatever the code around it has become, so it imports nothing of ``consult`` outside
``consult.migrations``. This is a copy of what 0004 needs of ``consult/config.py`` (where the key
file is) and of ``consult/crypto`` (``_encoding.py``, ``aead.py``, ``_keyfile.py``, ``keyring.py``
and ``datakey.py``) as they were when the migration was frozen:

- the key file: ``CONSULT_KEY_FILE``, else ``key_file`` in the ``CONSULT_CONFIG`` file, else
  ``keys.json`` in the data directory (``CONSULT_DATA_DIR``, else ``data_dir`` in the
  ``CONSULT_CONFIG`` file, else ``var``), relative paths taken from the working directory; its
  JSON format version 1, read strictly and refused when group or others may access it, and
  created (a first key-encryption key and a blind-index key, written atomically under the
  writers' lock) when there is none;
- a data key per consultation (32 random bytes), wrapped under the current key-encryption key
  version with associated data ``"konsulta/wrap/v1" ‖ version ‖ owner``;
- each value sealed in blob format 1 (``0x01 ‖ 96-bit random nonce ‖ AES-256-GCM ciphertext ‖
  tag``) bound to ``"konsulta/aad/v1" ‖ table ‖ row ‖ field``, every part length-prefixed.

It is never edited: the service reads what this writes (tests/test_migration_0004.py proves it
against the live code), and a later change of format needs a migration of its own if stored data
must follow it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeyFileProblem", "Keyring", "Sealer", "WrappedKey", "data_key", "key_file_path", "open_keyring", "seal"]

# -- consult/config.py: where the key file is -------------------------------------------------

KEY_FILE_NAME = "keys.json"
DEFAULT_DATA_DIR = Path("var")


class KeyFileProblem(Exception):
    """The key file cannot be found, read, parsed or created; the migration stops, changing nothing."""


def _setting(env: Mapping[str, str], config: Mapping[str, object], variable: str, name: str) -> str | None:
    """The text of one setting: the environment wins over the configuration file; None if unset."""
    where, raw = (variable, env[variable]) if variable in env else (name, config.get(name))
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise KeyFileProblem(f"{where} must be a text value")
    return raw.strip()


def key_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The service's key file, found the way its settings found it."""
    env = os.environ if env is None else env
    config: dict[str, Any] = {}
    config_file = env.get("CONSULT_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                config = tomllib.load(fh)
        except OSError as exc:
            raise KeyFileProblem(f"CONSULT_CONFIG: cannot read {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise KeyFileProblem(f"CONSULT_CONFIG: {config_file} is not valid TOML: {exc}") from None
    key_file = _setting(env, config, "CONSULT_KEY_FILE", "key_file")
    if key_file:
        return Path(key_file).absolute()
    data_dir = _setting(env, config, "CONSULT_DATA_DIR", "data_dir")
    if data_dir == "":
        raise KeyFileProblem("CONSULT_DATA_DIR must not be empty")
    return (Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR).absolute() / KEY_FILE_NAME


# -- consult/crypto/_encoding.py ---------------------------------------------------------------

_MAX_FIELD = 0xFFFF_FFFF


def _length_prefixed(*parts: bytes) -> bytes:
    """``len(part)`` (4 bytes, big-endian) ‖ ``part`` for each part: no two sequences encode alike."""
    out = bytearray()
    for part in parts:
        if len(part) > _MAX_FIELD:
            raise ValueError("field longer than 2**32 - 1 bytes")
        out += len(part).to_bytes(4, "big")
        out += part
    return bytes(out)


def _text_field(name: str, value: str) -> bytes:
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value.encode("utf-8")


# -- consult/crypto/aead.py --------------------------------------------------------------------

KEY_SIZE = 32
NONCE_SIZE = 12
BLOB_FORMAT_V1 = 0x01
_AAD_LABEL = b"konsulta/aad/v1"


class Sealer:
    """One AES-256-GCM key sealing values in blob format 1."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes")
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return "Sealer(<hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return b"".join((bytes([BLOB_FORMAT_V1]), nonce, self._aead.encrypt(nonce, plaintext, aad)))


def _aad_for(table: str, row_id: str, field_name: str) -> bytes:
    return _length_prefixed(_AAD_LABEL, _text_field("table", table), _text_field("row_id", row_id),
                            _text_field("field", field_name))


def seal(key: bytes, table: str, row_id: str, field_name: str, value: str) -> bytes:
    """``value`` (UTF-8) sealed under a data key, bound to where it is stored."""
    return Sealer(key).seal(value.encode("utf-8"), _aad_for(table, row_id, field_name))


# -- consult/crypto/_keyfile.py ----------------------------------------------------------------

FORMAT = "konsulta-keyfile"
FORMAT_VERSION = 1
_UNSAFE_MODE_BITS = 0o077


@dataclass(frozen=True, slots=True)
class _Kek:
    version: int
    status: str
    key: bytes = field(repr=False)


def _read_key_file(path: Path) -> tuple[int, dict[int, _Kek]]:
    """``(current version, {version: key})``, read, permission-checked and parsed strictly."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileProblem(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileProblem(f"key file {path} cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileProblem(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & _UNSAFE_MODE_BITS:
            raise KeyFileProblem(f"key file {path}: permissions {mode:04o} let group or others read or write it; "
                                 f"run: chmod 600 {os.fspath(path)}")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as exc:
        raise KeyFileProblem(f"key file {path} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        return _decode(b"".join(chunks))
    except ValueError as exc:
        raise KeyFileProblem(f"key file {path} is malformed: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f'duplicate field "{name}"')
        result[name] = value
    return result


def _decode_key(raw: object, where: str) -> bytes:
    if not isinstance(raw, str):
        raise ValueError(f"{where} must be a base64 string")
    try:
        key = base64.b64decode(raw.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"{where} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise ValueError(f"{where} must decode to {KEY_SIZE} bytes")
    return key


def _decode(data: bytes) -> tuple[int, dict[int, _Kek]]:
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise ValueError("top level is not an object")
    if document.get("format") != FORMAT:
        raise ValueError(f'"format" is not "{FORMAT}"')
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f'unsupported "format_version" (expected {FORMAT_VERSION})')
    raw_keks = document.get("keks")
    if not isinstance(raw_keks, list) or not raw_keks:
        raise ValueError('"keks" must be a non-empty list')
    keks: dict[int, _Kek] = {}
    for position, entry in enumerate(raw_keks):
        where = f"keks[{position}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not an object")
        version = entry.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{where}.version must be a positive integer")
        if version in keks:
            raise ValueError(f"key version {version} appears twice")
        status = entry.get("status")
        if status not in ("active", "retired"):
            raise ValueError(f'{where}.status must be "active" or "retired"')
        for name in ("created_at", *(("retired_at",) if entry.get("retired_at") is not None else ())):
            if not isinstance(entry.get(name), str):
                raise ValueError(f"{where}.{name} must be a string")
        keks[version] = _Kek(version, status, _decode_key(entry.get("key"), f"{where}.key"))
    current = document.get("current")
    if not isinstance(current, int) or isinstance(current, bool) or current not in keks:
        raise ValueError('"current" does not name a listed key version')
    if keks[current].status != "active":
        raise ValueError("the current key version is retired")
    index = document.get("blind_index_key")
    if not isinstance(index, dict):
        raise ValueError('"blind_index_key" is missing')
    _decode_key(index.get("key"), "blind_index_key")
    if not isinstance(index.get("created_at"), str):
        raise ValueError("blind_index_key.created_at must be a string")
    return current, keks


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _new_key_file() -> bytes:
    """A new key file: key-encryption key version 1 (current) and a blind-index key."""
    now = datetime.now(UTC).isoformat()
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "current": 1,
        "keks": [{"version": 1, "status": "active", "key": _b64(os.urandom(KEY_SIZE)), "created_at": now}],
        "blind_index_key": {"key": _b64(os.urandom(KEY_SIZE)), "created_at": now},
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """The writers' lock of the key file (a sibling ``.lock`` file, flock'ed), as the service takes it."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyFileProblem(f"key file {path} cannot be locked for writing ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` as the file at ``path`` atomically: a 0600 temporary file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileProblem(f"key file {path}: cannot create its directory ({exc.strerror})") from None
    with _exclusive_lock(path):
        if path.exists():  # another process made it meanwhile; use its keys
            return
        try:
            _write_new(path, _new_key_file())
        except OSError as exc:
            raise KeyFileProblem(f"key file {path} cannot be written ({exc.strerror})") from None


# -- consult/crypto/keyring.py and datakey.py --------------------------------------------------

_WRAP_LABEL = b"konsulta/wrap/v1"
_VERSION_BYTES = 4


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key sealed under key-encryption key ``version`` (the ``data_keys`` row's two columns)."""

    version: int
    blob: bytes = field(repr=False)


class Keyring:
    """The current key-encryption key of the key file, wrapping data keys."""

    def __init__(self, path: Path) -> None:
        self._version, keks = _read_key_file(path)
        self._sealer = Sealer(keks[self._version].key)

    def wrap(self, dek: bytes, owner: str) -> WrappedKey:
        context = _text_field("owner", owner)
        aad = _length_prefixed(_WRAP_LABEL, self._version.to_bytes(_VERSION_BYTES, "big"), context)
        return WrappedKey(self._version, self._sealer.seal(dek, aad))


def open_keyring(env: Mapping[str, str] | None = None) -> Keyring:
    """The service's keyring, its key file created when there is none."""
    path = key_file_path(env)
    if not path.exists():
        _create(path)
    return Keyring(path)


def data_key(keyring: Keyring, owner: str) -> tuple[bytes, WrappedKey]:
    """A new data key for ``owner`` (``consultation:<id>``) and its wrapped form, to be stored with it."""
    dek = os.urandom(KEY_SIZE)
    return dek, keyring.wrap(dek, owner)
