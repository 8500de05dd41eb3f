"""Benchmark of the audit log's Merkle tree: building over N 200-byte entries
(leaf hashing included), tree heads, inclusion and consistency proofs, next to
a bare hashlib SHA-256 loop over the same entries in the same run, so the
ratios travel between machines.

Run: python bench/merkle_bench.py [--leaves 1000000] [--runs 3] [--proofs 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.audit import merkle  # noqa: E402


def _best_and_median(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--entry-size", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--proofs", type=int, default=20_000)
    args = parser.parse_args()
    n = args.leaves

    entries = [os.urandom(args.entry_size) for _ in range(n)]
    sha256 = hashlib.sha256

    def reference() -> list[bytes]:
        return [sha256(e).digest() for e in entries]

    def build() -> merkle.MerkleTree:
        tree = merkle.MerkleTree(merkle.leaf_hashes(entries))
        tree.root()
        return tree

    def stateless_root() -> bytes:
        return merkle.root(merkle.leaf_hashes(entries))

    ref_best, ref_med, _ = _best_and_median(reference, args.runs)
    build_best, build_med, tree = _best_and_median(build, args.runs)
    root_best, root_med, root = _best_and_median(stateless_root, args.runs)
    assert isinstance(tree, merkle.MerkleTree) and tree.root() == root

    leaves = merkle.leaf_hashes(entries)

    def append_each() -> merkle.MerkleTree:
        t = merkle.MerkleTree()
        for h in leaves:
            t.append(h)
        return t

    append_best, append_med, _ = _best_and_median(append_each, args.runs)

    tracemalloc.start()
    kept = merkle.MerkleTree(leaves)
    tree_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept

    rng = random.Random(1)
    m = args.proofs
    sizes = [rng.randrange(1, n + 1) for _ in range(m)]
    inclusion_requests = [(rng.randrange(s), s) for s in sizes]
    consistency_requests = [(rng.randrange(1, s + 1), s) for s in sizes]

    start = time.perf_counter()
    proofs = [tree.inclusion_proof(i, s) for i, s in inclusion_requests]
    inclusion_s = time.perf_counter() - start
    start = time.perf_counter()
    for _, s in inclusion_requests:
        tree.root_at(s)
    heads_s = time.perf_counter() - start
    start = time.perf_counter()
    for first, second in consistency_requests:
        tree.consistency_proof(first, second)
    consistency_s = time.perf_counter() - start

    checks = [(leaves[i], i, s, p, tree.root_at(s)) for (i, s), p in zip(inclusion_requests, proofs)]
    start = time.perf_counter()
    assert all(merkle.verify_inclusion(*c) for c in checks)
    verify_s = time.perf_counter() - start

    print(f"Merkle tree benchmark: {n:,} entries of {args.entry_size} bytes, "
          f"best / median of {args.runs} runs, Python {sys.version.split()[0]}")
    print(f"  reference: bare hashlib.sha256 loop   {ref_best:7.3f} s  / {ref_med:7.3f} s")
    print(f"  MerkleTree build + root (leaf hashing) {build_best:7.3f} s  / {build_med:7.3f} s"
          f"   {build_best / ref_best:5.2f}x reference")
    print(f"  merkle.root() stateless               {root_best:7.3f} s  / {root_med:7.3f} s"
          f"   {root_best / ref_best:5.2f}x reference")
    print(f"  append() one leaf hash at a time       {append_best:7.3f} s  / {append_med:7.3f} s"
          f"   {n / append_best:,.0f} leaves/s")
    print(f"  tree memory (levels, traced)           {tree_bytes / 2**20:7.1f} MiB"
          f"  ({tree_bytes / n:.0f} bytes per leaf)")
    print(f"  root_at(random size)                   {m / heads_s:10,.0f} /s")
    print(f"  inclusion_proof(random index, size)    {m / inclusion_s:10,.0f} /s")
    print(f"  consistency_proof(random sizes)        {m / consistency_s:10,.0f} /s")
    print(f"  verify_inclusion                       {m / verify_s:10,.0f} /s")


if __name__ == "__main__":
    main()
