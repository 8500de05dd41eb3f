"""MerkleTree against the literal RFC 9162 transcription in `rfc9162_reference`:
every root, every inclusion proof and every consistency proof of small trees,
tampering, incremental building and input validation."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.audit import merkle
from tests.conftest import examples

from . import rfc9162_reference as rfc

N_PROOFS = 70
N_ROOTS = 130


def _entries(n: int, seed: int = 9162) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


ENTRIES = _entries(N_ROOTS)
LEAVES = [hashlib.sha256(b"\x00" + e).digest() for e in ENTRIES]


@pytest.fixture(scope="module")
def tree() -> merkle.MerkleTree:
    return merkle.MerkleTree(merkle.leaf_hashes(ENTRIES))


@pytest.fixture(scope="module")
def rfc_roots() -> list[bytes]:
    return [rfc.MTH(ENTRIES[:n]) for n in range(N_ROOTS + 1)]


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def test_roots_equal_recursive_mth_for_sizes_up_to_130(
    tree: merkle.MerkleTree, rfc_roots: list[bytes]
) -> None:
    """The tree head of every size 0..130 is the RFC's recursive MTH, however built."""
    appended = merkle.MerkleTree()
    for n in range(N_ROOTS + 1):
        assert tree.root_at(n) == rfc_roots[n], n
        assert merkle.root(LEAVES[:n]) == rfc_roots[n], n
        assert appended.root() == rfc_roots[n], n
        if n < N_ROOTS:
            assert appended.append(LEAVES[n]) == n
    assert appended.size == len(appended) == tree.size == N_ROOTS


def test_every_inclusion_proof_up_to_70_is_rfc_path_and_verifies(
    tree: merkle.MerkleTree, rfc_roots: list[bytes]
) -> None:
    """PATH(m, D[n]) for all 0 <= m < n <= 70, checked by the RFC §2.1.3.2 verifier."""
    count = 0
    for size in range(1, N_PROOFS + 1):
        for index in range(size):
            path = tree.inclusion_proof(index, size)
            assert path == rfc.PATH(index, ENTRIES[:size]), (index, size)
            assert rfc.verify_inclusion(LEAVES[index], index, size, path, rfc_roots[size])
            assert merkle.verify_inclusion(LEAVES[index], index, size, path, rfc_roots[size])
            count += 1
    assert count == N_PROOFS * (N_PROOFS + 1) // 2


def test_every_consistency_proof_up_to_70_is_rfc_proof_and_verifies(
    tree: merkle.MerkleTree, rfc_roots: list[bytes]
) -> None:
    """PROOF(m, D[n]) for all 0 < m < n <= 70, checked by the RFC §2.1.4.2 verifier."""
    for second in range(1, N_PROOFS + 1):
        for first in range(1, second):
            path = tree.consistency_proof(first, second)
            assert path == rfc.PROOF(first, ENTRIES[:second]), (first, second)
            r1, r2 = rfc_roots[first], rfc_roots[second]
            assert rfc.verify_consistency(first, second, r1, r2, path), (first, second)
            assert merkle.verify_consistency(first, second, r1, r2, path), (first, second)


def test_trivial_consistency_proofs_are_empty(tree: merkle.MerkleTree, rfc_roots: list[bytes]) -> None:
    """first == 0 and first == second need no hashes; the roots decide."""
    for n in range(0, N_PROOFS + 1):
        assert tree.consistency_proof(0, n) == []
        assert tree.consistency_proof(n, n) == []
        assert merkle.verify_consistency(0, n, merkle.EMPTY_ROOT, rfc_roots[n], [])
        assert merkle.verify_consistency(n, n, rfc_roots[n], rfc_roots[n], [])
        assert not merkle.verify_consistency(0, n, merkle.leaf_hash(b"x"), rfc_roots[n], [])
        assert not merkle.verify_consistency(0, n, merkle.EMPTY_ROOT, rfc_roots[n], [rfc_roots[n]])
    for n in range(1, N_PROOFS + 1):
        assert not merkle.verify_consistency(n, n, rfc_roots[n], rfc_roots[n], [rfc_roots[n]])
        assert not merkle.verify_consistency(n, n, rfc_roots[n], _flip(rfc_roots[n]), [])


