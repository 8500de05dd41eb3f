"""AES-256-GCM sealing: published vectors, the frozen blob format, row binding
through aad_for, and one negative test per way a blob can fail to open."""

from __future__ import annotations

import struct

import pytest
from crypto_vectors import load_vectors
from hypothesis import given
from hypothesis import strategies as st

from consult.crypto import (
    BLOB_FORMAT_V1,
    BLOB_OVERHEAD,
    NONCE_SIZE,
    TAG_SIZE,
    CryptoError,
    SealingKey,
    aad_for,
    open_sealed,
    seal,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
AAD = aad_for("messages", "m-1", "text", "consultation:7")
PLAINTEXT = "Asiakkaan hakemus on saapunut.".encode()

GCM = load_vectors("aes_256_gcm.json")


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


@pytest.mark.parametrize("vector", [v for v in GCM if v["result"] == "valid"], ids=lambda v: f"tc{v['tc_id']}")
def test_gcm_known_answers(vector: dict) -> None:
    """seal() with the vector's IV yields exactly the published ciphertext and tag."""
    key, iv, aad, msg = (bytes.fromhex(vector[f]) for f in ("key", "iv", "aad", "msg"))
    blob = seal(key, msg, aad, nonce=iv)
    assert blob == bytes([BLOB_FORMAT_V1]) + iv + bytes.fromhex(vector["ct"] + vector["tag"])
    assert open_sealed(key, blob, aad) == msg


@pytest.mark.parametrize("vector", [v for v in GCM if v["result"] == "invalid"], ids=lambda v: f"tc{v['tc_id']}")
def test_gcm_invalid_vectors_are_refused(vector: dict) -> None:
    """Integrity: any edit to key, AAD, ciphertext or tag of a valid vector is refused."""
    key, iv, aad = (bytes.fromhex(vector[f]) for f in ("key", "iv", "aad"))
    blob = bytes([BLOB_FORMAT_V1]) + iv + bytes.fromhex(vector["ct"] + vector["tag"])
    with pytest.raises(CryptoError):
        open_sealed(key, blob, aad)


@pytest.mark.parametrize("vector", load_vectors("blob_v1.json"), ids=lambda v: v["aad_parts"][0])
def test_blob_format_v1_is_frozen(vector: dict) -> None:
    """Stored ciphertexts stay readable: the v1 layout and aad encoding never drift."""
    key, nonce, plaintext, blob = (
        bytes.fromhex(vector[f]) for f in ("key", "nonce", "plaintext", "blob")
    )
    aad = aad_for(*vector["aad_parts"])
    assert aad.hex() == vector["aad"]
    assert seal(key, plaintext, aad, nonce=nonce) == blob
    assert blob[0] == BLOB_FORMAT_V1 and blob[1 : 1 + NONCE_SIZE] == nonce
    assert len(blob) == len(plaintext) + BLOB_OVERHEAD
    assert open_sealed(key, blob, aad) == plaintext


def _reference_aad(*parts: str) -> bytes:
    fields = [b"konsulta/aad/v1", *(p.encode() for p in parts)]
    return b"".join(struct.pack(">I", len(f)) + f for f in fields)


@pytest.mark.parametrize("vector", load_vectors("aad_for.json"), ids=lambda v: "/".join(v["parts"]))
def test_aad_for_encoding_is_frozen(vector: dict) -> None:
    assert aad_for(*vector["parts"]).hex() == vector["aad"]
    assert aad_for(*vector["parts"]) == _reference_aad(*vector["parts"])


def test_aad_for_is_unambiguous() -> None:
    """Row binding: shifting bytes between fields or adding an empty field changes the AAD."""
    assert aad_for("ab", "c", "d") != aad_for("a", "bc", "d")
    assert aad_for("t", "1", "f") != aad_for("t", "1", "f", "")
    assert aad_for("t", "1", "f", "x", "y") != aad_for("t", "1", "f", "xy")
    assert aad_for("t", "12", "f") != aad_for("t", "1", "2f")


def test_round_trip_with_random_nonce() -> None:
    first = seal(KEY, PLAINTEXT, AAD)
    second = seal(KEY, PLAINTEXT, AAD)
    assert first != second  # a fresh nonce each time
    assert open_sealed(KEY, first, AAD) == open_sealed(KEY, second, AAD) == PLAINTEXT


@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=64))
def test_round_trip_property(plaintext: bytes, aad: bytes) -> None:
    assert open_sealed(KEY, seal(KEY, plaintext, aad), aad) == plaintext


# --- one negative test per failure path -------------------------------------


