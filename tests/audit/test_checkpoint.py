"""C2SP tlog-checkpoint bodies and signed notes: formats, round trips, the
golang.org/x/mod/sumdb/note reference vectors, and every way a note must fail."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consult.audit import merkle
from consult.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_body,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint_body,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from consult.crypto import signing

# golang.org/x/mod/sumdb/note note_test.go (TestNewVerifier, TestSign, TestOpen):
# the example keys of the signed-note reference implementation and its signatures.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# The 8-leaf RFC 6962 test tree root (tests/vectors/rfc9162) and its base64
# spelling as transparency-dev/merkle testdata/consistency/1/happy-path.json gives it.
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
ROOT8_B64 = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="

ORIGIN = "konsulta.example/audit/test"


def _peter_seed() -> bytes:
    # "PRIVATE+KEY+<name>+<hex id>+base64(0x01 ‖ seed)"
    blob = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert blob[0] == 1
    return blob[1:]


@pytest.fixture(scope="module")
def log_key() -> tuple[bytes, str]:
    seed = signing.generate_signing_key()
    return seed, verifier_key(ORIGIN, signing.public_key(seed))


def _independent_open(note: str, vkey: str) -> str:
    """signed-note verification written straight from the C2SP text, for cross-checking."""
    name, hex_id, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 0x01
    text, _, sigs = note.rpartition("\n\n")
    text += "\n"
    for line in sigs.splitlines():
        dash, sig_name, sig_b64 = line.split(" ")
        blob = base64.b64decode(sig_b64)
        if dash == "\u2014" and sig_name == name and blob[:4].hex() == hex_id:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(blob[4:], text.encode())
            return text
    raise AssertionError("no signature by the key")


# -- formats ----------------------------------------------------------------------


def test_checkpoint_body_is_the_c2sp_three_lines() -> None:
    """origin, decimal size and standard base64 root, each ending in a newline."""
    assert checkpoint_body(ORIGIN, 8, ROOT8) == f"{ORIGIN}\n8\n{ROOT8_B64}\n"
    assert checkpoint_body(ORIGIN, 0, merkle.EMPTY_ROOT) == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    assert checkpoint_body(ORIGIN, 8, ROOT8, ["ext one", "ext two"]) == (
        f"{ORIGIN}\n8\n{ROOT8_B64}\next one\next two\n"
    )


def test_key_id_and_verifier_key_format(log_key: tuple[bytes, str]) -> None:
    """key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pub)[:4]; vkey = name+hexid+base64(0x01 ‖ pub)."""
    seed, vkey = log_key
    public = signing.public_key(seed)
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id(ORIGIN, public) == expected_id
    key_b64 = base64.b64encode(b"\x01" + public).decode()
    assert vkey == f"{ORIGIN}+{expected_id.hex()}+{key_b64}"
    assert re.fullmatch(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey)
    assert parse_verifier_key(vkey) == (ORIGIN, expected_id, public)


def test_signed_checkpoint_layout(log_key: tuple[bytes, str]) -> None:
    """body, blank line, then '— <name> base64(key ID ‖ 64-byte signature)' and a newline."""
    seed, _ = log_key
    body = checkpoint_body(ORIGIN, 8, ROOT8)
    note = sign_checkpoint(ORIGIN, seed, body)
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    blob = base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1], validate=True)
    assert blob[:4] == key_id(ORIGIN, signing.public_key(seed)) and len(blob) == 68


# -- round trips and the reference implementation's vectors -------------------------------


def test_round_trip(log_key: tuple[bytes, str]) -> None:
    """A checkpoint signed with the log key opens to the same tree head."""
    seed, vkey = log_key
    note = sign_checkpoint(ORIGIN, seed, checkpoint_body(ORIGIN, 8, ROOT8, ["x"]))
    assert open_checkpoint(note, vkey) == Checkpoint(ORIGIN, 8, ROOT8, ("x",))
    assert open_checkpoint(note, vkey, origin=ORIGIN).size == 8


def test_our_checkpoint_passes_an_independent_verifier(log_key: tuple[bytes, str]) -> None:
    """A verifier written from the C2SP text alone accepts what we sign."""
    seed, vkey = log_key
    body = checkpoint_body(ORIGIN, 123, ROOT8)
    assert _independent_open(sign_checkpoint(ORIGIN, seed, body), vkey) == body


def test_reference_key_and_signature_reproduced_byte_for_byte() -> None:
    """Ed25519 is deterministic, so the Go reference's key string and note must come out exactly."""
    seed = _peter_seed()
    assert verifier_key("PeterNeumann", signing.public_key(seed)) == PETER_VKEY
    assert sign_note(TEXT, "PeterNeumann", seed) == TEXT + "\n" + PETER_SIG


