"""The on-disk key file: its JSON format, strict parsing, permission checks,
atomic replacement and the lock that serialises writers across processes.

Format (``format_version`` 1)::

    {"format": "konsulta-keyfile", "format_version": 1, "current": 2,
     "keks": [{"version": 1, "status": "retired", "key": "<base64, 32 bytes>",
               "created_at": "...", "retired_at": "..."}, ...],
     "blind_index_key": {"key": "<base64, 32 bytes>", "created_at": "..."}}
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from .errors import KeyFileError

try:  # POSIX; elsewhere writers are serialised only within one process.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FileStamp",
    "KekRecord",
    "KeyFileContents",
    "exclusive_lock",
    "file_stamp",
    "read_key_file",
    "write_key_file",
]

FORMAT = "konsulta-keyfile"
FORMAT_VERSION = 1
KEY_BYTES = 32
_STATUSES = ("active", "retired")
# Like OpenSSH for private keys: any group or other permission bit is refused.
_UNSAFE_MODE_BITS = 0o077

FileStamp = tuple[int, int, int, int]
_thread_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class KekRecord:
    version: int
    status: str
    key: bytes = field(repr=False)
    created_at: str
    retired_at: str | None = None


@dataclass(frozen=True, slots=True)
class KeyFileContents:
    current: int
    keks: tuple[KekRecord, ...]
    blind_index_key: bytes = field(repr=False)
    blind_index_created_at: str


def file_stamp(path: Path) -> FileStamp:
    """Identity of the file's current version; `os.replace` always changes it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise KeyFileError(path, f"cannot be read ({exc.strerror})") from None
    return _stamp(st)


def _stamp(st: os.stat_result) -> FileStamp:
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def read_key_file(path: Path) -> tuple[KeyFileContents, FileStamp]:
    """Read, permission-check and parse the key file, or raise `KeyFileError`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(path, "does not exist") from None
    except OSError as exc:
        raise KeyFileError(path, f"cannot be opened ({exc.strerror})") from None
    try:
        # Check the file we actually read, not whatever the path names later.
        st = os.fstat(fd)
        _check_mode(path, st)
        data = _read_all(fd)
    except OSError as exc:
        raise KeyFileError(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    return decode(data, path), _stamp(st)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _check_mode(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(path, "is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & _UNSAFE_MODE_BITS:
        raise KeyFileError(
            path,
            f"permissions {mode:04o} let group or others read or write it; "
            f"run: chmod 600 {os.fspath(path)}",
        )


def write_key_file(path: Path, contents: KeyFileContents) -> None:
    """Replace the key file atomically: a reader sees the old or the new file, never half.

    The temporary file is created 0600 in the same directory, flushed to disk,
    renamed over the target, and the directory entry is flushed too.
    """
    try:
        _replace_with(path, encode(contents))
    except OSError as exc:
        raise KeyFileError(path, f"cannot be written ({exc.strerror})") from None


def _replace_with(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
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
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold the writers' lock for `path` (a sibling ``.lock`` file, flock'ed).

    Every read-modify-write of the key file runs under it, so a key rotation by
    the CLI and one by another process cannot lose each other's update.
    """
    with _thread_lock:
        if fcntl is None:  # pragma: no cover
            yield
            return
        lock_path = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise KeyFileError(path, f"cannot be locked for writing ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def encode(contents: KeyFileContents) -> bytes:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "current": contents.current,
        "keks": [_encode_kek(kek) for kek in contents.keks],
        "blind_index_key": {
            "key": _b64(contents.blind_index_key),
            "created_at": contents.blind_index_created_at,
        },
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _encode_kek(kek: KekRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "version": kek.version,
        "status": kek.status,
        "key": _b64(kek.key),
        "created_at": kek.created_at,
    }
    if kek.retired_at is not None:
        entry["retired_at"] = kek.retired_at
    return entry


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class _Malformed(Exception):
    """Internal: why parsing failed, turned into a `KeyFileError` naming the path."""


def decode(data: bytes, path: Path) -> KeyFileContents:
    """Parse key-file bytes strictly; anything unexpected raises `KeyFileError`."""
    try:
        return _decode(data)
    except _Malformed as exc:
        raise KeyFileError(path, f"is malformed: {exc}") from None


def _decode(data: bytes) -> KeyFileContents:
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Malformed("not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise _Malformed("top level is not an object")
    if document.get("format") != FORMAT:
        raise _Malformed(f'"format" is not "{FORMAT}"')
    if document.get("format_version") != FORMAT_VERSION:
        raise _Malformed(f'unsupported "format_version" (expected {FORMAT_VERSION})')
    keks = _decode_keks(document.get("keks"))
    current = document.get("current")
    by_version = {kek.version: kek for kek in keks}
    if not _is_int(current) or current not in by_version:
        raise _Malformed('"current" does not name a listed key version')
    if by_version[current].status != "active":
        raise _Malformed("the current key version is retired")
    index = document.get("blind_index_key")
    if not isinstance(index, dict):
        raise _Malformed('"blind_index_key" is missing')
    return KeyFileContents(
        current=current,
        keks=keks,
        blind_index_key=_decode_key(index.get("key"), "blind_index_key"),
        blind_index_created_at=_text(index.get("created_at"), "blind_index_key.created_at"),
    )


def _decode_keks(raw: object) -> tuple[KekRecord, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Malformed('"keks" must be a non-empty list')
    keks: list[KekRecord] = []
    for position, entry in enumerate(raw):
        where = f"keks[{position}]"
        if not isinstance(entry, dict):
            raise _Malformed(f"{where} is not an object")
        version = entry.get("version")
        if not _is_int(version) or version < 1:
            raise _Malformed(f"{where}.version must be a positive integer")
        if any(kek.version == version for kek in keks):
            raise _Malformed(f"key version {version} appears twice")
        status = entry.get("status")
        if status not in _STATUSES:
            raise _Malformed(f'{where}.status must be "active" or "retired"')
        retired_at = entry.get("retired_at")
        keks.append(
            KekRecord(
                version=version,
                status=status,
                key=_decode_key(entry.get("key"), f"{where}.key"),
                created_at=_text(entry.get("created_at"), f"{where}.created_at"),
                retired_at=None if retired_at is None else _text(retired_at, f"{where}.retired_at"),
            )
        )
    return tuple(keks)


def _decode_key(raw: object, where: str) -> bytes:
    if not isinstance(raw, str):
        raise _Malformed(f"{where} must be a base64 string")
    try:
        key = base64.b64decode(raw.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise _Malformed(f"{where} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise _Malformed(f"{where} must decode to {KEY_BYTES} bytes")
    return key


def _text(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise _Malformed(f"{where} must be a string")
    return raw


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _Malformed(f'duplicate field "{name}"')
        result[name] = value
    return result