def test_tampered_inclusion_proofs_are_rejected(
    tree: merkle.MerkleTree, rfc_roots: list[bytes]
) -> None:
    """Any flipped bit in a path, leaf or root, and any wrong index, breaks inclusion."""
    for size in range(1, N_PROOFS + 1):
        root = rfc_roots[size]
        for index in range(size):
            leaf, path = LEAVES[index], tree.inclusion_proof(index, size)
            for i in range(len(path)):
                bad = [*path[:i], _flip(path[i], i % 8), *path[i + 1 :]]
                assert not rfc.verify_inclusion(leaf, index, size, bad, root)
                assert not merkle.verify_inclusion(leaf, index, size, bad, root)
            assert not merkle.verify_inclusion(_flip(leaf), index, size, path, root)
            assert not merkle.verify_inclusion(leaf, index, size, path, _flip(root, 7))
            assert not merkle.verify_inclusion(leaf, index, size, [*path, root], root)
            assert not merkle.verify_inclusion(leaf, size, size, path, root)
            if path:
                assert not merkle.verify_inclusion(leaf, index, size, path[:-1], root)
            if size > 1:
                other = (index + 1) % size
                assert not merkle.verify_inclusion(leaf, other, size, path, root)


def test_tampered_consistency_proofs_are_rejected(
    tree: merkle.MerkleTree, rfc_roots: list[bytes]
) -> None:
    """Any flipped bit in a consistency proof or either root breaks it."""
    for second in range(2, N_PROOFS + 1):
        for first in range(1, second):
            path = tree.consistency_proof(first, second)
            r1, r2 = rfc_roots[first], rfc_roots[second]
            for i in range(len(path)):
                bad = [*path[:i], _flip(path[i], i % 8), *path[i + 1 :]]
                assert not rfc.verify_consistency(first, second, r1, r2, bad)
                assert not merkle.verify_consistency(first, second, r1, r2, bad)
            assert not merkle.verify_consistency(first, second, _flip(r1), r2, path)
            assert not merkle.verify_consistency(first, second, r1, _flip(r2), path)
            assert not merkle.verify_consistency(first, second, r1, r2, path[:-1])
            assert not merkle.verify_consistency(first, second, r1, r2, [*path, r2])
            assert not merkle.verify_consistency(first, second, r1, r2, [])


def test_rewritten_history_is_not_consistent(rfc_roots: list[bytes]) -> None:
    """A log that changes one old entry cannot prove consistency with its earlier head."""
    forged_entries = list(ENTRIES)
    forged_entries[3] = b"rewritten"
    forged = merkle.MerkleTree(merkle.leaf_hashes(forged_entries))
    for first in range(4, 40):
        second = first + 17
        path = forged.consistency_proof(first, second)
        assert not merkle.verify_consistency(first, second, rfc_roots[first], forged.root_at(second), path)
        assert not rfc.verify_consistency(first, second, rfc_roots[first], forged.root_at(second), path)


def test_large_tree_across_chunk_boundaries() -> None:
    """Batches larger than the internal chunk build the same tree as single appends."""
    entries = _entries(70_001, seed=1)
    leaves = merkle.leaf_hashes(entries)
    bulk = merkle.MerkleTree(leaves)
    piecewise = merkle.MerkleTree()
    for start in range(0, 70_001, 30_000):
        piecewise.extend(iter(leaves[start : start + 30_000]))
    single = merkle.MerkleTree()
    for h in leaves:
        single.append(h)
    expected = rfc.MTH(entries)
    assert bulk.root() == piecewise.root() == single.root() == merkle.root(leaves) == expected
    assert bulk.leaf(65_536) == leaves[65_536]
    rng = random.Random(2)
    for _ in range(200):
        size = rng.randrange(1, 70_002)
        index = rng.randrange(size)
        first = rng.randrange(1, size + 1)
        r = bulk.root_at(size)
        assert rfc.verify_inclusion(leaves[index], index, size, bulk.inclusion_proof(index, size), r)
        if first < size:
            path = bulk.consistency_proof(first, size)
            assert rfc.verify_consistency(first, size, bulk.root_at(first), r, path)
    assert len(bulk.inclusion_proof(12_345)) == 17


