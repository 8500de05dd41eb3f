"""Known answers: the 8-leaf RFC 6962 test tree from transparency-dev/merkle
(tests/vectors/rfc9162/transparency-dev-merkle.json names the exact files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consult.audit import merkle

from . import rfc9162_reference as rfc

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "rfc9162" / "transparency-dev-merkle.json").read_text()
)
ENTRIES = [bytes.fromhex(x) for x in VECTORS["leaf_inputs"]]
ROOTS = {int(size): bytes.fromhex(h) for size, h in VECTORS["roots"].items()}
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hexes(hashes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


@pytest.fixture(scope="module")
def tree() -> merkle.MerkleTree:
    return merkle.MerkleTree(merkle.leaf_hashes(ENTRIES))


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    """RFC 9162 §2.1.1: MTH({}) = SHA-256()."""
    assert merkle.root([]) == ROOTS[0] == merkle.EMPTY_ROOT
    assert merkle.MerkleTree().root() == ROOTS[0]


def test_leaf_and_node_hashes_match_vectors() -> None:
    """Leaf and node hashing use the 0x00 / 0x01 domain separation of RFC 9162 §2.1.1."""
    levels = [_hexes(level) for level in VECTORS["node_hashes"]]
    assert [merkle.leaf_hash(e) for e in ENTRIES] == levels[0]
    assert merkle.leaf_hashes(ENTRIES) == levels[0]
    for level in range(1, len(levels)):
        below = levels[level - 1]
        for i, expected in enumerate(levels[level]):
            assert merkle.node_hash(below[2 * i], below[2 * i + 1]) == expected


@pytest.mark.parametrize("size", range(0, 9))
def test_roots_for_every_size(tree: merkle.MerkleTree, size: int) -> None:
    """Tree heads for sizes 0..8 equal the published roots."""
    leaf_hashes = merkle.leaf_hashes(ENTRIES[:size])
    assert merkle.root(leaf_hashes) == ROOTS[size]
    assert tree.root_at(size) == ROOTS[size]
    assert merkle.MerkleTree(leaf_hashes).root() == ROOTS[size]
    assert rfc.MTH(ENTRIES[:size]) == ROOTS[size]


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['index']}:{v['size']}")
def test_inclusion_proofs_match_vectors(tree: merkle.MerkleTree, vector: dict) -> None:
    """Audit paths are exactly the published ones and verify under the RFC algorithm."""
    index, size, path = vector["index"], vector["size"], _hexes(vector["path"])
    assert tree.inclusion_proof(index, size) == path
    leaf = merkle.leaf_hash(ENTRIES[index])
    assert rfc.verify_inclusion(leaf, index, size, path, ROOTS[size])
    assert merkle.verify_inclusion(leaf, index, size, path, ROOTS[size])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency_proofs"], ids=lambda v: f"{v['first']}:{v['second']}"
)
def test_consistency_proofs_match_vectors(tree: merkle.MerkleTree, vector: dict) -> None:
    """Consistency proofs are exactly the published ones and verify under the RFC algorithm."""
    first, second, path = vector["first"], vector["second"], _hexes(vector["path"])
    assert tree.consistency_proof(first, second) == path
    assert merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], path)
    if first < second:
        assert rfc.verify_consistency(first, second, ROOTS[first], ROOTS[second], path)


def _corrupt_inclusion(index: int, size: int, path: list[bytes], root: bytes, leaf: bytes):
    """The probes of transparency-dev/merkle proof/verify_test.go corruptInclusionProof."""
    yield "index - 1", (leaf, index - 1, size, path, root)
    yield "index + 1", (leaf, index + 1, size, path, root)
    yield "index ^ 2", (leaf, index ^ 2, size, path, root)
    yield "size * 2", (leaf, index, size * 2, path, root)
    yield "size // 2", (leaf, index, size // 2, path, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, path, root)
    yield "empty root", (leaf, index, size, path, merkle.EMPTY_ROOT)
    yield "random root", (leaf, index, size, path, SOME_HASH)
    yield "trailing garbage", (leaf, index, size, [*path, b""], root)
    yield "trailing root", (leaf, index, size, [*path, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *path], root)
    yield "preceding root", (leaf, index, size, [root, *path], root)
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield f"modified path[{i}]", (leaf, index, size, bad, root)
    if path:
        yield "removed component", (leaf, index, size, path[:-1], root)
    if len(path) > 1:
        yield "inserted component", (leaf, index, size, [path[0], SOME_HASH, *path[1:]], root)


def _corrupt_consistency(first: int, second: int, root1: bytes, root2: bytes, path: list[bytes]):
    """The probes of transparency-dev/merkle proof/verify_test.go corruptConsistencyProof."""
    yield "first - 1", (first - 1, second, root1, root2, path)
    yield "first + 1", (first + 1, second, root1, root2, path)
    yield "first ^ 2", (first ^ 2, second, root1, root2, path)
    yield "second * 2", (first, second * 2, root1, root2, path)
    yield "second // 2", (first, second // 2, root1, root2, path)
    yield "wrong root1", (first, second, b"WrongRoot", root2, path)
    yield "wrong root2", (first, second, root1, b"WrongRoot", path)
    yield "swapped roots", (first, second, root2, root1, path)
    yield "empty proof", (first, second, root1, root2, [])
    yield "trailing garbage", (first, second, root1, root2, [*path, b""])
    yield "trailing root1", (first, second, root1, root2, [*path, root1])
    yield "trailing root2", (first, second, root1, root2, [*path, root2])
    yield "preceding garbage", (first, second, root1, root2, [b"", *path])
    yield "preceding root1", (first, second, root1, root2, [root1, *path])
    yield "preceding root2", (first, second, root1, root2, [root2, *path])
    yield "preceding path[0]", (first, second, root1, root2, [path[0], *path])
    yield "truncated", (first, second, root1, root2, path[:-1])
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        yield f"modified path[{i}]", (first, second, root1, root2, bad)


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['index']}:{v['size']}")
def test_corrupted_inclusion_proofs_are_rejected(vector: dict) -> None:
    """Every transparency-dev corruption of a good inclusion proof fails verification."""
    index, size, path = vector["index"], vector["size"], _hexes(vector["path"])
    leaf = merkle.leaf_hash(ENTRIES[index])
    for desc, (lh, i, n, p, r) in _corrupt_inclusion(index, size, path, ROOTS[size], leaf):
        if i < 0 or (i, n, p, r, lh) == (index, size, path, ROOTS[size], leaf):
            continue  # e.g. index - 1 at index 0 is not a probe
        assert not merkle.verify_inclusion(lh, i, n, p, r), desc
        assert not rfc.verify_inclusion(lh, i, n, p, r), desc


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["consistency_proofs"] if v["path"]],
    ids=lambda v: f"{v['first']}:{v['second']}",
)
def test_corrupted_consistency_proofs_are_rejected(vector: dict) -> None:
    """Every transparency-dev corruption of a good consistency proof fails verification."""
    first, second, path = vector["first"], vector["second"], _hexes(vector["path"])
    for desc, (f, s, r1, r2, p) in _corrupt_consistency(
        first, second, ROOTS[first], ROOTS[second], path
    ):
        assert not merkle.verify_consistency(f, s, r1, r2, p), desc