def test_reference_notes_open() -> None:
    """TestOpen: one known key among several signatures; the unknown one is ignored."""
    assert open_note(TEXT + "\n" + PETER_SIG, PETER_VKEY) == TEXT
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, PETER_VKEY) == TEXT
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, ENOCH_VKEY) == TEXT
    # Repeated identical signatures, as in TestOpen, are fine.
    assert open_note(TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG, PETER_VKEY) == TEXT


def test_reference_note_with_altered_text_is_rejected() -> None:
    """One changed character in the signed text breaks the signature."""
    note = TEXT + "\n" + PETER_SIG
    with pytest.raises(CheckpointError):
        open_note(note.replace("cryptography", "cryptographY"), PETER_VKEY)


def test_reference_note_with_corrupted_signature_is_rejected() -> None:
    """TestOpen 'invalid signature': bytes spliced into the signature."""
    with pytest.raises(CheckpointError):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], PETER_VKEY)


def test_note_without_a_signature_from_the_key_is_rejected() -> None:
    """Only signatures by other keys: no verifiable signature, so no trust."""
    with pytest.raises(CheckpointError):
        open_note(TEXT + "\n" + ENOCH_SIG, PETER_VKEY)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
        TEXT + "\n" + PETER_SIG.replace("—", "-"),
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann AAAA\n",
        TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),
    ],
    ids=[
        "no-signatures",
        "blank-line-only",
        "no-final-newline",
        "control-character",
        "invalid-utf8",
        "bad-key-name",
        "unexpected-line",
        "too-many-signatures",
        "hyphen-not-em-dash",
        "empty-signature",
        "signature-shorter-than-key-id",
        "unpadded-base64",
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    """The malformed-note table of TestOpen, plus strict base64 and the em dash."""
    with pytest.raises(CheckpointError):
        open_note(note, PETER_VKEY)


def test_reference_verifier_key_manglings_are_rejected() -> None:
    """TestNewVerifier: every proper substring and every one-byte change of the key fails."""
    parse_verifier_key(PETER_VKEY)
    b = PETER_VKEY.encode()
    bad: set[bytes] = {b[i:j] for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1)}
    bad.discard(b)
    bad |= {b[:i] + bytes([b[i] + 1]) + b[i + 1 :] for i in range(len(b))}
    bad |= {
        b"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        b"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    }
    for vkey in bad:
        try:
            text = vkey.decode()
        except UnicodeDecodeError:
            continue
        with pytest.raises(ValueError):
            parse_verifier_key(text)


# -- checkpoints that must not be trusted ----------------------------------------------


def test_checkpoint_signed_by_another_key_is_rejected(log_key: tuple[bytes, str]) -> None:
    """A head signed by some other key, even under the log's name, is not the log's head."""
    _, vkey = log_key
    impostor = signing.generate_signing_key()
    note = sign_checkpoint(ORIGIN, impostor, checkpoint_body(ORIGIN, 8, ROOT8))
    with pytest.raises(CheckpointError):
        open_checkpoint(note, vkey)


def test_signature_with_the_right_key_id_but_forged_bytes_rejects_the_note(
    log_key: tuple[bytes, str],
) -> None:
    """A failing signature from the known key rejects the note even beside a good one."""
    seed, vkey = log_key
    note = sign_checkpoint(ORIGIN, seed, checkpoint_body(ORIGIN, 8, ROOT8))
    kid = key_id(ORIGIN, signing.public_key(seed))
    forged = "\u2014 " + ORIGIN + " " + base64.b64encode(kid + b"\x00" * 64).decode() + "\n"
    with pytest.raises(CheckpointError):
        open_checkpoint(note + forged, vkey)


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n8\n", "\n9\n"), ("\n8\n", "\n80\n"), (ORIGIN + "\n", ORIGIN + "x\n"), ("Xcn", "Ycn")],
    ids=["size", "size-digit-appended", "origin", "root"],
)
def test_modified_checkpoint_body_is_rejected(log_key: tuple[bytes, str], old: str, new: str) -> None:
    """Changing any line of a signed checkpoint breaks the signature."""
    seed, vkey = log_key
    note = sign_checkpoint(ORIGIN, seed, checkpoint_body(ORIGIN, 8, ROOT8))
    assert old in note
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace(old, new, 1), vkey)