@settings(max_examples=examples(30, 300), deadline=None)
@given(
    n=st.integers(min_value=0, max_value=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    singles=st.booleans(),
)
def test_any_mix_of_append_and_extend_builds_the_same_tree(n: int, cuts: list[int], singles: bool) -> None:
    """However leaves arrive, the tree answers the same heads and proofs."""
    leaves = merkle.leaf_hashes(ENTRIES * 3)[:n]
    tree = merkle.MerkleTree()
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    for a, b in zip(bounds, bounds[1:]):
        if singles and (b - a) % 2:
            for h in leaves[a:b]:
                tree.append(h)
        else:
            tree.extend(leaves[a:b])
    reference = merkle.MerkleTree(leaves)
    assert tree.size == n
    for size in range(0, n + 1, 7):
        assert tree.root_at(size) == reference.root_at(size) == merkle.root(leaves[:size])
    if n:
        assert tree.inclusion_proof(n - 1) == reference.inclusion_proof(n - 1, n)
        assert tree.consistency_proof(n // 2) == reference.consistency_proof(n // 2, n)


# -- input validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (5, 5), (6, 5), (0, N_ROOTS + 1), (-1, 5), (3, -1)],
)
def test_bad_inclusion_request_is_value_error(tree: merkle.MerkleTree, index: int, size: int) -> None:
    """An index outside the tree or a size beyond it is a ValueError (HTTP 4xx), never a proof."""
    with pytest.raises(ValueError):
        tree.inclusion_proof(index, size)


@pytest.mark.parametrize(
    ("first", "second"),
    [(6, 5), (0, N_ROOTS + 1), (N_ROOTS + 1, N_ROOTS + 1), (-1, 3), (2, -2)],
)
def test_bad_consistency_request_is_value_error(tree: merkle.MerkleTree, first: int, second: int) -> None:
    """first > second or a size beyond the tree is a ValueError."""
    with pytest.raises(ValueError):
        tree.consistency_proof(first, second)


def test_other_bad_inputs(tree: merkle.MerkleTree) -> None:
    """Wrong sizes of hashes and wrong types fail loudly."""
    with pytest.raises(ValueError):
        tree.root_at(N_ROOTS + 1)
    with pytest.raises(ValueError):
        tree.root_at(-1)
    with pytest.raises(ValueError):
        tree.leaf(N_ROOTS)
    with pytest.raises(TypeError):
        tree.inclusion_proof(1.0, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tree.consistency_proof(True, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        merkle.MerkleTree().append(b"\x00" * 31)
    with pytest.raises(ValueError):
        merkle.MerkleTree().extend([b"\x00" * 32, b"\x00" * 33])
    with pytest.raises(ValueError):
        merkle.root([b"\x00" * 32, b"short"])
    half_built = merkle.MerkleTree([b"\x01" * 32])
    with pytest.raises(ValueError):
        half_built.extend([b"\x02" * 32, b"bad"])
    assert half_built.size == 1  # a rejected batch adds nothing


def test_verifiers_reject_malformed_input_without_raising(rfc_roots: list[bytes]) -> None:
    """Untrusted proof data of the wrong shape is simply not a proof."""
    leaf, root = LEAVES[0], rfc_roots[2]
    path = [LEAVES[1]]
    assert merkle.verify_inclusion(leaf, 0, 2, path, root)
    assert not merkle.verify_inclusion(leaf, 0, 2, [LEAVES[1] + b"\x00"], root)
    assert not merkle.verify_inclusion(leaf, 0, 2, ["not bytes"], root)  # type: ignore[list-item]
    assert not merkle.verify_inclusion(leaf[:31], 0, 2, path, root)
    assert not merkle.verify_inclusion(leaf, 0, 2, path, root[:31])
    assert not merkle.verify_inclusion(leaf, 2, 2, path, root)
    assert not merkle.verify_inclusion(leaf, 0, 0, [], merkle.EMPTY_ROOT)
    assert not merkle.verify_consistency(2, 1, rfc_roots[2], rfc_roots[1], [LEAVES[0]])
    assert not merkle.verify_consistency(1, 2, rfc_roots[1], rfc_roots[2], [b"short"])
    with pytest.raises(ValueError):
        merkle.verify_inclusion(leaf, -1, 2, path, root)
    with pytest.raises(TypeError):
        merkle.verify_consistency(1.5, 2, rfc_roots[1], rfc_roots[2], [LEAVES[1]])  # type: ignore[arg-type]
