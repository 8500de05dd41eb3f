"""The RFC 9162 Merkle tree over audit-log leaves: hashing, an incrementally built
tree that answers tree heads and proofs for any earlier size, and proof checks.

Hashing is RFC 9162 §2.1.1 with SHA-256: a leaf is ``SHA-256(0x00 ‖ entry)``, an
interior node ``SHA-256(0x01 ‖ left ‖ right)``, the left subtree of ``n`` leaves
holds the largest power of two smaller than ``n``, and the empty tree hashes to
``SHA-256("")``. Proofs are the §2.1.3.1 ``PATH`` and the §2.1.4.1 ``PROOF``, so
any RFC 9162 / RFC 6962 verifier accepts them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from itertools import islice

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) of RFC 9162 §2.1.1: the hash of the empty string."""

# Leaves are folded into the tree this many at a time, which bounds the
# temporary lists built while hashing a large batch.
_CHUNK = 1 << 16


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 ‖ entry)``: the hash of one log entry (RFC 9162 §2.1.1)."""
    return _sha256(_LEAF + entry).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """`leaf_hash` of each entry, in order (one call for the whole batch)."""
    return [_sha256(_LEAF + e).digest() for e in entries]


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``: an interior node (RFC 9162 §2.1.1)."""
    return _sha256(_NODE + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash over ``leaf_hashes`` (already leaf-hashed entries).

    Built bottom-up, carrying an odd last node up a level unchanged: this gives
    the same tree as the RFC's split at the largest power of two below ``n``.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    _check_hashes(level)
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        # An odd level leaves its last node out of the pairs (strict=False); it is carried up below.
        level = [_sha256(_NODE + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


class MerkleTree:
    """An append-only RFC 9162 tree that keeps every complete subtree.

    Level ``k`` stores the hashes of the complete subtrees of ``2**k`` leaves, in
    order, packed into one ``bytearray`` (32 bytes each). That is about 64 bytes
    per leaf in all, lets `root_at`, `inclusion_proof` and `consistency_proof`
    answer for any size up to the current one with O(log n) lookups and at most
    O(log n) hashes, and costs one node hash per leaf to build.

    Not thread-safe: guard a shared tree with a lock.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    # -- building -----------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; return its index."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf_hash)}")
        levels = self._levels
        levels[0] += leaf_hash
        self._size += 1
        # Each trailing zero bit of the new size completes one subtree a level up.
        count, k = self._size, 0
        while not count & 1:
            if k + 1 == len(levels):
                levels.append(bytearray())
            levels[k + 1] += _sha256(_NODE + levels[k][-64:]).digest()
            count >>= 1
            k += 1
        return self._size - 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes, in order (much faster than repeated `append`)."""
        it = iter(leaf_hashes)
        while chunk := list(islice(it, _CHUNK)):
            _check_hashes(chunk)
            self._levels[0] += b"".join(chunk)
            self._size += len(chunk)
            self._complete_levels()

    def _complete_levels(self) -> None:
        levels = self._levels
        k = 0
        while True:
            pairs = len(levels[k]) >> 6
            if k + 1 == len(levels):
                if pairs == 0:
                    return
                levels.append(bytearray())
            done = len(levels[k + 1]) >> 5
            if done == pairs:
                return
            todo = bytes(levels[k][done * 64 : pairs * 64])
            levels[k + 1] += b"".join(
                [_sha256(_NODE + todo[i : i + 64]).digest() for i in range(0, len(todo), 64)]
            )
            k += 1

    # -- reading ------------------------------------------------------------

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        _check_int("index", index)
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} is outside the tree (size {self._size})")
        return self._node(0, index)

    def root(self) -> bytes:
        """The root hash at the current size."""
        return self.root_at(self._size)

    def root_at(self, size: int) -> bytes:
        """The root hash the tree had when it held ``size`` leaves."""
        _check_int("size", size)
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is outside 0..{self._size}")
        if size == 0:
            return EMPTY_ROOT
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 ``PATH(index, D[size])``, leaf sibling first.

        ``size`` defaults to the current size; it must satisfy
        ``0 <= index < size <= self.size``.
        """
        size = self._size if size is None else size
        _check_int("index", index)
        _check_int("size", size)
        if not 0 < size <= self._size:
            raise ValueError(f"tree size {size} is outside 1..{self._size}")
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        # Walk down from the root of D[0:size]; the sibling of each subtree
        # that holds the leaf joins the path, which the RFC lists bottom-up.
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            split = start + _split(end - start)
            if index < split:
                path.append(self._subtree(split, end))
                end = split
            else:
                path.append(self._subtree(start, split))
                start = split
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 ``PROOF(first, D[second])``.

        ``second`` defaults to the current size; ``0 <= first <= second <= self.size``.
        The proof is empty when ``first`` is 0 or equals ``second``: the RFC
        defines PROOF only for ``0 < first < second``, and the trivial cases
        need no hashes (an empty tree is a prefix of every tree; equal sizes
        are consistent when their roots are equal).
        """
        second = self._size if second is None else second
        _check_int("first", first)
        _check_int("second", second)
        if not 0 <= second <= self._size:
            raise ValueError(f"second tree size {second} is outside 0..{self._size}")
        if not 0 <= first <= second:
            raise ValueError(f"first tree size {first} is outside 0..{second}")
        if first == 0 or first == second:
            return []
        # SUBPROOF(m, D[start:end], have_root), unrolled: the recursion only
        # ever descends into one half, so a loop over [start, end) suffices.
        proof: list[bytes] = []
        start, end, have_root = 0, second, True
        while first != end:
            split = start + _split(end - start)
            if first <= split:
                proof.append(self._subtree(split, end))
                end = split
            else:
                proof.append(self._subtree(start, split))
                start, have_root = split, False
        if not have_root:
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof

    def _node(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC recursion produces.

        Such a range starts at a multiple of a power of two at least as large
        as the range, so it splits into complete subtrees of the sizes given by
        the binary digits of ``end - start``, largest first; the RFC split
        nests them right to left.
        """
        pieces: list[bytes] = []
        pos, remaining = start, end - start
        while remaining:
            k = remaining.bit_length() - 1
            pieces.append(self._node(k, pos >> k))
            pos += 1 << k
            remaining -= 1 << k
        acc = pieces.pop()
        while pieces:
            acc = _sha256(_NODE + pieces.pop() + acc).digest()
        return acc


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof by RFC 9162 §2.1.3.2; False on any mismatch.

    Take ``size`` and ``root`` from a signed checkpoint, not from whoever sent
    the proof: a path alone does not pin the tree size.
    """
    _check_int("index", index)
    _check_int("size", size)
    if index >= size or not _all_hashes(path, leaf_hash, root):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """Check a consistency proof by RFC 9162 §2.1.4.2; False on any mismatch.

    The RFC algorithm covers ``0 < first < second``. The trivial cases match
    `MerkleTree.consistency_proof`: an empty proof, with ``first_root`` the
    empty-tree hash when ``first == 0`` and the two roots equal when
    ``first == second``.
    """
    _check_int("first", first)
    _check_int("second", second)
    if first > second or not _all_hashes(path, first_root, second_root):
        return False
    if first == 0:
        return not path and hmac.compare_digest(first_root, EMPTY_ROOT)
    if first == second:
        return not path and hmac.compare_digest(first_root, second_root)
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return (
        sn == 0
        and hmac.compare_digest(fr, first_root)
        and hmac.compare_digest(sr, second_root)
    )


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_hashes(hashes: Sequence[bytes]) -> None:
    lengths = set(map(len, hashes))
    if lengths - {HASH_SIZE}:
        bad = next(n for n in lengths if n != HASH_SIZE)
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got one of {bad}")


def _all_hashes(path: Sequence[bytes], *hashes: bytes) -> bool:
    return all(
        isinstance(h, (bytes, bytearray)) and len(h) == HASH_SIZE
        for h in (*hashes, *path)
    )
