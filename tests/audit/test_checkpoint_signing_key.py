"""consult.crypto.signing: the Ed25519 checkpoint key, its signatures and its file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from consult.crypto import signing
from consult.crypto.errors import KeyFileError

# RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_known_answers(seed: str, public: str, message: str, signature: str) -> None:
    """Public key and signature derivation match RFC 8032 byte for byte."""
    s, m = bytes.fromhex(seed), bytes.fromhex(message)
    assert signing.public_key(s).hex() == public
    assert signing.sign(s, m).hex() == signature
    assert signing.verify(bytes.fromhex(public), m, bytes.fromhex(signature))


def test_sign_verify_round_trip_and_rejections() -> None:
    """A signature verifies only for its own key and message, and never raises when bad."""
    seed, other = signing.generate_signing_key(), signing.generate_signing_key()
    assert len(seed) == signing.SEED_SIZE and seed != other
    public = signing.public_key(seed)
    sig = signing.sign(seed, b"tree head")
    assert len(sig) == signing.SIGNATURE_SIZE
    assert signing.verify(public, b"tree head", sig)
    assert not signing.verify(public, b"tree heaD", sig)
    assert not signing.verify(signing.public_key(other), b"tree head", sig)
    assert not signing.verify(public, b"tree head", bytes([sig[0] ^ 1]) + sig[1:])
    assert not signing.verify(public, b"tree head", sig[:-1])
    assert not signing.verify(public, b"tree head", sig + b"\x00")
    assert not signing.verify(public, b"tree head", b"")


def test_wrong_key_sizes_are_programmer_errors() -> None:
    """A seed or public key of the wrong size raises at once."""
    with pytest.raises(ValueError):
        signing.public_key(b"\x00" * 31)
    with pytest.raises(ValueError):
        signing.sign(b"\x00" * 33, b"m")
    with pytest.raises(ValueError):
        signing.verify(b"\x00" * 31, b"m", b"\x00" * 64)


def test_save_creates_a_private_file_and_load_reads_it(tmp_path: Path) -> None:
    """The seed file is mode 0600, round-trips, and leaves no temporary file behind."""
    path = tmp_path / "keys" / "checkpoint.key"
    seed = signing.generate_signing_key()
    signing.save_signing_key(path, seed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.load_signing_key(path) == seed
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.key"]


def test_save_never_replaces_a_key_unless_told(tmp_path: Path) -> None:
    """Overwriting the checkpoint key would orphan earlier checkpoints: refused by default."""
    path = tmp_path / "checkpoint.key"
    first, second = signing.generate_signing_key(), signing.generate_signing_key()
    signing.save_signing_key(path, first)
    with pytest.raises(FileExistsError):
        signing.save_signing_key(path, second)
    assert signing.load_signing_key(path) == first
    signing.save_signing_key(path, second, overwrite=True)
    assert signing.load_signing_key(path) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.key"]


def test_load_or_create_is_stable(tmp_path: Path) -> None:
    """The first call creates the key; later calls return the same one."""
    path = tmp_path / "checkpoint.key"
    seed = signing.load_or_create_signing_key(path)
    assert signing.load_or_create_signing_key(path) == seed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_load_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    """A seed file readable by group or others is refused, naming the path but no key bytes."""
    path = tmp_path / "checkpoint.key"
    seed = signing.generate_signing_key()
    signing.save_signing_key(path, seed)
    path.chmod(0o640)
    with pytest.raises(KeyFileError) as exc:
        signing.load_signing_key(path)
    assert str(path) in str(exc.value) and "0640" in str(exc.value)
    assert seed.hex() not in str(exc.value)


@pytest.mark.skipif(os.name != "posix", reason="symlinks and O_NOFOLLOW")
def test_load_refuses_a_symlink(tmp_path: Path) -> None:
    """The key is read from the path itself, not through a link someone planted."""
    real = tmp_path / "real.key"
    signing.save_signing_key(real, signing.generate_signing_key())
    link = tmp_path / "checkpoint.key"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        signing.load_signing_key(link)


@pytest.mark.parametrize(
    "content",
    [b"", b"not base64!\n", b"AAAA\n", b"A" * 200 + b"\n", b"\x00" * 32],
    ids=["empty", "garbage", "short", "long", "raw-bytes"],
)
def test_load_rejects_malformed_files(tmp_path: Path, content: bytes) -> None:
    """Anything but one base64 32-byte seed is a KeyFileError."""
    path = tmp_path / "checkpoint.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileError):
        signing.load_signing_key(path)


def test_load_missing_file(tmp_path: Path) -> None:
    """A missing key file is a KeyFileError naming the path."""
    with pytest.raises(KeyFileError, match="does not exist"):
        signing.load_signing_key(tmp_path / "absent.key")


def test_threads_creating_the_key_together_all_read_the_same_key(tmp_path: Path) -> None:
    """Two servers' start-ups in one process (threads) race to create the key: none may fail."""
    import threading

    for attempt in range(20):
        path = tmp_path / f"attempt-{attempt}" / "audit-signing.key"
        barrier = threading.Barrier(4)
        seeds: list[bytes] = []
        errors: list[BaseException] = []

        def start() -> None:
            barrier.wait()
            try:
                seeds.append(signing.load_or_create_signing_key(path))
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(seeds)) == 1