def test_checkpoint_for_another_origin_is_rejected(log_key: tuple[bytes, str]) -> None:
    """A caller that names the expected origin refuses a head of another log."""
    seed, vkey = log_key
    note = sign_note(checkpoint_body("other.example/log", 8, ROOT8), ORIGIN, seed)
    assert open_checkpoint(note, vkey).origin == "other.example/log"
    with pytest.raises(CheckpointError):
        open_checkpoint(note, vkey, origin=ORIGIN)


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n8\n",
        f"{ORIGIN}\n08\n{ROOT8_B64}\n",
        f"{ORIGIN}\n-8\n{ROOT8_B64}\n",
        f"{ORIGIN}\n+8\n{ROOT8_B64}\n",
        f"{ORIGIN}\n８\n{ROOT8_B64}\n",
        f"{ORIGIN}\n8 \n{ROOT8_B64}\n",
        f"{ORIGIN}\n{2**64}\n{ROOT8_B64}\n",
        f"{ORIGIN}\n8\n{ROOT8_B64[:-1]}\n",
        f"{ORIGIN}\n8\n{base64.b64encode(ROOT8[:31]).decode()}\n",
        f"{ORIGIN}\n8\n{ROOT8.hex()}\n",
        f"{ORIGIN}\n8\n{ROOT8_B64[:-2]}R=\n",
        f"\n8\n{ROOT8_B64}\n",
        f"{ORIGIN}\n8\n{ROOT8_B64}\n\next\n",
        f"{ORIGIN}\n8\n{ROOT8_B64}",
    ],
    ids=[
        "two-lines",
        "leading-zero",
        "negative",
        "plus-sign",
        "non-ascii-digit",
        "trailing-space",
        "size-over-uint64",
        "truncated-base64",
        "short-root",
        "hex-root",
        "non-canonical-base64",
        "empty-origin",
        "empty-extension-line",
        "no-final-newline",
    ],
)
def test_malformed_checkpoint_body_is_rejected_even_when_signed(
    log_key: tuple[bytes, str], body: str
) -> None:
    """A correctly signed note whose text is not a strict checkpoint is still refused."""
    seed, vkey = log_key
    with pytest.raises(CheckpointError):
        parse_checkpoint_body(body)
    if body.endswith("\n") and "\n\n" not in body:
        with pytest.raises(CheckpointError):
            open_checkpoint(sign_note(body, ORIGIN, seed), vkey)
    with pytest.raises(ValueError):
        sign_checkpoint(ORIGIN, seed, body)


def test_parse_accepts_the_spec_example() -> None:
    """The example body in c2sp.org/tlog-checkpoint parses."""
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint_body(body)
    assert (cp.origin, cp.size, len(cp.root), cp.extensions) == ("example.com/behind-the-sofa", 20852163, 32, ())


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT8),
        ("has space", 1, ROOT8),
        ("has+plus", 1, ROOT8),
        ("two\nlines", 1, ROOT8),
        (ORIGIN, -1, ROOT8),
        (ORIGIN, 2**64, ROOT8),
        (ORIGIN, True, ROOT8),
        (ORIGIN, 1, ROOT8[:31]),
    ],
)
def test_checkpoint_body_rejects_bad_arguments(args: tuple) -> None:
    """Building a body from bad parts is a programmer error, raised at once."""
    with pytest.raises(ValueError):
        checkpoint_body(*args)
    with pytest.raises(ValueError):
        checkpoint_body(ORIGIN, 1, ROOT8, ["line\nbreak"])
    with pytest.raises(ValueError):
        checkpoint_body(ORIGIN, 1, ROOT8, [""])


def test_key_names_and_note_text_are_checked_when_signing(log_key: tuple[bytes, str]) -> None:
    """Names with spaces or '+' and text without a final newline cannot be signed."""
    seed, _ = log_key
    with pytest.raises(ValueError):
        sign_note(TEXT, "bad name", seed)
    with pytest.raises(ValueError):
        sign_note(TEXT, "bad+name", seed)
    with pytest.raises(ValueError):
        sign_note(TEXT.rstrip("\n"), "name", seed)
    with pytest.raises(ValueError):
        verifier_key("name", b"\x00" * 31)


def test_audit_modules_leave_ed25519_to_the_crypto_layer() -> None:
    """Only consult/crypto touches cryptography.hazmat (STYLE: one place for primitives)."""
    import consult.audit.checkpoint as checkpoint_module
    import consult.audit.merkle as merkle_module

    for module in (checkpoint_module, merkle_module):
        source = open(module.__file__, encoding="utf-8").read()
        assert "cryptography" not in source, module.__name__
