"""Ed25519 keys that sign audit-log checkpoints: raw 32-byte seeds, signatures,
and the seed file kept beside the database (created 0600, atomically)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from consult.crypto.errors import KeyFileError
from consult.crypto.fingerprint import public_key_fingerprint

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "generate_signing_key",
    "load_or_create_signing_key",
    "load_signing_key",
    "public_key",
    "save_signing_key",
    "sign",
    "signing_key_fingerprint",
    "verify",
]

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def generate_signing_key() -> bytes:
    """A fresh random Ed25519 private key, as its raw 32-byte seed (RFC 8032)."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte public key of ``seed``."""
    return _private_key(seed).public_key().public_bytes_raw()


def signing_key_fingerprint(seed: bytes) -> str:
    """The fingerprint of the signing key, computed from its public half."""
    return public_key_fingerprint("audit-signing", public_key(seed))


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
    return _private_key(seed).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public``.

    A bad, truncated or foreign signature is False, never an exception; only a
    public key of the wrong size, which is a programmer error, raises.
    """
    if len(public) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(public)}")
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public)).verify(bytes(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def save_signing_key(path: str | os.PathLike[str], seed: bytes, *, overwrite: bool = False) -> None:
    """Write ``seed`` to ``path`` as one base64 line, in a file of mode 0600.

    The file appears complete or not at all: it is written to a temporary file
    in the same directory, synced, then linked into place. Without
    ``overwrite`` an existing key is never replaced (`FileExistsError`): a
    checkpoint key that changes silently would orphan every earlier checkpoint.
    """
    _check_seed(seed)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer, threads of one process included: a shared name would make a second
    # writer fail before the first has linked its key into place.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(seed) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def load_signing_key(path: str | os.PathLike[str]) -> bytes:
    """Read the seed that `save_signing_key` wrote; `KeyFileError` if unsafe or malformed.

    A file that group or others may read or write is refused, as OpenSSH
    refuses a private key with loose permissions.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(path, "does not exist") from None
    except OSError as exc:
        raise KeyFileError(path, f"cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(path, "is not a regular file")
        if os.name == "posix" and info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise KeyFileError(
                path, f"has mode {mode:04o}; it must not be accessible to group or others"
            )
        data = fh.read(256)
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(path, "is not a base64 Ed25519 seed") from None
    if len(seed) != SEED_SIZE:
        raise KeyFileError(path, f"holds {len(seed)} bytes, not a {SEED_SIZE}-byte Ed25519 seed")
    return seed


def load_or_create_signing_key(path: str | os.PathLike[str]) -> bytes:
    """The seed at ``path``, generating and saving a new one on first use.

    Two processes starting together end up with the same key: only one link
    into place succeeds, and the other reads what it wrote.
    """
    if not os.path.lexists(path):
        with contextlib.suppress(FileExistsError):
            save_signing_key(path, generate_signing_key())
    return load_signing_key(path)


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    _check_seed(seed)
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def _check_seed(seed: bytes) -> None:
    if len(seed) != SEED_SIZE:
        raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
