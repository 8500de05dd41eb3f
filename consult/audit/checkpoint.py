"""Signed tree heads in the C2SP formats: the ``tlog-checkpoint`` body and the
Ed25519 ``signed-note`` around it, with the verifier key that checks them.

    <origin>\\n<tree size>\\n<base64 root hash>\\n[extension lines\\n]
    \\n
    — <key name> <base64(key ID ‖ Ed25519 signature)>\\n

Specifications: https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note
(the formats of golang.org/x/mod/sumdb/note, Trillian, Tessera and Sigstore).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from consult.crypto import signing

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_body",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

# signed-note §Signature types: 0x01 is Ed25519.
_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_HASH_SIZE = 32

MAX_SIGNATURES = 100
"""More signature lines than this make a note malformed (the spec asks for at least 16)."""

_SIZE = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_MAX_TREE_SIZE = (1 << 64) - 1


class CheckpointError(Exception):
    """A note or checkpoint that must not be trusted: malformed, or not signed
    by the expected key. The message says which of the two, nothing more."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified tree head: the log's ``origin``, its ``size`` and ``root`` hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def checkpoint_body(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """The checkpoint note text: origin, size and base64 root, one per line.

    The origin doubles as the key name, so it must also be a valid key name
    (no spaces, no ``+``), as the tlog-checkpoint spec recommends.
    """
    _check_name("origin", origin)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_TREE_SIZE:
        raise ValueError(f"tree size must be an int in 0..2**64-1, got {size!r}")
    if len(root) != _HASH_SIZE:
        raise ValueError(f"root hash must be {_HASH_SIZE} bytes, got {len(root)}")
    lines = [origin, str(size), _b64(root)]
    for ext in extensions:
        if not ext or "\n" in ext or not _is_note_text(ext):
            raise ValueError("extension lines must be non-empty text without control characters")
        lines.append(ext)
    return "\n".join(lines) + "\n"


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly; `CheckpointError` if malformed.

    Checks what tlog-checkpoint requires: at least three non-empty lines,
    a decimal size without leading zeros, a canonical base64 SHA-256 root and
    no empty extension line.
    """
    if not text.endswith("\n") or not _is_note_text(text):
        raise CheckpointError("malformed checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise CheckpointError("malformed checkpoint")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text):
        raise CheckpointError("malformed checkpoint")
    size = int(size_text)
    root = _b64decode_strict(root_text)
    if size > _MAX_TREE_SIZE or root is None or len(root) != _HASH_SIZE:
        raise CheckpointError("malformed checkpoint")
    return Checkpoint(origin, size, root, tuple(extensions))


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte note key ID: ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:_KEY_ID_SIZE]


def verifier_key(name: str, public: bytes) -> str:
    """The verifier key string ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``."""
    _check_name("key name", name)
    if len(public) != signing.PUBLIC_KEY_SIZE:
        raise ValueError(
            f"an Ed25519 public key is {signing.PUBLIC_KEY_SIZE} bytes, got {len(public)}"
        )
    return f"{name}+{key_id(name, public).hex()}+{_b64(_ED25519 + public)}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes, bytes]:
    """Split a verifier key into (name, key ID, Ed25519 public key).

    `ValueError` for anything but an Ed25519 key whose ID matches its name
    and public key: the string is configuration, so a bad one must stop use.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise ValueError("verifier key must be <name>+<hex key id>+<base64 key>")
    name, id_hex, key_b64 = parts
    if not _is_key_name(name) or not _HEX_KEY_ID.fullmatch(id_hex):
        raise ValueError("verifier key has a malformed name or key id")
    key = _b64decode_strict(key_b64)
    if key is None or len(key) != 1 + signing.PUBLIC_KEY_SIZE or key[:1] != _ED25519:
        raise ValueError("verifier key is not a base64 Ed25519 (0x01) public key")
    public = key[1:]
    if key_id(name, public) != bytes.fromhex(id_hex):
        raise ValueError("verifier key id does not match its name and public key")
    return name, bytes.fromhex(id_hex), public


def sign_note(text: str, name: str, seed: bytes) -> str:
    """Sign note ``text`` (ending in a newline) with an Ed25519 key named ``name``."""
    _check_name("key name", name)
    if not text.endswith("\n") or not _is_note_text(text):
        raise ValueError("note text must end in a newline and contain no control characters")
    public = signing.public_key(seed)
    signature = signing.sign(seed, text.encode())
    return f"{text}\n{_SIG_PREFIX}{name} {_b64(key_id(name, public) + signature)}\n"


def sign_checkpoint(name: str, seed: bytes, body: str) -> str:
    """Sign a checkpoint body (see `checkpoint_body`) as a signed note."""
    try:
        parse_checkpoint_body(body)
    except CheckpointError:
        raise ValueError("not a well-formed checkpoint body") from None
    return sign_note(body, name, seed)


def open_note(note: str, vkey: str) -> str:
    """The text of ``note`` once a signature by ``vkey`` verifies.

    Follows signed-note: signatures from other keys (other name or key ID)
    are ignored; any signature from this key that fails to verify rejects
    the note, and so does having none.
    """
    name, kid, public = parse_verifier_key(vkey)
    text, signatures = _split_note(note)
    message = text.encode()
    verified = False
    for sig_name, blob in signatures:
        if sig_name != name or blob[:_KEY_ID_SIZE] != kid:
            continue
        if not signing.verify(public, message, blob[_KEY_ID_SIZE:]):
            raise CheckpointError("note signature not verified")
        verified = True
    if not verified:
        raise CheckpointError("note signature not verified")
    return text


def open_checkpoint(note: str, vkey: str, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with ``vkey`` and return its tree head.

    ``origin``, when given, must equal the checkpoint's origin line, so that a
    head of some other log signed by the same key is not taken for this one.
    """
    checkpoint = parse_checkpoint_body(open_note(note, vkey))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("checkpoint is for another log")
    return checkpoint


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text and (key name, decoded signature) pairs."""
    if not isinstance(note, str) or not _is_note_text(note):
        raise CheckpointError("malformed note")
    # The text ends at the last blank line; everything after it is signatures.
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("malformed note")
    signatures = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError("malformed note")
        sig_name, sep, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        blob = _b64decode_strict(sig_b64) if sep else None
        if blob is None or not _is_key_name(sig_name) or len(blob) <= _KEY_ID_SIZE:
            raise CheckpointError("malformed note")
        signatures.append((sig_name, blob))
    return text, signatures


def _is_note_text(text: str) -> bool:
    """Valid UTF-8 (no lone surrogates) without ASCII controls other than newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ch < " " and ch != "\n" for ch in text)


def _is_key_name(name: str) -> bool:
    # signed-note: non-empty, no Unicode spaces, no '+'.
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _is_note_text(name)
    )


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not _is_key_name(name):
        raise ValueError(f"{what} must be non-empty text without spaces, '+' or control characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode_strict(text: str) -> bytes | None:
    """Standard padded base64 (RFC 4648 §4) in its one canonical spelling, else None."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return data if _b64(data) == text else None
