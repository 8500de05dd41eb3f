"""Micro-benchmark of the crypto layer: µs per seal+open of 1 KiB, per
wrap/unwrap of a data key and per blind index, next to a bare hashlib SHA-256
of the same bytes measured in the same run, so the ratios travel between
machines.

Run: python bench/crypto_bench.py [--runs 5] [--number 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.crypto import (  # noqa: E402
    HETU_DOMAIN,
    Envelope,
    FileKeyring,
    SealingKey,
    aad_for,
    blind_index,
    open_sealed,
    seal,
)

MESSAGE = os.urandom(1024)


def _median_us(fn: Callable[[], object], runs: int, number: int) -> float:
    fn()  # warm up
    times = timeit.repeat(fn, repeat=runs, number=number)
    return statistics.median(times) / number * 1e6


def _cases(keyring: FileKeyring, static_keyring: FileKeyring) -> list[tuple[str, Callable[[], object]]]:
    key = os.urandom(32)
    aad = aad_for("messages", "0b9c2f1e-5d1a-4c3e-9e2b-7a1f0c3d4e5f", "text", "consultation:42")
    sealer = SealingKey(key)
    dek = os.urandom(32)
    context = b"consultation:42"
    wrapped = keyring.wrap(dek, context)
    wrapped_static = static_keyring.wrap(dek, context)
    envelope = Envelope(keyring)
    envelope.unwrap("consultation:42", wrapped)
    index_key = keyring.blind_index_key()
    return [
        ("reference: hashlib.sha256, 1 KiB", lambda: hashlib.sha256(MESSAGE).digest()),
        ("seal+open 1 KiB, seal()/open_sealed()", lambda: open_sealed(key, seal(key, MESSAGE, aad), aad)),
        ("seal+open 1 KiB, SealingKey", lambda: sealer.open(sealer.seal(MESSAGE, aad), aad)),
        ("aad_for (4 parts)", lambda: aad_for("messages", "0b9c2f1e", "text", "consultation:42")),
        ("wrap+unwrap DEK, FileKeyring (stat check)", lambda: keyring.unwrap(keyring.wrap(dek, context), context)),
        ("wrap+unwrap DEK, FileKeyring (no stat)", lambda: static_keyring.unwrap(static_keyring.wrap(dek, context), context)),
        ("wrap DEK, FileKeyring (stat check)", lambda: keyring.wrap(dek, context)),
        ("unwrap DEK, FileKeyring (stat check)", lambda: keyring.unwrap(wrapped, context)),
        ("unwrap DEK, FileKeyring (no stat)", lambda: static_keyring.unwrap(wrapped_static, context)),
        ("Envelope.unwrap, cache hit", lambda: envelope.unwrap("consultation:42", wrapped)),
        ("blind_index HETU", lambda: blind_index(index_key, "010101-900R", domain=HETU_DOMAIN)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "keys.json"
        keyring = FileKeyring.open(path, create=True)
        static_keyring = FileKeyring.open(path, auto_reload=False)
        results = [(name, _median_us(fn, args.runs, args.number)) for name, fn in _cases(keyring, static_keyring)]
    reference = results[0][1]
    print(f"crypto bench: median of {args.runs} runs x {args.number} calls, Python {sys.version.split()[0]}")
    print(f"{'operation':<44} {'µs/op':>9} {'× sha256':>9}")
    for name, micros in results:
        print(f"{name:<44} {micros:>9.2f} {micros / reference:>9.2f}")


if __name__ == "__main__":
    main()