def test_wrong_key_fails() -> None:
    """Confidentiality: a blob opens only under the key that sealed it."""
    with pytest.raises(CryptoError):
        open_sealed(OTHER_KEY, seal(KEY, PLAINTEXT, AAD), AAD)


@pytest.mark.parametrize(
    "moved_to",
    [
        aad_for("consultations", "m-1", "text", "consultation:7"),
        aad_for("messages", "m-2", "text", "consultation:7"),
        aad_for("messages", "m-1", "question", "consultation:7"),
        aad_for("messages", "m-1", "text", "consultation:8"),
    ],
    ids=["other-table", "other-row", "other-field", "other-consultation"],
)
def test_ciphertext_moved_elsewhere_fails(moved_to: bytes) -> None:
    """docs/capabilities.md C4: a ciphertext copied to another table, row or field does not decrypt."""
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, blob, moved_to)


def test_tampered_ciphertext_fails() -> None:
    """Integrity: one flipped ciphertext bit is detected."""
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, _flip(blob, 1 + NONCE_SIZE), AAD)


def test_tampered_tag_fails() -> None:
    """Integrity: one flipped tag bit is detected."""
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, _flip(blob, len(blob) - 1, 0x80), AAD)


def test_tampered_nonce_fails() -> None:
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, _flip(blob, 1), AAD)


@pytest.mark.parametrize("length", [0, 1, 1 + NONCE_SIZE, BLOB_OVERHEAD - 1])
def test_truncated_blob_fails(length: int) -> None:
    """Malformed input is an opaque CryptoError, never an IndexError or ValueError."""
    blob = seal(KEY, b"", AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, blob[:length], AAD)


def test_blob_cut_inside_the_tag_fails() -> None:
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, blob[: len(blob) - TAG_SIZE // 2], AAD)


def test_appended_bytes_fail() -> None:
    blob = seal(KEY, PLAINTEXT, AAD)
    with pytest.raises(CryptoError):
        open_sealed(KEY, blob + b"\x00", AAD)


@pytest.mark.parametrize("version", [0x00, 0x02, 0xFF])
def test_unknown_version_byte_fails(version: int) -> None:
    """Only format v1 is accepted; another version byte is refused, not guessed at."""
    blob = bytearray(seal(KEY, PLAINTEXT, AAD))
    blob[0] = version
    with pytest.raises(CryptoError):
        open_sealed(KEY, bytes(blob), AAD)


# --- programmer errors are loud and immediate -------------------------------


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_wrong_key_length_raises_value_error(size: int) -> None:
    """Rule 5: a wrong key size is a bug in the caller, reported at once, not CryptoError."""
    key = bytes(size)
    with pytest.raises(ValueError, match="32 bytes"):
        seal(key, PLAINTEXT, AAD)
    with pytest.raises(ValueError, match="32 bytes"):
        open_sealed(key, seal(KEY, PLAINTEXT, AAD), AAD)
    with pytest.raises(ValueError, match="32 bytes"):
        SealingKey(key)


def test_key_of_wrong_type_raises_type_error() -> None:
    with pytest.raises(TypeError):
        seal("0" * 32, PLAINTEXT, AAD)  # type: ignore[arg-type]


@pytest.mark.parametrize("nonce", [b"", bytes(8), bytes(16)])
def test_wrong_nonce_length_raises_value_error(nonce: bytes) -> None:
    with pytest.raises(ValueError, match="nonce"):
        seal(KEY, PLAINTEXT, AAD, nonce=nonce)


@pytest.mark.parametrize(
    "args",
    [("", "1", "text"), ("messages", "", "text"), ("messages", "1", "")],
    ids=["table", "row", "field"],
)
def test_aad_for_refuses_empty_parts(args: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError):
        aad_for(*args)


def test_aad_for_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        aad_for("messages", 42, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        aad_for("messages", "\ud800", "text")  # lone surrogate: not encodable


def test_blob_of_wrong_type_raises_type_error() -> None:
    blob = seal(KEY, PLAINTEXT, AAD)
    assert open_sealed(KEY, memoryview(blob), AAD) == PLAINTEXT
    assert open_sealed(KEY, bytearray(blob), AAD) == PLAINTEXT
    for wrong in (None, 5, blob.hex()):
        with pytest.raises(TypeError):
            open_sealed(KEY, wrong, AAD)  # type: ignore[arg-type]


def test_sealing_key_hides_key_material() -> None:
    sealer = SealingKey(KEY)
    assert KEY.hex() not in repr(sealer) and "hidden" in repr(sealer)
    assert sealer.open(sealer.seal(PLAINTEXT, AAD), AAD) == PLAINTEXT
    assert open_sealed(KEY, sealer.seal(PLAINTEXT, AAD), AAD) == PLAINTEXT
